"""The core's command files import downward only: no import circle among them."""

from __future__ import annotations

import ast
from pathlib import Path

import workshop

CORE = Path(workshop.__file__).parent


def _imports(path: Path) -> set[str]:
    """The core modules a file imports (``from . import x``, ``from .x import y``), anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_the_core_has_no_import_circle():
    graph = {p.stem: _imports(p) & {q.stem for q in CORE.glob("*.py")} for p in CORE.glob("*.py")}
    graph.pop("__init__", None)
    for g in graph.values():
        g.discard("__init__")

    def reaches(start, goal, seen=()):
        return any(n == goal or (n not in seen and reaches(n, goal, (*seen, n))) for n in graph.get(start, ()))

    circles = sorted(m for m in graph if reaches(m, m))
    assert not circles, f"modules on an import circle: {circles}"


def test_the_learning_commands_are_registered_on_the_launcher():
    from workshop.cli import main

    assert {"lessons", "check", "validate", "new", "course"} <= set(main.commands)
