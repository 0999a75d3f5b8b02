"""`workshop new NAME`: a complete module that installs, lists, validates and tests green."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from workshop import _plugins
from workshop._scaffold import ScaffoldError, scaffold
from workshop.cli import main
from workshop.lessons import build_from_text, notebook_text

EXPECTED_FILES = {
    "pyproject.toml", "README.md", "notebooks/01_stable_sums.ipynb", "tests/test_demo_mod_module.py",
    "src/workshop_demo_mod/__init__.py", "src/workshop_demo_mod/plugin.py", "src/workshop_demo_mod/checks/__init__.py",
    "src/workshop_demo_mod/checks/stable_sums.py", "src/workshop_demo_mod/demos/__init__.py",
    "src/workshop_demo_mod/demos/stable_sums.py", "src/workshop_demo_mod/numerics.py",
    "src/workshop_demo_mod/lessons/01_stable_sums.py", "src/workshop_demo_mod/data/scores.txt",
}


@pytest.fixture
def clean_modules():
    yield
    for key in [k for k in sys.modules if k.startswith("workshop_demo_mod")]:
        del sys.modules[key]


def _register(folder: Path, monkeypatch) -> Path:
    """What `pip install -e` gives a module, without touching the environment: a dist-info with the entry point."""
    src = folder / "src"
    info = src / "workshop_demo_mod-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: workshop-demo-mod\nVersion: 0.1.0\n")
    pyproject = tomllib.loads((folder / "pyproject.toml").read_text())
    eps = pyproject["project"]["entry-points"]["workshop.modules"]
    (info / "entry_points.txt").write_text("[workshop.modules]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    monkeypatch.syspath_prepend(str(src))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")])))
    _plugins.set_registry(None)  # discover again, as a new `workshop` process would
    return src


def test_new_creates_a_complete_module(tmp_path, monkeypatch, clean_modules):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["new", "demo_mod"])
    assert res.exit_code == 0, res.output
    folder = tmp_path / "modules" / "demo_mod"
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert files == EXPECTED_FILES
    assert "pip install -e" in res.output and "workshop validate demo_mod" in res.output
    pyproject = tomllib.loads((folder / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "workshop-demo-mod"
    assert pyproject["project"]["entry-points"]["workshop.modules"] == {"demo_mod": "workshop_demo_mod.plugin"}
    assert "workshop-core" in pyproject["project"]["dependencies"]
    assert pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/workshop_demo_mod"]
    assert "uv" not in pyproject.get("tool", {})  # no workspace around it: plain pip works


@pytest.mark.slow  # executes notebooks in a kernel
def test_the_new_module_lists_and_validates(tmp_path, monkeypatch, clean_modules):
    folder = scaffold("demo_mod", tmp_path / "demo_mod")
    _register(folder, monkeypatch)
    listing = CliRunner().invoke(main, ["list"])
    row = next(l for l in listing.output.splitlines() if l.startswith("demo_mod"))
    assert "Demo mod" in row and row.split()[-1] == "0/1"
    info = CliRunner().invoke(main, ["info", "demo_mod"])
    assert "demo_mod.logsumexp" in info.output and "01_stable_sums" in info.output
    res = CliRunner().invoke(main, ["validate", "demo_mod"])
    assert res.exit_code == 0, res.output
    assert "demo_mod: valid" in res.output


@pytest.mark.slow  # executes notebooks in a kernel
def test_the_new_modules_own_tests_pass(tmp_path, monkeypatch, clean_modules):
    folder = scaffold("demo_mod", tmp_path / "demo_mod")
    src = _register(folder, monkeypatch)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder / "tests")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "6 passed" in run.stdout


def test_the_committed_notebook_is_the_fresh_build(tmp_path, clean_modules):
    folder = scaffold("demo_mod", tmp_path / "demo_mod")
    sys.path.insert(0, str(folder / "src"))
    try:
        from workshop_demo_mod.plugin import workshop_module

        decl = workshop_module()
        lesson = decl.lessons[0]
        built = build_from_text(decl, lesson, (folder / "src/workshop_demo_mod" / lesson.source).read_text())
    finally:
        sys.path.remove(str(folder / "src"))
    assert (folder / "notebooks/01_stable_sums.ipynb").read_text() == notebook_text(built.exercise)
    assert "# TODO: subtract the largest value m" in notebook_text(built.exercise)
    assert "np.max(x)" not in notebook_text(built.exercise)


def test_inside_a_uv_workspace_the_module_is_a_member_with_a_repository_path(tmp_path, clean_modules):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "ws"\nversion = "0"\n\n'
                                             '[tool.uv.workspace]\nmembers = ["core", "modules/*"]\n')
    (tmp_path / "modules").mkdir()
    folder = tmp_path / "modules" / "demo_mod"
    res = CliRunner().invoke(main, ["new", "demo_mod", "--to", str(folder)])
    assert res.exit_code == 0, res.output
    assert '"modules/demo_mod/tests" to its testpaths' in res.output
    pyproject = tomllib.loads((folder / "pyproject.toml").read_text())
    assert pyproject["tool"]["uv"]["sources"] == {"workshop-core": {"workspace": True}}
    assert 'path="modules/demo_mod"' in (folder / "src/workshop_demo_mod/plugin.py").read_text()
    assert "colab.research.google.com" in (folder / "notebooks/01_stable_sums.ipynb").read_text()


@pytest.mark.parametrize("name", ["Demo", "1demo", "demo-mod", "class", ""])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(ScaffoldError, match="not a valid module name"):
        scaffold(name, tmp_path / "x")
    res = CliRunner().invoke(main, ["new", name, "--to", str(tmp_path / "y")])
    assert res.exit_code == 2


def test_an_existing_folder_or_module_is_not_overwritten(tmp_path, monkeypatch, clean_modules):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    res = CliRunner().invoke(main, ["new", "demo_mod", "--to", str(tmp_path / "taken")])
    assert res.exit_code == 2 and "not empty" in res.output
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
    folder = scaffold("demo_mod", tmp_path / "first")
    _register(folder, monkeypatch)
    with pytest.raises(ScaffoldError, match="already installed"):
        scaffold("demo_mod", tmp_path / "second")
