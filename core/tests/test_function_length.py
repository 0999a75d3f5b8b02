"""A function a contributor must change fits on a screen: none in the science code is over
80 lines unless its docstring says why ("Long because ...")."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 80
REASON = "Long because"
# Demos, checks and lesson sources are not science code (they call it).
NOT_SCIENCE_DIRS = {"demos", "checks", "lessons"}


def science_files(root: Path = ROOT) -> list[Path]:
    """The Python files of the core package and of every module's package, demos/checks/lessons left out."""
    packages = [root / "core" / "src" / "workshop", *sorted((root / "modules").glob("*/src/workshop_*"))]
    files = []
    for package in packages:
        for path in sorted(package.rglob("*.py")):
            inside = path.relative_to(package).parts
            if NOT_SCIENCE_DIRS & set(inside[:-1]) or path.name.startswith(("demos", "checks")):
                continue
            files.append(path)
    return files


def long_functions(path: Path, max_lines: int = MAX_LINES) -> list[str]:
    """``file:function:length`` for every function over ``max_lines`` whose docstring gives no reason."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > max_lines and REASON not in (ast.get_docstring(node) or ""):
                found.append(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{node.name}:{length}")
    return found


def test_the_walk_finds_the_science_code_and_leaves_out_demos_and_checks():
    files = {p.relative_to(ROOT).as_posix() for p in science_files()}
    assert "modules/astro_diffusion/src/workshop_astro/train.py" in files
    assert "core/src/workshop/cli.py" in files
    assert not any(part in NOT_SCIENCE_DIRS for f in files for part in f.split("/")[:-1])
    assert not any(Path(f).name.startswith(("demos", "checks")) for f in files)


def test_a_long_function_is_named_unless_its_docstring_says_why(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES))
    (tmp_path / "long.py").write_text(f"def long_one():\n{body}\n"
                                      f"def explained():\n    \"\"\"Long because a table.\"\"\"\n{body}")
    assert long_functions(tmp_path / "long.py") == [f"{tmp_path / 'long.py'}:long_one:{MAX_LINES + 1}"]


def test_no_function_in_the_science_code_is_over_80_lines_without_a_reason():
    found = [f for path in science_files() for f in long_functions(path)]
    assert not found, (f"functions over {MAX_LINES} lines: {', '.join(found)}; split them into named steps, or, "
                       f"where the length is the honest shape, say why in one docstring sentence "
                       f"beginning '{REASON}'")
