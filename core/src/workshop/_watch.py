"""Run something again each time a file is saved (``workshop check MODULE NOTEBOOK --watch``).

Polling, with no dependency: a file counts as saved once its modification time and size
have changed and then held still for one poll, so a save still being written is not read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

Stamp = tuple[int, int]


def stamp(path: Path) -> Stamp | None:
    """(modification time in ns, size) of ``path``; ``None`` when it is not there."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def watch(paths: Callable[[], Iterable[Path]], on_save: Callable[[Path], None], *, interval: float = 1.0,
          stop: threading.Event | None = None) -> None:
    """Call ``on_save(path)`` for every path now, then again after each save of it.

    Runs until ``stop`` is set (or Ctrl-C). The files are stamped before the first calls,
    so a save during a call is seen once it returns.

    Arguments:
        paths: the files to watch, asked again at each poll (a folder's notebooks).
        on_save: what to run for a saved file.
        interval: seconds between polls.
        stop: set it to end the loop (default: a fresh event nobody sets).

    Example:
        >>> watch(lambda: [Path("01_numpy_api.ipynb")], print, interval=1.0)  # doctest: +SKIP
    """
    stop = threading.Event() if stop is None else stop
    seen = {p: stamp(p) for p in paths()}
    for p, first in list(seen.items()):
        if first is not None:
            on_save(p)
    pending: dict[Path, Stamp] = {}
    while not stop.wait(interval):
        for p in paths():
            now = stamp(p)
            if now is None or now == seen.get(p):
                pending.pop(p, None)
                continue
            if pending.get(p) != now:  # changed since the last poll: wait until it holds still
                pending[p] = now
                continue
            del pending[p]
            seen[p] = now
            on_save(p)
