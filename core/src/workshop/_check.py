"""What ``workshop.check(name, candidate)`` does: run a check, print a kind verdict, record it.

A wrong answer never raises at the learner: every outcome becomes a
:class:`~workshop.progress.CheckResult` and a few printed lines. When
``WORKSHOP_CHECK_REPORT`` names a file, each result is also appended to it as one JSON
line (``workshop check MODULE NOTEBOOK`` and ``workshop validate`` read it), tagged with
the current *phase* (``WORKSHOP_CHECK_PHASE`` or :func:`set_phase`).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any

from .progress import CheckResult

_PHASE: str | None = None


def set_phase(phase: str | None) -> None:
    """Tag the following report lines with ``phase`` (validation: ``"solution"``, ``"stub"``)."""
    global _PHASE
    _PHASE = phase


def current_phase() -> str:
    return _PHASE if _PHASE is not None else os.environ.get("WORKSHOP_CHECK_PHASE", "")


def _symbols() -> tuple[str, str, str]:
    enc = (getattr(sys.stdout, "encoding", None) or "utf-8").lower()
    try:
        "✓✗…".encode(enc)
        return "✓", "✗", "…"
    except (UnicodeEncodeError, LookupError):
        return "ok", "X", "..."


def _resolve(name: str):
    """``(declaration, Check)`` for ``"module.check"``, or a friendly message saying what is wrong."""
    from ._plugins import UnknownModule, registry, unknown_message

    if not isinstance(name, str) or name.count(".") != 1:
        return None, f"checks are named 'module.check', e.g. check(\"astro.vp_marginal\", vp_marginal); got {name!r}"
    module, short = name.split(".")
    reg = registry()
    if module not in reg.modules:
        reg = registry(refresh=True)  # installed since this kernel started (a Colab install cell)?
    try:
        decl = reg.get(module)
    except UnknownModule as exc:
        return None, str(exc)
    for c in decl.checks:
        if c.name == short:
            return (decl, c), ""
    known = [f"{module}.{c.name}" for c in decl.checks]
    return None, unknown_message("check", name, known, hint=f"'workshop info {module}' lists them")


def _from_learner(exc: BaseException, candidate: Any) -> bool:
    """Did the exception come out of the participant's own code (rather than the check's)?"""
    import inspect

    files = set()
    for obj in (candidate, getattr(candidate, "func", None), type(candidate).__call__):
        try:
            obj = inspect.unwrap(obj) if obj is not None else None  # jax.jit, functools.wraps
        except ValueError:
            continue
        code = getattr(obj, "__code__", None)
        if code is not None:
            files.add(code.co_filename)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in files:
            return True
        tb = tb.tb_next
    return False


def _render(exc) -> str:
    """The failure's message with expected/got, without the hint (printed on its own line)."""
    from .checking import describe

    lines = [str(exc.message)]
    if exc.expected is not None or exc.got is not None:
        lines.append(f"  expected: {describe(exc.expected)}")
        lines.append(f"  got:      {describe(exc.got)}")
    return "\n".join(lines)


def _verdict(name: str, candidate: Any, fn) -> CheckResult:
    from .checking import CheckFailed, NotAttempted, _hint_for_exception, error_text

    try:
        said = fn(candidate)
    except NotAttempted as exc:
        return CheckResult(name, "not_attempted", _render(exc), exc.hint or "")
    except CheckFailed as exc:
        return CheckResult(name, "failed", _render(exc), exc.hint or "")
    except Exception as exc:
        if _from_learner(exc, candidate):
            hint = _hint_for_exception(exc)
            return CheckResult(name, "failed", f"your code raised {error_text(exc)}", hint)
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return CheckResult(
            name, "failed",
            f"the check itself stopped with {error_text(exc, limit=400)}\n"
            f"  (at {os.path.basename(where.filename)}:{where.lineno}; this is probably not your fault: "
            "tell your instructor, and compare your function with the exercise text meanwhile)",
            "",
        )
    message = said if isinstance(said, str) else ""
    return CheckResult(name, "passed", message, "")


def _report(result: CheckResult) -> None:
    path = os.environ.get("WORKSHOP_CHECK_REPORT", "").strip()
    if not path:
        return
    line = {"check": result.name, "status": result.status, "message": result.message,
            "hint": result.hint, "phase": current_phase()}
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
    except OSError as exc:
        print(f"(could not write the check report {path}: {exc})", file=sys.stderr)


def _print(result: CheckResult) -> None:
    ok, bad, todo = _symbols()
    if result.status == "passed":
        print(f"{ok} {result.name} passed" + (f": {result.message}" if result.message else ""))
    elif result.status == "not_attempted":
        print(f"{todo} {result.name} not attempted yet: {result.message}")
    else:
        print(f"{bad} {result.name}: {result.message}")
    if result.hint and result.status != "passed":
        print(f"  hint: {result.hint}")


def run_check(name: str, candidate: Any, *, quiet: bool = False, record: bool = True) -> CheckResult:
    """Run the check ``name`` (``"module.check"``) on ``candidate``; see :func:`workshop.check`.

    Arguments:
        name: the check's full name.
        candidate: the participant's object (usually their function).
        quiet: do not print the verdict.
        record: record the result in the participant's progress.

    Returns:
        A :class:`~workshop.progress.CheckResult`; never raises for a wrong answer.
    """
    found, problem = _resolve(name)
    if found is None:
        result = CheckResult(str(name), "failed", problem, "check the name in the check(...) call")
        _report(result)
        if not quiet:
            _print(result)
        return result
    decl, chk = found
    from ._lazy import resolve

    try:
        fn = resolve(chk.ref)
    except ImportError as exc:
        result = CheckResult(name, "failed", f"the check could not be loaded ({exc}); is module "
                             f"{decl.distribution or decl.package!r} fully installed?", "")
    else:
        result = _verdict(name, candidate, fn)
        if result.status == "not_attempted" and not result.hint and chk.hint:
            result.hint = chk.hint
    if record:
        try:
            from .progress import record as record_progress

            record_progress(decl.name, chk.name, result.status, result.message)
        except (OSError, ValueError) as exc:  # ProgressError (a ValueError) names the file and the fix
            print(f"(your progress could not be saved: {exc})", file=sys.stderr)
    _report(result)
    if not quiet:
        _print(result)
        result._echoed = True  # the notebook need not echo it again (see CheckResult)
    return result
