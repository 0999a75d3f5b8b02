"""The participant's progress: the latest result of every check, in one small JSON file.

The file lives in the user data folder (``platformdirs.user_data_path("workshop")``),
or wherever ``WORKSHOP_PROGRESS`` points (tests, validation, a shared lab machine).
Every write goes to a temporary file in the same folder that then replaces the old one,
so a crash or two kernels checking at once never leave a half-written file; an
unreadable file is set aside (``progress.json.unreadable``) and progress starts afresh.

Example::

    >>> from workshop.progress import passed_checks
    >>> passed_checks("astro")          # doctest: +SKIP
    {'forward_marginal', 'score_of_gaussian'}
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ._files import atomic_writer, locked

__all__ = ["CheckResult", "STATUSES", "progress_path", "load", "record", "module_progress", "passed_checks", "reset"]

STATUSES = ("passed", "failed", "not_attempted")
_VERSION = 1


@dataclass
class CheckResult:
    """The verdict of one check.

    Arguments:
        name: the full check name, ``"astro.forward_marginal"``.
        status: ``"passed"``, ``"failed"`` or ``"not_attempted"``.
        message: what was verified (passed) or what went wrong (otherwise).
        hint: what to try next, when something went wrong.
    """

    name: str
    status: str
    message: str = ""
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"<check {self.name}: {self.status.replace('_', ' ')}>"

    def _ipython_display_(self) -> None:
        # run_check has already printed the verdict; echoing it again as the cell's
        # value would only repeat it. Displayed later on purpose, it shows its repr.
        if getattr(self, "_echoed", False):
            self._echoed = False
            return
        print(repr(self))


def progress_path() -> Path:
    """``$WORKSHOP_PROGRESS``, else ``progress.json`` in the user data folder."""
    env = os.environ.get("WORKSHOP_PROGRESS", "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return platformdirs.user_data_path("workshop", appauthor=False) / "progress.json"


def _empty() -> dict:
    return {"version": _VERSION, "modules": {}}


def load(path: Path | None = None) -> dict:
    """The whole progress record: ``{"version": 1, "modules": {module: {check: entry}}}``."""
    path = path or progress_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _empty()
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("modules"), dict):
            raise ValueError("not a progress record")
        return data
    except ValueError:
        # Keep the damaged file for inspection, start afresh rather than crash a lesson.
        with contextlib.suppress(OSError):
            path.replace(path.with_name(path.name + ".unreadable"))
        return _empty()


def _write_atomically(path: Path, data: dict) -> None:
    with atomic_writer(path) as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")


def record(module: str, check: str, status: str, message: str = "", path: Path | None = None) -> None:
    """Record the latest result of ``module.check``; counts attempts, remembers the first pass."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    path = path or progress_path()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with locked(path):
        data = load(path)
        entry = data["modules"].setdefault(module, {}).setdefault(check, {"attempts": 0})
        entry["attempts"] = int(entry.get("attempts", 0)) + 1
        entry["status"] = status
        entry["updated"] = now
        entry["message"] = message[:500]
        if status == "passed":
            entry.setdefault("first_passed", now)
        _write_atomically(path, data)


def module_progress(module: str, path: Path | None = None) -> dict[str, dict]:
    """``{check: {"status", "attempts", "updated", ...}}`` for the checks run so far."""
    entries = load(path)["modules"].get(module, {})
    return {k: v for k, v in entries.items() if isinstance(v, dict)}


def passed_checks(module: str, path: Path | None = None) -> set[str]:
    """Names (without the module prefix) of the checks whose latest result is a pass."""
    return {k for k, v in module_progress(module, path).items() if v.get("status") == "passed"}


def reset(module: str | None = None, path: Path | None = None) -> None:
    """Forget the progress of ``module`` (of everything when ``None``)."""
    path = path or progress_path()
    with locked(path):
        data = load(path)
        if module is None:
            data = _empty()
        else:
            data["modules"].pop(module, None)
        _write_atomically(path, data)
