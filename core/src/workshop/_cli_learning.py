"""CLI commands of the learning machinery: lessons, check, new, validate, course."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from . import _environment

from ._cli_common import EPILOG, get_module
from ._errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEM, UsageProblem

#: The commands of this file; cli.py adds them to the launcher.
COMMANDS: list = []


def _marks() -> dict[str, str]:
    from ._check import _symbols

    ok, bad, todo = _symbols()
    return {"passed": click.style(ok, fg="green", bold=True), "failed": click.style(bad, fg="red", bold=True),
            "not_attempted": click.style("·" if todo == "…" else "-", fg="yellow")}


# --------------------------------------------------------------------------- lessons


@click.command(epilog=EPILOG)
@click.argument("module")
@click.option("--to", "dest", type=click.Path(), default=None,
              help="Folder for the notebooks (default: ./workshop-notebooks/MODULE).")
@click.option("--solutions", is_flag=True, help="Also write the solution notebooks (<lesson>_solution.ipynb).")
@click.option("--force", is_flag=True, help="Overwrite notebooks you have edited (your changes are lost).")
@click.option("--open", "open_lab", is_flag=True,
              help="Then open the folder in JupyterLab (a server on 127.0.0.1; Ctrl-C stops it).")
@click.option("--no-browser", is_flag=True,
              help="With --open: print the address only (the default where there is no display).")
def lessons(module: str, dest: str | None, solutions: bool, force: bool, open_lab: bool, no_browser: bool) -> None:
    """Write MODULE's lesson notebooks into a folder and say how to open them.

    A notebook you have already edited is kept unless --force is given. With --open,
    JupyterLab starts on the folder and prints its address (with its token); it runs
    until Ctrl-C. JupyterLab comes with 'uv sync' in the repository; with pip:
    pip install jupyterlab.

    \b
      workshop lessons intro --to ~/notebooks --open
    """
    from .lessons import LessonError, colab_url, write_lessons

    if no_browser and not open_lab:
        raise UsageProblem("--no-browser goes with --open (workshop lessons MODULE --open --no-browser)")
    decl = get_module(module)
    if not decl.lessons:
        click.echo(f"Module {module!r} has no lessons.")
        return
    dest = Path("workshop-notebooks") / module if dest is None else _environment.folder_path(dest, "--to")
    _environment.writable_folder(dest, "--to", "choose a folder you can write to with --to")
    try:
        results = write_lessons(decl, dest, solutions=solutions, force=force)
    except LessonError as exc:
        click.echo(click.style("cannot build the lessons: ", fg="red", bold=True) + str(exc), err=True)
        sys.exit(EXIT_PROBLEM)
    where = dest.resolve()
    click.echo(click.style(f"{decl.title}: notebooks in {where}", bold=True))
    for r in results:
        note = {"kept": "  (you edited it: kept your version; --force replaces it with the lesson's)",
                "updated": "  (the lesson changed; you had not edited it)"}.get(r.action, "")
        style = {"written": "green", "updated": "green", "kept": "yellow"}.get(r.action)
        click.echo(f"  {click.style(f'{r.action:<9}', fg=style)} {r.path.name:<32} {r.lesson.title}{note}")
    if open_lab:
        click.echo(f"\nCheck your answers in the notebook with check(...); see your progress with "
                   f"'workshop check {module}'.")
        _serve_lab(where, open_browser=not no_browser)
        return
    click.echo("\nOpen them with:")
    click.echo(f"  Jupyter:  jupyter lab {where}")
    click.echo(f"  VS Code:  code {where}   (choose this Python environment as the notebook kernel)")
    links = [(l.id, colab_url(decl, l)) for l in decl.lessons]
    if any(u for _, u in links):
        click.echo("  Colab:")
        for lid, url in links:
            if url:
                click.echo(f"    {lid}: {url}")
    click.echo(f"\nCheck your answers in the notebook with check(...); see your progress with 'workshop check {module}'.")


COMMANDS.append(lessons)


def _serve_lab(folder: Path, *, open_browser: bool) -> None:
    """JupyterLab on ``folder`` until Ctrl-C (exit 130) or until it is shut down from the browser."""
    from . import _lab

    browser = open_browser and _lab.has_display()
    try:
        server = _lab.start_lab(folder, open_browser=browser)
    except _lab.LabError as exc:
        click.echo(click.style("cannot open JupyterLab: ", fg="red", bold=True) + str(exc), err=True)
        sys.exit(EXIT_PROBLEM)
    click.echo(click.style(f"\nJupyterLab is running on {folder}:", bold=True))
    click.echo(f"  {server.url}")
    if not browser:
        port = server.base_url.rsplit(":", 1)[1]
        click.echo(f"Open that address in a browser (from another machine: ssh -L {port}:127.0.0.1:{port} "
                   "THIS_HOST, then the same address).")
    click.echo("Ctrl-C stops it (save your notebooks first).")
    try:
        code = server.process.wait()
    except KeyboardInterrupt:
        click.echo("\nStopping JupyterLab…", err=True)
        _lab.stop_lab(server)
        click.echo("JupyterLab stopped.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if code:
        click.echo(click.style(f"JupyterLab stopped with exit code {code}", fg="red") + " (its messages are above).",
                   err=True)
        sys.exit(EXIT_PROBLEM)
    click.echo("JupyterLab was shut down.")


# --------------------------------------------------------------------------- check


def _progress_list(decl) -> None:
    from .progress import module_progress, progress_path

    prog = module_progress(decl.name)
    marks = _marks()
    done = sum(prog.get(c.name, {}).get("status") == "passed" for c in decl.checks)
    click.echo(click.style(f"{decl.name}: {decl.title}  {done}/{len(decl.checks)} checks passed", bold=True))
    width = max((len(c.name) for c in decl.checks), default=10)
    next_up = None
    for c in decl.checks:
        entry = prog.get(c.name, {})
        status = entry.get("status", "not_attempted")
        tries = entry.get("attempts", 0)
        text = status.replace("_", " ") + (f" ({tries} tries)" if tries > 1 and status != "passed" else "")
        click.echo(f"  {marks[status]} {c.name:<{width}}  {text:<22} [{c.lesson or '-'}] {c.summary}")
        if status != "passed" and next_up is None:
            next_up = c
    if not decl.checks:
        click.echo("  (this module declares no checks)")
    elif next_up is None:
        click.echo(click.style("All done. Well played!", fg="green", bold=True))
    else:
        click.echo(f"Next: {decl.name}.{next_up.name}" + (f" in lesson {next_up.lesson}" if next_up.lesson else "")
                   + f"  (notebooks: 'workshop lessons {decl.name}')")
    _note_malformed(decl.name)
    click.echo(click.style(f"progress file: {progress_path()}", dim=True))


def _note_malformed(module: str) -> None:
    """Say how many records of the progress file were skipped, and which."""
    from .progress import malformed_records, progress_path

    bad = malformed_records(module)
    if bad:
        shown = "; ".join(bad[:3]) + ("; …" if len(bad) > 3 else "")
        click.echo(click.style(f"note: {len(bad)} malformed record(s) in {progress_path()} were skipped ({shown}). "
                               "Running those checks again records fresh results (the file is copied aside "
                               "first); or repair the file.", fg="yellow"), err=True)


def _one_check(decl, short: str) -> None:
    from ._plugins import unknown_message
    from .progress import module_progress

    found = [c for c in decl.checks if c.name == short]
    if not found:
        raise UsageProblem(unknown_message("check", f"{decl.name}.{short}",
                                                  [f"{decl.name}.{c.name}" for c in decl.checks],
                                                  hint=f"'workshop info {decl.name}' lists them"))
    c = found[0]
    entry = module_progress(decl.name).get(c.name, {})
    _note_malformed(decl.name)
    status = entry.get("status", "not_attempted")
    lesson = next((l for l in decl.lessons if l.id == c.lesson), None)
    click.echo(click.style(f"{decl.name}.{c.name}", bold=True) + f": {c.summary}")
    if lesson:
        click.echo(f"  lesson:  {lesson.id} - {lesson.title}")
    click.echo(f"  status:  {_marks()[status]} {status.replace('_', ' ')}"
               + (f" after {entry['attempts']} tries, last {entry.get('updated', '?')}" if entry.get("attempts") else ""))
    if entry.get("message") and status != "passed":
        click.echo("  last message: " + entry["message"].replace("\n", "\n  "))
    if c.hint and status != "passed":
        click.echo(f"  hint:    {c.hint}")
    click.echo(f"  in a notebook: check(\"{decl.name}.{c.name}\", your_function)")


def _lessons_of_notebook(decl, nb) -> tuple[list[str], list[str]]:
    """(lesson ids, check short names) the notebook is about."""
    from .lessons import CHECK_CALL

    meta = nb.metadata.get("workshop", {}) if hasattr(nb, "metadata") else {}
    called = [m["name"].split(".")[1] for cell in nb.cells if cell.cell_type == "code"
              for m in CHECK_CALL.finditer(cell.source) if m["name"].split(".")[0] == decl.name]
    lesson_ids = {c.lesson for c in decl.checks if c.name in called and c.lesson}
    if meta.get("module") == decl.name and meta.get("lesson"):
        lesson_ids.add(meta["lesson"])
    if lesson_ids:
        checks = [c.name for c in decl.checks if c.lesson in lesson_ids or c.name in called]
    else:
        checks = [c.name for c in decl.checks]
    return sorted(lesson_ids), checks


def _timed_out_cell(exc: Exception) -> str:
    """`` (the cell starting 'time.sleep(60)')`` from nbclient's timeout message, when it says."""
    lines = str(exc).splitlines()
    for k, line in enumerate(lines):
        if line.startswith("-----") and k + 1 < len(lines) and lines[k + 1].strip():
            return f" (the cell starting {lines[k + 1].strip()[:60]!r})"
    return ""


def _check_notebook(decl, path: Path, timeout: int) -> int:
    import nbformat
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from .lessons import cell_error, execute

    if not path.is_file():
        raise UsageProblem(f"no notebook at {path}" + (" (it is a folder)" if path.exists() else ""))
    try:
        nb = nbformat.read(path, as_version=4)
    except UnicodeDecodeError as exc:
        raise UsageProblem(f"cannot read the notebook {path}: it is not UTF-8 text (byte {exc.start}); "
                                  "give the .ipynb file Jupyter saved, or save it again as UTF-8") from None
    except Exception as exc:
        raise UsageProblem(f"cannot read the notebook {path}: {type(exc).__name__}: {str(exc)[:200]}; "
                                  f"give a Jupyter notebook (.ipynb), e.g. one 'workshop lessons {decl.name}' "
                                  "wrote") from None
    preset = _environment.preset() or "tiny"
    lesson_ids, checks = _lessons_of_notebook(decl, nb)
    click.echo(f"Running {path.name} from top to bottom (preset {preset})…")
    with tempfile.TemporaryDirectory(prefix="workshop-check-") as tmp:
        report = Path(tmp) / "checks.jsonl"
        env = {"WORKSHOP_CHECK_REPORT": str(report), "WORKSHOP_PRESET": preset, "MPLBACKEND": "Agg"}
        stopped = ""
        try:
            execute(nb, cwd=path.resolve().parent, env=env, timeout=timeout)
        except CellTimeoutError as exc:
            stopped = f"a cell ran longer than {timeout} s{_timed_out_cell(exc)}; the cells after it did not run"
        except DeadKernelError:
            stopped = "the Python kernel died (out of memory?); the cells after it did not run"
        except Exception as exc:  # a kernel that cannot start, a malformed notebook
            stopped = f"the notebook could not be run: {type(exc).__name__}: {str(exc)[:300]}"
        results = [json.loads(l) for l in report.read_text().splitlines()] if report.exists() else []
    latest = {r["check"]: r for r in results}
    marks = _marks()
    title = f"{decl.name}: {path.name}" + (f" (lesson {', '.join(lesson_ids)})" if lesson_ids else "")
    click.echo(click.style(title, bold=True))
    failed = passed = 0
    width = max((len(c) for c in checks), default=10)
    for short in checks:
        r = latest.get(f"{decl.name}.{short}")
        status = r["status"] if r else "not_attempted"
        passed += status == "passed"
        failed += status == "failed"
        line = f"  {marks[status]} {short:<{width}}  {status.replace('_', ' ')}"
        rest: list[str] = []
        if r and status != "passed":
            first, *rest = r["message"].splitlines() or [""]
            line += f": {first}"
        elif not r:
            line += " (its check() call did not run)" if any(short in c.source for c in nb.cells) else ""
        click.echo(line)
        for more in rest:
            click.echo(f"    {more}")
        if r and r.get("hint") and status != "passed":
            click.echo(f"      hint: {r['hint']}")
    for k, cell in enumerate(nb.cells):
        err = cell_error(cell) if cell.cell_type == "code" else None
        if err and "check(" not in cell.source and "raises-exception" not in cell.metadata.get("tags", ()):
            click.echo(click.style(f"  note: cell {k + 1} raised {err[0]}: {err[1][:160]}", fg="yellow"))
    if stopped:
        click.echo(click.style(f"  note: {stopped}", fg="yellow"))
    click.echo(f"{passed}/{len(checks)} passed" + (f", {failed} failed" if failed else ""))
    return (EXIT_PROBLEM if failed or stopped else EXIT_OK), passed, len(checks)


def _notebooks_in(decl, folder: Path) -> list[Path]:
    """The module's exercise notebooks in ``folder``: named after a lesson, or tagged with the module."""
    import nbformat

    ids = {l.id for l in decl.lessons}
    found = []
    for p in sorted(folder.glob("*.ipynb")):
        if p.stem.endswith("_solution"):
            continue
        if p.stem in ids:
            found.append(p)
            continue
        try:
            meta = nbformat.read(p, as_version=4).metadata.get("workshop", {})
        except Exception:
            continue
        if meta.get("module") == decl.name:
            found.append(p)
    return found


@click.command("check", epilog=EPILOG)
@click.argument("target")
@click.argument("notebook", required=False, type=click.Path(path_type=Path))
@click.option("--timeout", default=600, show_default=True, type=click.IntRange(min=1),
              help="Seconds allowed per notebook cell.")
@click.option("--reset", is_flag=True, help="Forget your recorded progress in MODULE.")
@click.option("--watch", is_flag=True, help="With NOTEBOOK: check it again each time it is saved, until Ctrl-C.")
@click.option("--every", "interval", default=1.0, show_default=True, type=click.FloatRange(min=0.01),
              metavar="SECONDS", help="With --watch: how often to look for a save.")
def check_cmd(target: str, notebook: Path | None, timeout: int, reset: bool, watch: bool, interval: float) -> None:
    """Your progress in a module, or run a notebook and check every exercise in it.

    \b
      workshop check astro                           progress list of module astro
      workshop check astro.vp_marginal               one check: what it asks, your status
      workshop check astro 01_forward_marginal.ipynb run the notebook, report each exercise
      workshop check astro workshop-notebooks/astro  every notebook of astro in that folder
      workshop check astro 01_forward_marginal.ipynb --watch   again at each save
    """
    module, _, short = target.partition(".")
    every_given = click.get_current_context().get_parameter_source("interval") != click.core.ParameterSource.DEFAULT
    if every_given and not watch:
        raise UsageProblem(f"--every only sets how often --watch looks for a save: add --watch "
                           f"(workshop check {module} NOTEBOOK.ipynb --watch --every {interval:g}) or drop --every")
    if watch and (notebook is None or short or reset):
        raise UsageProblem("--watch needs a notebook or a folder of them: "
                           f"workshop check {module} NOTEBOOK.ipynb --watch")
    decl = get_module(module)
    if watch:
        _watch_notebooks(decl, notebook, timeout, interval)
        return
    if reset:
        from .progress import reset as reset_progress

        reset_progress(decl.name)
        click.echo(f"Progress in {decl.name} forgotten.")
        return
    if short:
        if notebook is not None:
            raise UsageProblem("give either MODULE.CHECK or MODULE NOTEBOOK, not both")
        _one_check(decl, short)
    elif notebook is not None and notebook.is_dir():
        paths = _notebooks_in(decl, notebook)
        if not paths:
            raise UsageProblem(f"no notebook of module {decl.name!r} in {notebook} "
                                      f"(get them with 'workshop lessons {decl.name} --to {notebook}')")
        codes, passed, total = [], 0, 0
        for k, path in enumerate(paths):
            if k:
                click.echo()
            code, p, t = _check_notebook(decl, path, timeout)
            codes.append(code)
            passed, total = passed + p, total + t
        nbs = f"{len(paths)} notebook" + "s" * (len(paths) != 1)
        click.echo(click.style(f"\n{decl.name}: {passed}/{total} checks passed in {nbs}", bold=True))
        sys.exit(max(codes))
    elif notebook is not None:
        sys.exit(_check_notebook(decl, notebook, timeout)[0])
    else:
        _progress_list(decl)


COMMANDS.append(check_cmd)


def _watch_notebooks(decl, notebook: Path, timeout: int, interval: float) -> None:
    """Check ``notebook`` (or each notebook of the folder) now and at each save, until Ctrl-C."""
    from ._watch import watch

    if not notebook.exists():
        raise UsageProblem(f"no notebook at {notebook}")
    folder = notebook.is_dir()
    if folder and not _notebooks_in(decl, notebook):
        raise UsageProblem(f"no notebook of module {decl.name!r} in {notebook} "
                           f"(get them with 'workshop lessons {decl.name} --to {notebook}')")

    def paths() -> list[Path]:
        return _notebooks_in(decl, notebook) if folder else [notebook]

    checked: set[Path] = set()

    def on_save(path: Path) -> None:
        try:
            _check_notebook(decl, path, timeout)
        except UsageProblem as exc:
            if path not in checked:  # not a notebook to begin with: a usage error
                raise
            # It was one; unreadable just now (a save being written, a bad edit): say so, keep watching.
            click.echo(click.style("cannot check: ", fg="red", bold=True) + exc.format_message())
        checked.add(path)
        click.echo(click.style(f"\nWatching {notebook}: save to check again; Ctrl-C stops.", dim=True))

    try:
        watch(paths, on_save, interval=interval)
    except KeyboardInterrupt:
        click.echo("\nStopped watching.", err=True)
        sys.exit(EXIT_INTERRUPTED)


# --------------------------------------------------------------------------- validate


@click.command(epilog=EPILOG)
@click.argument("modules", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Validate every installed module.")
@click.option("--no-execute", is_flag=True, help="Only the static checks: do not execute notebooks.")
@click.option("--timeout", default=300, show_default=True, type=click.IntRange(min=1),
              help="Seconds allowed per notebook cell.")
@click.option("--preset", default="tiny", show_default=True, help="Preset the notebooks execute under.")
@click.option("--lesson", "only", multiple=True, help="Validate only this lesson id (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Print only problems and the verdict.")
def validate(modules: tuple[str, ...], all_: bool, no_execute: bool, timeout: int, preset: str,
             only: tuple[str, ...], quiet: bool) -> None:
    """Prove MODULE is sound: lessons build, solutions pass every check, stubs fail them.

    Also checks data hashes, that demos and checks import, and that the committed
    notebooks are fresh. Exit code 1 names every problem.
    """
    from . import hardware
    from ._plugins import registry
    from ._validate import validate_module

    try:
        hardware.validate_preset(preset)
    except hardware.PresetError as exc:
        raise UsageProblem(str(exc)) from None
    if not modules and not all_:
        raise UsageProblem("name a module (workshop validate astro) or use --all")
    reg = registry()
    decls = list(reg.modules.values()) if all_ else [get_module(m) for m in modules]
    marks = _marks()
    sym = {"ok": marks["passed"], "fail": marks["failed"], "warn": click.style("!", fg="yellow", bold=True)}

    def echo(level: str, message: str) -> None:
        if level != "ok" or not quiet:
            click.echo(f"  {sym[level]} " + message.replace("\n", "\n    "))

    bad: list[str] = []
    for decl in decls:
        if only:
            from ._plugins import unknown_message

            ids = [l.id for l in decl.lessons]
            for lid in only:
                if lid not in ids:
                    raise UsageProblem(unknown_message(f"lesson of module {decl.name!r} named", lid, ids))
        click.echo(click.style(f"Validating {decl.name} ({decl.package})", bold=True))
        rep = validate_module(decl, execute=not no_execute, timeout=timeout, preset=preset, echo=echo,
                              only=list(only) or None)
        if rep.ok:
            click.echo(click.style(f"{decl.name}: valid", fg="green", bold=True))
        else:
            bad.append(decl.name)
            click.echo(click.style(f"{decl.name}: {len(rep.failures)} problem(s)", fg="red", bold=True))
            for f in rep.failures:
                click.echo("  - " + f.replace("\n", "\n    "))
    if all_ and reg.broken:
        for b in reg.broken:
            bad.append(b.name)
            click.echo(click.style(f"{b.name}: broken plugin: {b.error}", fg="red", bold=True))
    if bad:
        sys.exit(EXIT_PROBLEM)


COMMANDS.append(validate)


# --------------------------------------------------------------------------- new


@click.command(epilog=EPILOG)
@click.argument("name")
@click.option("--to", "dest", type=click.Path(), default=None,
              help="Folder of the new module (default: ./modules/NAME).")
@click.option("--title", default=None, help="The module's title.")
def new(name: str, dest: str | None, title: str | None) -> None:
    """Scaffold a new module NAME: plugin, lesson with an exercise and its check, demo, tests."""
    from ._scaffold import ScaffoldError, scaffold

    if dest is not None:
        dest = _environment.folder_path(dest, "--to")
        _environment.writable_folder(dest.parent, "--to", "choose a folder you can write to with --to")
    try:
        folder = scaffold(name, dest, title=title)
    except ScaffoldError as exc:
        raise UsageProblem(str(exc)) from None
    click.echo(click.style(f"Created module {name!r} in {folder}", fg="green", bold=True))
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            click.echo(f"  {p.relative_to(folder)}")
    steps = [(f"pip install -e {folder}", f"or: uv pip install -e {folder}"),
             ("workshop list", f"{name} shows up"),
             (f"workshop validate {name}", "the lesson builds, the solution passes its check, the stub fails it"),
             (f"python -m pytest {folder / 'tests'}", "the module's own tests")]
    width = max(len(cmd) for cmd, _ in steps)
    click.echo("\nNext:")
    for cmd, why in steps:
        click.echo(f"  {cmd:<{width}}   # {why}")
    from ._scaffold import _workspace_root

    root, _ = _workspace_root(folder.parent)
    if root is not None and 'workspace = true' in (folder / "pyproject.toml").read_text():
        rel = folder.relative_to(root).as_posix()
        dist = f"workshop-{name.replace('_', '-')}"
        click.echo(f"\nIn the repository: add \"{dist}\" to the root pyproject.toml's dependencies and "
                   f"[tool.uv.sources] ({dist} = {{ workspace = true }}), and \"{rel}/tests\" to its testpaths.")


COMMANDS.append(new)


# --------------------------------------------------------------------------- course


@click.group()
def course() -> None:
    """Course manifests: modules in order, with minutes and breaks."""


@course.command("show", epilog=EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--start", default=None, help="Start time HH:MM (default: the manifest's, else 09:00).")
def course_show(file: Path, start: str | None) -> None:
    """Print the agenda of the course FILE with times, lessons and what is installed."""
    from ._course import CourseError, load_course, render_agenda

    try:
        c = load_course(file)
        lines, missing = render_agenda(c, start=start)
    except CourseError as exc:
        raise UsageProblem(str(exc)) from None
    for line in lines:
        click.echo(line)
    if missing:
        click.echo(click.style(f"\nNot installed: {', '.join(missing)}", fg="yellow"))


@course.command("lessons", epilog=EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "dest", type=click.Path(), default="workshop-notebooks",
              show_default=True, help="Folder; each module's notebooks go in a subfolder named after it.")
@click.option("--solutions", is_flag=True, help="Also write the solution notebooks.")
def course_lessons(file: Path, dest: str, solutions: bool) -> None:
    """Write the notebooks of every module of the course FILE, in agenda order."""
    from ._course import CourseError, load_course
    from ._plugins import registry
    from .lessons import LessonError, write_lessons

    try:
        c = load_course(file)
    except CourseError as exc:
        raise UsageProblem(str(exc)) from None
    dest = _environment.folder_path(dest, "--to")
    _environment.writable_folder(dest, "--to", "choose a folder you can write to with --to")
    reg = registry()
    problems = 0
    for name in dict.fromkeys(c.modules):
        decl = reg.modules.get(name)
        if decl is None:
            problems += 1
            dist = f"workshop-{name.replace('_', '-')}"
            click.echo(click.style(f"{name}: not installed", fg="yellow") + f" (pip install {dist})")
            continue
        try:
            results = write_lessons(decl, dest / name, solutions=solutions)
        except LessonError as exc:
            problems += 1
            click.echo(click.style(f"{name}: cannot build the lessons: ", fg="red") + str(exc))
            continue
        counts = {a: sum(r.action == a for r in results) for a in ("written", "updated", "unchanged", "kept")}
        summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n)
        click.echo(f"{name}: {len(results)} notebooks in {(dest / name).resolve()} ({summary or 'no lessons'})")
    click.echo(f"\nOpen them with: jupyter lab {dest.resolve()}")
    if problems:
        sys.exit(EXIT_PROBLEM)


COMMANDS.append(course)

