"""Every module has the same top-level shape, and its science code imports downward only.

The shape (see ``DESIGN.md``): ``plugin.py``, the science files, and two packages,
``demos/`` and ``checks/``, with one file per part of the module. Science code (every
top-level ``.py`` but ``plugin.py``, ``cli.py`` and ``__init__.py``) never imports the
demos, the checks, a command line (the module's ``cli.py``, ``workshop.cli``,
``workshop._cli*``): those call the science, not the other way round.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p for p in ROOT.glob("modules/*/src/workshop_*") if (p / "plugin.py").is_file())
NOT_SCIENCE = {"__init__.py", "plugin.py", "cli.py"}
# Any module's demos, checks or CLI, and the core's CLI.
_UPWARD = re.compile(r"^(workshop_\w+\.(demos|checks|cli)|workshop\.(cli|_cli\w*))(\.|$)")


def _imported(path: Path, package: str) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in a top-level file of ``package``,
    in functions too, and of ``importlib.import_module("...")`` with a literal name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.lineno, node.module or ""))
                continue
            base = ".".join(package.split(".")[: max(1, package.count(".") + 2 - node.level)])
            if node.module:
                found.append((node.lineno, f"{base}.{node.module}"))
            else:  # from . import demos
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def upward_imports(package_dir: Path) -> list[str]:
    """Every import of demos, checks or a CLI by the science files of one module package."""
    package = package_dir.name
    bad = []
    for path in sorted(package_dir.glob("*.py")):
        if path.name in NOT_SCIENCE:
            continue
        for line, name in _imported(path, package):
            if _UPWARD.match(name):
                bad.append(f"{package}/{path.name}:{line} imports {name}")
    return bad


def layout_problems(package_dir: Path) -> list[str]:
    """What differs from the shared shape: demos/ and checks/ packages, no demos_*/checks_* files."""
    problems = []
    for part in ("demos", "checks"):
        pkg = package_dir / part
        if not (pkg / "__init__.py").is_file():
            problems.append(f"{package_dir.name}/{part}/ is not a package (no {part}/__init__.py)")
        elif not [p for p in pkg.glob("*.py") if p.name != "__init__.py"]:
            problems.append(f"{package_dir.name}/{part}/ has no file besides __init__.py")
        for stray in sorted(package_dir.glob(f"{part}.py")) + sorted(package_dir.glob(f"{part}_*.py")):
            problems.append(f"{package_dir.name}/{stray.name} belongs in {part}/ (one file per part of the module)")
    return problems


def test_the_modules_are_found():
    if not (ROOT / "modules").is_dir():
        pytest.skip("the core is installed without the repository's modules/")
    names = {p.name for p in PACKAGES}
    assert {"workshop_intro", "workshop_astro", "workshop_protein", "workshop_wrapup"} <= names, names


@pytest.mark.parametrize("package_dir", PACKAGES, ids=lambda p: p.name)
def test_every_module_has_demos_and_checks_packages(package_dir):
    problems = layout_problems(package_dir)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("package_dir", PACKAGES, ids=lambda p: p.name)
def test_science_code_never_imports_demos_checks_or_the_cli(package_dir):
    bad = upward_imports(package_dir)
    assert not bad, "science code must not import demos, checks or a CLI; they call it:\n" + "\n".join(bad)


@pytest.mark.parametrize("package_dir", PACKAGES, ids=lambda p: p.name)
def test_declared_checks_and_demos_live_in_their_packages(package_dir):
    package = package_dir.name
    try:
        plugin = importlib.import_module(f"{package}.plugin")
    except ImportError:
        pytest.skip(f"{package} is not installed")
    decl = plugin.workshop_module()
    outside = [f"check {c.name}: {c.ref}" for c in decl.checks if not c.ref.startswith(f"{package}.checks.")]
    outside += [f"demo {d.name}: {d.ref}" for d in decl.demos if not d.ref.startswith(f"{package}.demos.")]
    assert not outside, (f"{package}: name each check by its file in checks/ and each demo by its file in demos/ "
                         "('pkg.checks.part:function'):\n" + "\n".join(outside))


def test_the_rules_catch_a_violation(tmp_path):
    pkg = tmp_path / "workshop_fake"
    (pkg / "demos").mkdir(parents=True)
    (pkg / "demos" / "__init__.py").write_text("")
    (pkg / "demos" / "toy.py").write_text("")
    (pkg / "checks_toy.py").write_text("")
    (pkg / "cli.py").write_text("from .demos import toy\n")  # the CLI may call demos
    (pkg / "model.py").write_text(
        "import numpy as np\nfrom .sde import VPSDE\n\n"
        "def f():\n    from .checks import toy\n    from . import demos\n    import workshop_fake.cli\n"
        "    from workshop._cli_learning import main\n    from workshop.checking import call\n"
    )
    (pkg / "sde.py").write_text("from workshop_other.demos.toy import toy\n")
    assert upward_imports(pkg) == [
        "workshop_fake/model.py:5 imports workshop_fake.checks",
        "workshop_fake/model.py:6 imports workshop_fake.demos",
        "workshop_fake/model.py:7 imports workshop_fake.cli",
        "workshop_fake/model.py:8 imports workshop._cli_learning",
        "workshop_fake/sde.py:1 imports workshop_other.demos.toy",
    ]
    assert layout_problems(pkg) == [
        "workshop_fake/checks/ is not a package (no checks/__init__.py)",
        "workshop_fake/checks_toy.py belongs in checks/ (one file per part of the module)",
    ]
