"""Writing files so that a crash never leaves a half-written one."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator, TextIO


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[TextIO]:
    """A text file (UTF-8, ``\\n`` line ends) beside ``path`` that replaces ``path`` once
    the block completes; on an error ``path`` is untouched and the temporary file removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through :func:`atomic_writer`."""
    with atomic_writer(path) as f:
        f.write(text)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write cycles of ``path`` between processes where the OS
    allows it (an advisory lock on ``path.lock``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: atomic replace alone (a lost update at worst)
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def set_aside(path: Path, why: str, *, copy: bool = False) -> Path:
    """Move (or copy) ``path`` to ``NAME.WHY-<UTC time>[-k]`` beside it and return the new
    path. An earlier set-aside copy is never replaced: each gets its own name."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for k in range(1000):
        dest = path.with_name(f"{path.name}.{why}-{stamp}" + (f"-{k}" if k else ""))
        try:
            if copy:
                with open(path, "rb") as src, open(dest, "xb") as out:
                    shutil.copyfileobj(src, out)
            else:
                try:
                    os.link(path, dest)  # fails if dest exists: never replaces a set-aside copy
                except FileExistsError:
                    raise
                except OSError:  # no hard links on this file system
                    if dest.exists():
                        continue
                    os.replace(path, dest)
                else:
                    os.unlink(path)
        except FileExistsError:
            continue
        return dest
    raise FileExistsError(f"too many set-aside copies of {path}")
