"""Single-source lessons: one diffable source, two generated notebooks.

A lesson is a `jupytext <https://jupytext.readthedocs.io>`_ *percent-format* ``.py``
file inside the module package (``lessons/01_forward.py``). Percent format was chosen
because it is plain Python: it diffs and reviews like code, linters and editors read
it, and VS Code, PyCharm and JupyterLab (with jupytext) open it as a notebook.

Inside a code cell, solution code sits between marker lines::

    def forward_marginal(x0, t):
        # BEGIN SOLUTION: return the mean and the std of x(t) given x(0)
        mean = x0 * np.exp(-t)
        std = np.sqrt(1 - np.exp(-2 * t))
        return mean, std
        # END SOLUTION

From it :func:`build` makes

* the **exercise** notebook, where each block becomes ``# TODO: <text>`` and ``...``
  at the block's indentation (a stub function returns ``None``, which its check
  reports as "not attempted"), and
* the **solution** notebook, where only the marker lines are dropped.

Cell tags written in the source (``# %% tags=["raises-exception"]``) are kept; that one
marks a cell that shows an error on purpose, which ``workshop validate`` then accepts.

Both start with an "Open in Colab" badge and a cell that installs the module when it
is not importable (Colab, a fresh environment). Generated notebooks are deterministic
(no timestamps, cell ids derived from position and content), so the committed exercise
notebooks can be compared exactly with a fresh build (``python ci/build_notebooks.py --check``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ._declaration import Lesson, ModuleDeclaration
from ._files import write_text_atomically

__all__ = [
    "LessonError",
    "LessonCell",
    "BuiltLesson",
    "read_source",
    "build",
    "build_from_text",
    "notebook_text",
    "colab_url",
    "install_source",
    "module_folder",
    "write_lessons",
    "WriteResult",
    "CHECK_CALL",
]

BEGIN = re.compile(r"^(?P<indent>[ \t]*)#\s*BEGIN SOLUTION\b(?P<rest>.*)$")
END = re.compile(r"^(?P<indent>[ \t]*)#\s*END SOLUTION\b(?P<rest>.*)$")
_MARKER_ANYWHERE = re.compile(r"^[ \t]*(#\s*)?(BEGIN|END) SOLUTION\b", re.MULTILINE)
#: ``check("module.name", ...)`` calls in a cell (also ``workshop.check(...)``).
CHECK_CALL = re.compile(r"\bcheck\(\s*(['\"])(?P<name>[A-Za-z_]\w*\.[A-Za-z_]\w*)\1")
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


class LessonError(ValueError):
    """A lesson source cannot be built; the message names the lesson, cell and line."""


@dataclass(frozen=True)
class LessonCell:
    """One cell of a lesson, in both versions.

    Arguments:
        kind: ``"code"`` or ``"markdown"``.
        solution: the cell's source in the solution notebook.
        exercise: the cell's source in the exercise notebook.
        todos: the texts of its solution blocks (empty when it is no exercise).
        checks: the full names of the checks the cell calls.
        tags: the cell's tags from the source.
        hidden: the solution lines the exercise version leaves out.
    """

    kind: str
    solution: str
    exercise: str
    todos: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()

    @property
    def is_exercise(self) -> bool:
        return bool(self.todos)


@dataclass
class BuiltLesson:
    """A lesson turned into its two notebooks.

    Arguments:
        module: the module's declaration.
        lesson: the lesson's declaration.
        cells: the lesson's own cells (without the generated header cells).
        exercise, solution: the notebooks (``nbformat`` nodes).
        header: how many generated cells precede the lesson's own cells.
    """

    module: ModuleDeclaration
    lesson: Lesson
    cells: list[LessonCell]
    exercise: object
    solution: object
    header: int = 2
    problems: list[str] = field(default_factory=list)

    @property
    def check_names(self) -> list[str]:
        """Full names of the checks called anywhere in the lesson, in order, once each."""
        seen: dict[str, None] = {}
        for c in self.cells:
            for n in c.checks:
                seen.setdefault(n)
        return list(seen)

    def exercise_groups(self) -> list[tuple[int, list[int]]]:
        """``(exercise cell index, [indices of the following cells that call check()])``.

        The following cells run up to the next exercise cell; indices count the lesson's
        own cells (add :attr:`header` for notebook positions).
        """
        groups: list[tuple[int, list[int]]] = []
        for i, c in enumerate(self.cells):
            if c.is_exercise:
                groups.append((i, []))
            elif groups and c.checks:
                groups[-1][1].append(i)
        return groups


def module_folder(decl: ModuleDeclaration) -> Path | None:
    """The module's source folder (the one holding ``pyproject.toml`` and ``notebooks/``).

    Found from where the package is installed (``<folder>/src/<package>``); ``None`` for
    a package not installed from a source tree.
    """
    spec = importlib.util.find_spec(decl.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    pkg = Path(list(spec.submodule_search_locations)[0])
    if pkg.parent.name == "src" and (pkg.parent.parent / "pyproject.toml").is_file():
        return pkg.parent.parent
    return None


def read_source(decl: ModuleDeclaration, lesson: Lesson) -> str:
    """The text of a lesson's source, from inside the installed module package."""
    try:
        return resources.files(decl.package).joinpath(lesson.source).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError, NotADirectoryError) as exc:
        raise LessonError(
            f"{decl.name}/{lesson.id}: cannot read the lesson source {lesson.source!r} inside package "
            f"{decl.package!r} ({type(exc).__name__}); is the file there and shipped with the package?"
        ) from None


def _split_solution(source: str, where: str) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
    """``(solution, exercise, todos, hidden lines)`` of one code cell's source."""
    hidden: list[str] = []
    sol: list[str] = []
    exe: list[str] = []
    todos: list[str] = []
    open_at: tuple[int, str, str] | None = None  # (line number, indent, todo)
    for n, line in enumerate(source.split("\n"), start=1):
        b, e = BEGIN.match(line), END.match(line)
        if b:
            if open_at is not None:
                raise LessonError(f"{where}, line {n}: BEGIN SOLUTION inside the block opened at line {open_at[0]}; "
                                  "close it with '# END SOLUTION' first")
            rest = b["rest"].strip()
            if not rest.startswith(":") or not rest[1:].strip():
                raise LessonError(f"{where}, line {n}: write what the participant should do after a colon, "
                                  "e.g. '# BEGIN SOLUTION: return the mean and the std'")
            open_at = (n, b["indent"], rest[1:].strip())
            todos.append(open_at[2])
            exe.append(f"{b['indent']}# TODO: {open_at[2]}")
            exe.append(f"{b['indent']}...")
            continue
        if e:
            if open_at is None:
                raise LessonError(f"{where}, line {n}: END SOLUTION without a BEGIN SOLUTION before it")
            if e["rest"].strip():
                raise LessonError(f"{where}, line {n}: nothing may follow '# END SOLUTION' on its line")
            open_at = None
            continue
        sol.append(line)
        if open_at is None:
            exe.append(line)
        else:
            hidden.append(line)
        if open_at is not None and line.strip() and not line.startswith(open_at[1]):
            raise LessonError(f"{where}, line {n}: a solution line is indented less than its BEGIN SOLUTION "
                              f"marker (line {open_at[0]}); indent the markers like the code they enclose")
    if open_at is not None:
        raise LessonError(f"{where}, line {open_at[0]}: BEGIN SOLUTION is never closed; add '# END SOLUTION'")
    return "\n".join(sol), "\n".join(exe), tuple(todos), tuple(hidden)


def _parse(text: str, where: str) -> list[LessonCell]:
    import jupytext

    try:
        nb = jupytext.reads(text, fmt="py:percent")
    except Exception as exc:  # jupytext raises many kinds
        raise LessonError(f"{where}: not a readable percent-format source: {exc}") from None
    cells: list[LessonCell] = []
    for i, c in enumerate(nb.cells, start=1):
        here = f"{where}, cell {i}"
        src = c.source
        tags = tuple(c.metadata.get("tags", ()))
        if c.cell_type == "code":
            sol, exe, todos, hidden = _split_solution(src, here)
            checks = tuple(m["name"] for m in CHECK_CALL.finditer(sol))
            cells.append(LessonCell("code", sol, exe, todos, checks, tags, hidden))
        else:
            if _MARKER_ANYWHERE.search(src):
                raise LessonError(f"{here}: solution markers belong in code cells, not in {c.cell_type} cells")
            cells.append(LessonCell(c.cell_type, src, src, (), (), tags))
    return cells


def _repository(repository: str | None) -> str:
    """``repository`` checked, or (``None``) the address the installed core declares."""
    from . import _meta

    try:
        return _meta.checked_repository(repository) if repository else _meta.installed_repository()
    except _meta.RepositoryURLError as exc:
        raise LessonError(str(exc)) from None


def colab_url(decl: ModuleDeclaration, lesson: Lesson, repository: str | None = None) -> str | None:
    """The "Open in Colab" address of the committed exercise notebook (``None`` without ``path``).

    ``repository`` (default: the installed core's ``Repository`` project URL) is the
    GitHub address the notebook is published under.
    """
    from . import _meta

    if not decl.path:
        return None
    notebook = f"{decl.path.strip('/')}/notebooks/{lesson.id}.ipynb"
    return f"{_meta.colab_base(_repository(repository))}/{notebook}"


def install_source(decl: ModuleDeclaration, repository: str | None = None) -> str:
    """The first code cell: install the core and the module only when the module is missing."""
    from . import _meta

    if decl.path:
        base = _meta.pip_base(_repository(repository))
        dist = decl.distribution or decl.package.replace("_", "-")
        reqs = [f"workshop-core @ {base}#subdirectory=core", f"{dist} @ {base}#subdirectory={decl.path.strip('/')}"]
    else:
        reqs = [decl.distribution or decl.package.replace("_", "-")]
    req_lines = "".join(f"        {r!r},\n" for r in reqs)
    return (
        f"# Setup: installs the '{decl.name}' module when it is missing (Colab, a fresh environment).\n"
        "import importlib, importlib.util, subprocess, sys\n"
        f"if importlib.util.find_spec({decl.package!r}) is None:\n"
        "    subprocess.check_call([sys.executable, \"-m\", \"pip\", \"install\", \"--quiet\",\n"
        f"{req_lines}"
        "    ])\n"
        "    importlib.invalidate_caches()\n"
        "from workshop import check"
    )


def _header_markdown(decl: ModuleDeclaration, lesson: Lesson, variant: str, repository: str | None) -> str:
    url = colab_url(decl, lesson, repository)
    badge = f"[![Open In Colab]({COLAB_BADGE})]({url})\n\n" if url else ""
    if variant == "exercise":
        tail = (f"Exercises: replace each `...` under a `# TODO:` with your code, then run the "
                f"`check(...)` cell below it. Your progress: `workshop check {decl.name}`.")
    else:
        tail = "Solutions: every exercise is filled in. Try the exercise notebook first!"
    return f"{badge}**{decl.title}** · {lesson.title} ({lesson.minutes} min)\n\n{tail}"


def _cell_id(lesson_id: str, index: int, kind: str, source: str) -> str:
    digest = hashlib.sha256(f"{lesson_id}\0{index}\0{kind}\0{source}".encode()).hexdigest()[:8]
    return f"c{index:03d}-{digest}"


def _notebook(decl: ModuleDeclaration, lesson: Lesson, cells: list[LessonCell], variant: str,
              repository: str | None = None):
    import nbformat.v4 as v4

    nb = v4.new_notebook()
    nb.metadata = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python"},
        "workshop": {"module": decl.name, "lesson": lesson.id, "variant": variant},
    }
    items = [("markdown", _header_markdown(decl, lesson, variant, repository), ()),
             ("code", install_source(decl, repository), ())]
    items += [(c.kind, c.exercise if variant == "exercise" else c.solution, c.tags) for c in cells]
    for i, (kind, src, tags) in enumerate(items):
        if kind == "code":
            cell = v4.new_code_cell(src)
        elif kind == "markdown":
            cell = v4.new_markdown_cell(src)
        else:
            cell = v4.new_raw_cell(src)
        cell.id = _cell_id(lesson.id, i, kind, src)
        cell.metadata = {"tags": list(tags)} if tags else {}
        nb.cells.append(cell)
    return nb


def build_from_text(decl: ModuleDeclaration, lesson: Lesson, text: str,
                    repository: str | None = None) -> BuiltLesson:
    """Build both notebooks of ``lesson`` from its source ``text``; :class:`LessonError` if malformed.

    ``repository`` is the GitHub address their Colab badge and install cell point at
    (default: the installed core's ``Repository`` project URL).
    """
    cells = _parse(text, f"{decl.name}/{lesson.id} ({lesson.source})")
    repository = _repository(repository) if decl.path else repository
    exercise = _notebook(decl, lesson, cells, "exercise", repository)
    return BuiltLesson(decl, lesson, cells, exercise, _notebook(decl, lesson, cells, "solution", repository))


def build(decl: ModuleDeclaration, lesson: Lesson, repository: str | None = None) -> BuiltLesson:
    """Build both notebooks of an installed module's ``lesson`` (``repository``: see :func:`build_from_text`)."""
    return build_from_text(decl, lesson, read_source(decl, lesson), repository)


def notebook_text(nb) -> str:
    """The exact ``.ipynb`` text written to disk (stable: sorted keys, one trailing newline)."""
    import nbformat

    return nbformat.writes(nb, version=4).rstrip("\n") + "\n"


@dataclass(frozen=True)
class WriteResult:
    """What :func:`write_lessons` did with one file.

    ``action`` is ``"written"`` (new, or forced), ``"updated"`` (the lesson changed and the
    participant had not touched the old copy), ``"unchanged"`` or ``"kept"`` (the participant
    edited it; only ``force`` overwrites it).
    """

    path: Path
    action: str
    lesson: Lesson
    variant: str


#: In a participant's folder: the sha256 of each notebook as last written, to tell
#: "never touched" (safe to update) from "edited by the participant" (kept).
WRITTEN_MANIFEST = ".workshop-lessons.json"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_lessons(decl: ModuleDeclaration, dest: Path, *, solutions: bool = False, force: bool = False,
                  lessons: list[Lesson] | None = None) -> list[WriteResult]:
    """Write the participant's notebooks (``<id>.ipynb``; ``<id>_solution.ipynb`` with ``solutions``).

    A notebook the participant has edited is ``"kept"`` unless ``force``; one they never
    touched is brought up to date with the lesson. Raises :class:`LessonError` when a
    source cannot be built (before anything is written).
    """
    import json

    dest = Path(dest)
    chosen = list(lessons if lessons is not None else decl.lessons)
    builds = [build(decl, lesson) for lesson in chosen]  # fail before touching the folder
    dest.mkdir(parents=True, exist_ok=True)
    for lesson in chosen:
        for path in (dest / f"{lesson.id}.ipynb", dest / f"{lesson.id}_solution.ipynb"):
            if path.exists() and not path.is_file():
                raise LessonError(f"{path} is a folder where the notebook {path.name} belongs; nothing was "
                                  "written. Move it away, or choose another folder with --to")
    manifest_path = dest / WRITTEN_MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            manifest = {}
    except (OSError, ValueError):
        manifest = {}
    out: list[WriteResult] = []
    for lesson, built in zip(chosen, builds):
        todo = [("exercise", built.exercise, dest / f"{lesson.id}.ipynb")]
        if solutions:
            todo.append(("solution", built.solution, dest / f"{lesson.id}_solution.ipynb"))
        for variant, nb, path in todo:
            text = notebook_text(nb)
            action = "written"
            if path.exists():
                # Bytes that are not UTF-8 are someone's edit too: kept unless --force.
                current = path.read_bytes().decode("utf-8", errors="replace")
                if current == text:
                    manifest[path.name] = _sha(text)
                    out.append(WriteResult(path, "unchanged", lesson, variant))
                    continue
                untouched = manifest.get(path.name) == _sha(current)
                if not (force or untouched):
                    out.append(WriteResult(path, "kept", lesson, variant))
                    continue
                action = "updated" if untouched else "written"
            write_text_atomically(path, text)  # "\n" line ends: same bytes on every OS
            manifest[path.name] = _sha(text)
            out.append(WriteResult(path, action, lesson, variant))
    write_text_atomically(manifest_path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return out


def execute(nb, *, cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> None:
    """Execute ``nb`` in place in a fresh kernel running *this* Python; errors stay in the outputs.

    Arguments:
        nb: an ``nbformat`` notebook (its outputs are replaced).
        cwd: the kernel's working folder.
        env: variables added to this process's environment for the kernel.
        timeout: seconds allowed per cell (``nbclient.exceptions.CellTimeoutError`` beyond).
    """
    import os
    import sys

    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    class ThisPython(KernelSpecManager):
        # A "python3" kernelspec installed elsewhere may point to another Python; the
        # notebook must run with the packages of the environment running this command.
        def get_kernel_spec(self, kernel_name):
            from ipykernel.kernelspec import RESOURCES, get_kernel_dict

            spec = get_kernel_dict()
            spec["argv"] = [sys.executable, *spec["argv"][1:]]
            return self.kernel_spec_class(resource_dir=RESOURCES, **spec)

    full_env = dict(os.environ)
    full_env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    full_env.update(env or {})
    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=ThisPython())
    client = NotebookClient(nb, km=km, kernel_name="python3", timeout=timeout, allow_errors=True,
                            extra_arguments=["--IPKernelApp.log_level=ERROR"],
                            resources={"metadata": {"path": str(cwd)}})
    client.execute(env=full_env, cwd=str(cwd))


def cell_error(cell) -> tuple[str, str] | None:
    """``(ename, evalue)`` of the first error output of an executed cell, or ``None``."""
    for out in cell.get("outputs", ()):
        if out.get("output_type") == "error":
            return out.get("ename", "Error"), out.get("evalue", "")
    return None
