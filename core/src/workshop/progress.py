"""The participant's progress: the latest result of every check, in one small JSON file.

The file lives in the user data folder (``platformdirs.user_data_path("workshop")``),
or wherever ``WORKSHOP_PROGRESS`` points (tests, validation, a shared lab machine).
Every write goes to a temporary file in the same folder that then replaces the old one,
so a crash or two kernels checking at once never leave a half-written file.

Nothing recorded is ever lost silently:

* a file that is not a progress record (damaged JSON, another format) is set aside under
  a name of its own (``progress.json.unreadable-<UTC time>``, never replacing an earlier
  one), a line says where, and progress starts afresh;
* records of the right shape are read even when others are malformed (a status that is
  not one of :data:`STATUSES`, attempts that are not a count, ...): the malformed ones are
  skipped and counted (:func:`malformed_records`), and before a write replaces one, the
  whole file is copied aside (``progress.json.malformed-<UTC time>``).

Example::

    >>> from workshop.progress import passed_checks
    >>> passed_checks("astro")          # doctest: +SKIP
    {'forward_marginal', 'score_of_gaussian'}
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import _environment
from ._files import atomic_writer, locked, set_aside

__all__ = ["CheckResult", "STATUSES", "ProgressError", "progress_path", "load", "record", "module_progress",
           "passed_checks", "malformed_records", "reset"]

STATUSES = ("passed", "failed", "not_attempted")
_VERSION = 1


@dataclass
class CheckResult:
    """The verdict of one check.

    Arguments:
        name: the full check name, ``"astro.vp_marginal"``.
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


class ProgressError(_environment.ConfigError):
    """The progress file cannot be read or written (the message names it and the fix)."""


def progress_path() -> Path:
    """``$WORKSHOP_PROGRESS``, else ``progress.json`` in the user data folder."""
    env = _environment.progress_file()
    if env is not None:
        return env
    import platformdirs

    return platformdirs.user_data_path("workshop", appauthor=False) / "progress.json"


def _empty() -> dict:
    return {"version": _VERSION, "modules": {}}


def _fix(path: Path) -> str:
    return (f"make {path.parent} writable, or set WORKSHOP_PROGRESS to a file you can write "
            "(export WORKSHOP_PROGRESS=~/workshop-progress.json)")


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr, flush=True)


def load(path: Path | None = None) -> dict:
    """The whole progress record: ``{"version": 1, "modules": {module: {check: entry}}}``.

    An unreadable file is set aside (see the module's documentation) and an empty record
    returned; single malformed records are left in place (see :func:`malformed_records`).
    """
    path = path or progress_path()
    try:
        text = path.read_bytes().decode("utf-8")
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("modules"), dict):
            raise ValueError("it is JSON, but not a progress record (no table of modules)")
        return data
    except FileNotFoundError:
        return _empty()
    except OSError as exc:
        raise ProgressError(f"cannot read the progress file {path}: {exc.strerror or exc}; {_fix(path)}") from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        why = f"{type(exc).__name__}: {exc}" if not str(exc).startswith("it is JSON") else str(exc)
        try:
            aside = set_aside(path, "unreadable")
        except OSError as err:
            raise ProgressError(f"the progress file {path} is unreadable ({why}) and could not be set aside "
                                f"({err.strerror or err}); move it away yourself, then check again") from None
        _note(f"the progress file {path} could not be read ({why[:200]}); it was set aside as {aside} "
              "and your progress starts afresh.")
        return _empty()


def _entry_problem(entry: object) -> str | None:
    """Why one check's record is malformed, or ``None`` when it is well formed."""
    if not isinstance(entry, dict):
        return f"is a {type(entry).__name__}, not a record"
    if entry.get("status") not in STATUSES:
        return f"has status {entry.get('status')!r} (expected one of {', '.join(STATUSES)})"
    attempts = entry.get("attempts", 0)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0:
        return f"has attempts {attempts!r} (expected a count)"
    for key in ("message", "updated", "first_passed"):
        if key in entry and not isinstance(entry[key], str):
            return f"has a {key} that is not text"
    return None


def malformed_records(module: str | None = None, path: Path | None = None) -> list[str]:
    """The records that are skipped because they are malformed, described one a line
    (``"astro.vp_marginal has status 5 (expected ...)"``), for ``module`` or all."""
    found = []
    for name, checks in load(path)["modules"].items():
        if module is not None and name != module:
            continue
        if not isinstance(checks, dict):
            found.append(f"{name} is a {type(checks).__name__}, not a table of checks")
            continue
        found += [f"{name}.{c} {why}" for c, e in checks.items() if (why := _entry_problem(e))]
    return found


def _write_atomically(path: Path, data: dict) -> None:
    try:
        with atomic_writer(path) as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write("\n")
    except OSError as exc:
        raise ProgressError(f"cannot save the progress file {path}: {exc.strerror or exc}; {_fix(path)}") from None


def record(module: str, check: str, status: str, message: str = "", path: Path | None = None) -> None:
    """Record the latest result of ``module.check``; counts attempts, remembers the first pass."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    path = path or progress_path()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with _guarded(path):
        data = load(path)
        checks = data["modules"].get(module)
        bad = (checks is not None and not isinstance(checks, dict)) or (
            isinstance(checks, dict) and check in checks and _entry_problem(checks[check]) is not None)
        if bad:  # the write replaces a malformed record: keep the file as it was first
            aside = set_aside(path, "malformed", copy=True)
            _note(f"the malformed progress record of {module}.{check} in {path} was replaced; the file as it "
                  f"was is kept as {aside}.")
            if not isinstance(checks, dict):
                data["modules"][module] = {}
            data["modules"][module].pop(check, None)
        entry = data["modules"].setdefault(module, {}).setdefault(check, {"attempts": 0})
        entry["attempts"] = int(entry.get("attempts", 0)) + 1
        entry["status"] = status
        entry["updated"] = now
        entry["message"] = message[:500]
        if status == "passed":
            entry.setdefault("first_passed", now)
        _write_atomically(path, data)


def module_progress(module: str, path: Path | None = None) -> dict[str, dict]:
    """``{check: {"status", "attempts", "updated", ...}}`` for the checks run so far
    (well-formed records only; see :func:`malformed_records`)."""
    checks = load(path)["modules"].get(module, {})
    if not isinstance(checks, dict):
        return {}
    return {k: v for k, v in checks.items() if _entry_problem(v) is None}


def passed_checks(module: str, path: Path | None = None) -> set[str]:
    """Names (without the module prefix) of the checks whose latest result is a pass."""
    return {k for k, v in module_progress(module, path).items() if v.get("status") == "passed"}


def reset(module: str | None = None, path: Path | None = None) -> None:
    """Forget the progress of ``module`` (of everything when ``None``)."""
    path = path or progress_path()
    with _guarded(path):
        data = load(path)
        if module is None:
            data = _empty()
        else:
            data["modules"].pop(module, None)
        _write_atomically(path, data)


@contextlib.contextmanager
def _guarded(path: Path):
    """:func:`workshop._files.locked`, with a folder that cannot be made or locked (or a
    copy that cannot be set aside) reported as a :class:`ProgressError`."""
    try:
        with locked(path):
            yield
    except OSError as exc:
        raise ProgressError(f"cannot use the progress file {path}: {exc.strerror or exc}; {_fix(path)}") from None
