"""``workshop validate MODULE``: prove that a module is sound, like ``rustlings dev check``.

For every lesson: both notebooks build (markers well formed, every ``check()`` names a
declared check, every cell compiles), the solution notebook executes under the ``tiny``
preset, every check of the lesson passes there, and, in the same kernel, every check
fails again once its exercise cell is put back to the stub the participant starts from.
Besides: every dataset entry has a sha256 and embedded files match it, every demo and
check reference imports, every check is exercised by a lesson, and the committed
exercise notebooks are fresh.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ._declaration import ModuleDeclaration

#: The cell tag (the one nbclient and nbconvert know) of a cell that raises on purpose, e.g.
#: to show a JAX tracer error: ``# %% tags=["raises-exception"]``.
RAISES = "raises-exception"

Echo = Callable[[str, str], None]  # (level, message) with level in ok/fail/warn/info


@dataclass
class Report:
    """What validation found: ``(level, message)`` lines, level ``ok``, ``warn`` or ``fail``."""

    module: str
    lines: list[tuple[str, str]] = field(default_factory=list)
    echo: Echo | None = None

    def add(self, level: str, message: str) -> None:
        self.lines.append((level, message))
        if self.echo is not None:
            self.echo(level, message)

    @property
    def failures(self) -> list[str]:
        return [m for lvl, m in self.lines if lvl == "fail"]

    @property
    def ok(self) -> bool:
        return not self.failures


def _compile_problem(source: str) -> str | None:
    """Why an (IPython) cell does not compile, or ``None``."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        compile(TransformerManager().transform_cell(source), "<cell>", "exec")
    except SyntaxError as exc:
        return f"{exc.msg} (line {exc.lineno})"
    return None


def _check_data(decl: ModuleDeclaration, report: Report) -> None:
    import re

    from .data import ModuleData

    md = ModuleData.of(decl)
    for e in decl.datasets:
        if e.pin:
            report.add("ok", f"dataset {e.name}: remote, published without a checksum: pinned on first use")
            continue
        if not re.fullmatch(r"[0-9a-f]{64}", e.sha256 or ""):
            report.add("fail", f"dataset {e.name}: no valid sha256")
            continue
        if e.embedded is None:
            report.add("ok", f"dataset {e.name}: remote, sha256 {e.sha256[:12]}…")
            continue
        state = md.status(e.name)
        if state == "embedded":
            report.add("ok", f"dataset {e.name}: embedded file matches its sha256")
        elif not md.path(e.name).is_file():
            report.add("fail", f"dataset {e.name}: embedded file {e.embedded!r} is missing from package {decl.package}")
        else:
            report.add("fail", f"dataset {e.name}: embedded file {e.embedded!r} does not match its sha256 "
                               "(update the hash in plugin.py with workshop.data.sha256_of, or restore the file)")


def _check_refs(decl: ModuleDeclaration, report: Report) -> None:
    from ._lazy import resolve

    for kind, items in (("demo", decl.demos), ("check", decl.checks)):
        for item in items:
            try:
                obj = resolve(item.ref)
            except Exception as exc:
                report.add("fail", f"{kind} {item.name}: {item.ref} does not import: {type(exc).__name__}: {exc}")
                continue
            if not callable(obj):
                report.add("fail", f"{kind} {item.name}: {item.ref} is not a function")
            else:
                report.add("ok", f"{kind} {item.name}: {item.ref} resolves")


def _validation_notebook(built):
    """The solution notebook, then the stub phase: each exercise stub followed by its check cells."""
    import copy

    import nbformat.v4 as v4

    nb = copy.deepcopy(built.solution)
    labels: list[tuple[str, int | None]] = [("setup", None)] * built.header
    labels += [("solution", i) for i in range(len(built.cells))]
    phase = "import workshop._check as _workshop_check\n_workshop_check.set_phase({!r})"
    nb.cells.insert(0, v4.new_code_cell(phase.format("solution"), id="phase-solution"))
    labels.insert(0, ("setup", None))
    nb.cells.append(v4.new_code_cell(phase.format("stub"), id="phase-stub"))
    labels.append(("setup", None))
    for n, (ex, check_cells) in enumerate(built.exercise_groups()):
        nb.cells.append(v4.new_code_cell(built.cells[ex].exercise, id=f"stub-{n}"))
        labels.append(("stub", ex))
        for j in check_cells:
            nb.cells.append(v4.new_code_cell(built.cells[j].solution, id=f"stub-{n}-check-{j}"))
            labels.append(("stub-check", j))
    return nb, labels


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()[:70]
    return (source.strip().splitlines() or [""])[0][:70]


def _validate_lesson(decl: ModuleDeclaration, lesson, report: Report, *, execute: bool, timeout: int,
                     preset: str, called: set[str]) -> bool:
    """Validate one lesson; ``False`` when it does not even build."""
    from . import lessons as L

    where = f"lesson {lesson.id}"
    try:
        built = L.build(decl, lesson)
    except L.LessonError as exc:
        report.add("fail", f"{where}: {exc}")
        return False
    declared = {f"{decl.name}.{c.name}": c for c in decl.checks}
    broken = False
    for i, cell in enumerate(built.cells, start=1):
        if cell.kind != "code":
            continue
        for variant, src in (("solution", cell.solution), ("exercise", cell.exercise)):
            why = _compile_problem(src)
            if why:
                broken = True
                report.add("fail", f"{where}, cell {i} ({variant} version) does not compile: {why}")
            if variant == "solution" and src == cell.exercise:
                break
    for name in built.check_names:
        c = declared.get(name)
        other, short = name.split(".")
        if c is None and other != decl.name:
            # a lesson may reuse another module's check (e.g. a wrap-up revisiting an exercise)
            from ._plugins import registry

            theirs = registry().modules.get(other)
            if theirs is not None and any(x.name == short for x in theirs.checks):
                continue
        if c is None:
            from ._plugins import unknown_message

            broken = True
            report.add("fail", f"{where}: check({name!r}) is not declared: "
                               + unknown_message("check", name, list(declared)))
        elif c.lesson and c.lesson != lesson.id:
            report.add("fail", f"{where}: calls {name}, which plugin.py assigns to lesson {c.lesson!r}")
    called.update(built.check_names)
    exercise_lines = {l.strip() for c in built.cells for l in c.exercise.splitlines()}
    for i, cell in enumerate(built.cells, start=1):
        leaked = [l.strip() for l in cell.hidden if len(l.strip()) >= 16 and l.strip() in exercise_lines
                  and not l.strip().startswith("#")]
        if leaked:
            report.add("warn", f"{where}, cell {i}: the solution line {leaked[0]!r} also appears in the exercise "
                               "notebook; does it give the answer away?")
    groups = built.exercise_groups()
    for ex, check_cells in groups:
        if not check_cells and not built.cells[ex].checks:
            report.add("warn", f"{where}, cell {ex + 1}: an exercise with no check() cell after it (no feedback)")
    n_ex = len(groups)
    report.add("ok" if not broken else "fail",
               f"{where}: builds ({len(built.cells)} cells, {n_ex} exercise{'s' * (n_ex != 1)}, "
               f"{len(built.check_names)} check{'s' * (len(built.check_names) != 1)})")
    if not broken and execute:
        _execute_lesson(decl, built, report, timeout=timeout, preset=preset)
    return True


def _execute_lesson(decl: ModuleDeclaration, built, report: Report, *, timeout: int, preset: str) -> None:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from . import lessons as L

    where = f"lesson {built.lesson.id}"
    nb, labels = _validation_notebook(built)
    with tempfile.TemporaryDirectory(prefix="workshop-validate-") as tmp:
        tmp_path = Path(tmp)
        reports = tmp_path / "checks.jsonl"
        env = {
            "WORKSHOP_PRESET": preset,
            "WORKSHOP_PROGRESS": str(tmp_path / "progress.json"),  # never the participant's own
            "WORKSHOP_CHECK_REPORT": str(reports),
            "MPLBACKEND": "Agg",
        }
        work = tmp_path / "cwd"
        work.mkdir()
        import time

        t0 = time.monotonic()
        try:
            L.execute(nb, cwd=work, env=env, timeout=timeout)
        except CellTimeoutError:
            report.add("fail", f"{where}: a cell ran longer than {timeout} s under preset {preset!r}")
        except DeadKernelError as exc:
            report.add("fail", f"{where}: the kernel died ({exc}); out of memory?")
        except Exception as exc:  # a kernel that cannot start, a broken notebook
            report.add("fail", f"{where}: the notebook could not be executed: {type(exc).__name__}: {exc}")
        took = time.monotonic() - t0
        results = [json.loads(l) for l in reports.read_text().splitlines()] if reports.exists() else []
    solution_errors = 0
    for cell, (phase, idx) in zip(nb.cells, labels):
        err = L.cell_error(cell)
        if err is None or phase == "stub-check":
            continue
        if idx is not None and RAISES in built.cells[idx].tags:
            continue  # a cell that shows an error on purpose
        label = (f"cell {idx + 1} of {built.lesson.source} ({_first_line(built.cells[idx].solution)!r})"
                 if idx is not None
                 else "the setup cell")
        if phase == "stub":
            report.add("fail", f"{where}: the exercise stub of {label} raises {err[0]}: {err[1][:200]}")
        else:
            solution_errors += 1
            report.add("fail", f"{where}: the solution notebook fails at {label}: {err[0]}: {err[1][:300]}")
    if not solution_errors:
        report.add("ok", f"{where}: the solution notebook executes (preset {preset}, {took:.1f} s)")
    expected = list(dict.fromkeys(
        [n for n in built.check_names if n.split(".")[0] == decl.name]
        + [f"{decl.name}.{c.name}" for c in decl.checks if c.lesson == built.lesson.id]))
    stubbed = {n for ex, cells in built.exercise_groups() for j in (ex, *cells) for n in built.cells[j].checks}
    for name in expected:
        sol = [r for r in results if r["check"] == name and r["phase"] == "solution"]
        stub = [r for r in results if r["check"] == name and r["phase"] == "stub"]
        bad = [r for r in sol if r["status"] != "passed"]
        if not sol:
            report.add("fail", f"{name}: never ran in the solution notebook of {built.lesson.id}"
                               + ("" if name in built.check_names else " (no cell calls it)"))
        elif bad:
            report.add("fail", f"{name}: fails on the solution ({bad[0]['status']}): {bad[0]['message'][:300]}")
        else:
            report.add("ok", f"{name}: passes on the solution")
        if name not in stubbed:
            if sol:
                report.add("fail", f"{name}: no exercise cell comes before its check() cell, so the unsolved "
                                   "stub cannot be tested; put the check after the exercise it checks")
        elif not stub:
            report.add("fail", f"{name}: did not run after the exercise stub (an error before the check() call?)")
        elif any(r["status"] == "passed" for r in stub):
            report.add("fail", f"{name}: PASSES on the unsolved exercise stub; the check cannot tell an "
                               "untouched exercise from a solved one")
        else:
            report.add("ok", f"{name}: fails on the exercise stub ({stub[0]['status'].replace('_', ' ')})")


def _check_committed(decl: ModuleDeclaration, report: Report, lessons) -> None:
    from . import lessons as L

    folder = L.module_folder(decl)
    if folder is None:
        return
    stale = []
    for lesson in lessons:
        path = folder / "notebooks" / f"{lesson.id}.ipynb"
        try:
            fresh = L.notebook_text(L.build(decl, lesson).exercise)
        except L.LessonError:
            return  # reported with the lesson; freshness means nothing until it builds
        if not path.is_file() or path.read_text(encoding="utf-8") != fresh:
            stale.append(path.name + ("" if path.is_file() else " (missing)"))
    if stale:
        script = next((p / "ci" / "build_notebooks.py" for p in folder.parents
                       if (p / "ci" / "build_notebooks.py").is_file()), None)
        fix = (f"python {script} {decl.name}" if script is not None
               else f"workshop lessons {decl.name} --to {folder / 'notebooks'} --force")
        report.add("fail", f"committed notebooks are stale: {', '.join(stale)}; regenerate them with '{fix}'")
    elif lessons:
        report.add("ok", f"committed notebooks in {folder / 'notebooks'} are fresh")


def validate_module(decl: ModuleDeclaration, *, execute: bool = True, timeout: int = 300,
                    preset: str = "tiny", echo: Echo | None = None, only: list[str] | None = None) -> Report:
    """Validate one module; returns a :class:`Report` (``report.ok`` is the verdict).

    Arguments:
        decl: the module's declaration.
        execute: execute the notebooks (the slow part); ``False`` checks only statically.
        timeout: seconds allowed per notebook cell.
        preset: the preset notebooks execute under (``WORKSHOP_PRESET``).
        echo: called with ``(level, message)`` as findings arrive.
        only: validate just these lesson ids (and their checks); ``None`` for all.
    """
    report = Report(decl.name, echo=echo)
    _check_data(decl, report)
    _check_refs(decl, report)
    called: set[str] = set()
    lessons = [l for l in decl.lessons if only is None or l.id in only]
    unbuilt = {lesson.id for lesson in lessons
               if not _validate_lesson(decl, lesson, report, execute=execute, timeout=timeout, preset=preset,
                                       called=called)}
    for c in decl.checks:
        if only is not None and c.lesson not in only:
            continue
        if c.lesson in unbuilt:
            continue  # its lesson did not build: already reported
        if f"{decl.name}.{c.name}" not in called:
            report.add("fail", f"check {decl.name}.{c.name} is not called by any lesson"
                               + (f" (plugin.py assigns it to {c.lesson!r})" if c.lesson else ""))
    _check_committed(decl, report, lessons)
    return report
