"""Single-source lessons: parsing markers, building both notebooks, writing them for participants."""

from __future__ import annotations

import json

import nbformat
import pytest
from click.testing import CliRunner

from workshop import Check, Lesson, ModuleDeclaration, _meta
from workshop import lessons as L
from workshop.cli import main

SOURCE = '''# %% [markdown]
# # Doubling
# Some words.

# %%
from workshop import check

# %% tags=["exercise"]
def double(x):
    """Twice x."""
    # BEGIN SOLUTION: return two times x
    y = 2 * x
    return y
    # END SOLUTION

# %%
check("tinymod.double", double)

# %%
print(double(21))
'''

DECL = ModuleDeclaration(
    name="tinymod", title="Tiny module", summary="for tests", minutes=5, package="workshop_tinymod",
    distribution="workshop-tinymod", path="modules/tinymod",
    lessons=[Lesson("01_double", "Doubling", "lessons/01_double.py", minutes=7)],
    checks=[Check("double", "workshop_tinymod.checks:double", lesson="01_double")],
)
LESSON = DECL.lessons[0]

PLUGIN = '''
from workshop import hookimpl, ModuleDeclaration, Lesson, Check
@hookimpl
def workshop_module():
    return ModuleDeclaration(
        name="tinymod", title="Tiny module", summary="for tests", minutes=5, package="workshop_tinymod",
        path="modules/tinymod",
        lessons=[Lesson("01_double", "Doubling", "lessons/01_double.py")],
        checks=[Check("double", "workshop_tinymod.checks:double", lesson="01_double")],
    )
'''


def test_exercise_replaces_each_solution_block_by_a_todo_and_a_stub():
    built = L.build_from_text(DECL, LESSON, SOURCE)
    cell = built.cells[2]
    assert cell.is_exercise and cell.todos == ("return two times x",)
    assert cell.exercise == 'def double(x):\n    """Twice x."""\n    # TODO: return two times x\n    ...'
    assert "BEGIN" not in cell.solution and "END SOLUTION" not in cell.solution
    assert "    y = 2 * x\n    return y" in cell.solution
    assert cell.tags == ("exercise",)
    namespace: dict = {}
    exec(cell.exercise, namespace)  # the stub is valid Python and returns None
    assert namespace["double"](3) is None
    exec(cell.solution, namespace)
    assert namespace["double"](3) == 6


def test_notebooks_are_valid_deterministic_and_carry_no_tool_metadata():
    a = L.build_from_text(DECL, LESSON, SOURCE)
    b = L.build_from_text(DECL, LESSON, SOURCE)
    for nb in (a.exercise, a.solution):
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        assert "jupytext" not in nb.metadata
        assert nb.metadata["workshop"]["lesson"] == "01_double"
    assert L.notebook_text(a.exercise) == L.notebook_text(b.exercise)
    assert L.notebook_text(a.solution) == L.notebook_text(b.solution)
    ids = [c.id for c in a.exercise.cells]
    assert len(set(ids)) == len(ids)
    text = L.notebook_text(a.exercise)
    assert "y = 2 * x" not in text and "# TODO: return two times x" in text
    assert "y = 2 * x" in L.notebook_text(a.solution)
    assert json.loads(text)["cells"][2]["metadata"] == {}


def test_first_cells_are_the_colab_badge_and_an_install_cell():
    nb = L.build_from_text(DECL, LESSON, SOURCE).exercise
    repo = _meta.REPOSITORY.split("github.com/")[1]
    url = f"https://colab.research.google.com/github/{repo}/blob/{_meta.BRANCH}/modules/tinymod/notebooks/01_double.ipynb"
    assert L.colab_url(DECL, LESSON) == url
    assert nb.cells[0].cell_type == "markdown" and url in nb.cells[0].source and "colab-badge.svg" in nb.cells[0].source
    install = nb.cells[1].source
    assert nb.cells[1].cell_type == "code"
    assert 'find_spec(\'workshop_tinymod\') is None' in install
    assert f"git+{_meta.REPOSITORY}@{_meta.BRANCH}#subdirectory=core" in install
    assert "workshop-tinymod @ git+" in install and "#subdirectory=modules/tinymod" in install
    compile(install, "<install>", "exec")


def test_a_module_without_a_repository_path_installs_from_the_index_and_has_no_badge():
    decl = ModuleDeclaration(name="solo", title="Solo", summary="", minutes=1, package="workshop_solo",
                             distribution="workshop-solo", lessons=[LESSON])
    nb = L.build_from_text(decl, LESSON, SOURCE).exercise
    assert L.colab_url(decl, LESSON) is None
    assert "colab" not in nb.cells[0].source.lower()
    assert "'workshop-solo'" in nb.cells[1].source and "git+" not in nb.cells[1].source


def test_exercise_groups_pair_each_exercise_with_its_check_cells():
    built = L.build_from_text(DECL, LESSON, SOURCE)
    assert built.check_names == ["tinymod.double"]
    assert built.exercise_groups() == [(2, [3])]


@pytest.mark.parametrize("body, expected", [
    ("def f():\n    # BEGIN SOLUTION: do it\n    return 1\n", "never closed"),
    ("def f():\n    return 1\n    # END SOLUTION\n", "without a BEGIN"),
    ("# BEGIN SOLUTION: a\n# BEGIN SOLUTION: b\nx = 1\n# END SOLUTION\n", "inside the block"),
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n", "after a colon"),
    ("def f():\n    # BEGIN SOLUTION:   \n    return 1\n    # END SOLUTION\n", "after a colon"),
    ("def f():\n    # BEGIN SOLUTION: x\nreturn_1 = 1\n    # END SOLUTION\n", "indented less"),
    ("def f():\n    # BEGIN SOLUTION: x\n    return 1\n    # END SOLUTION extra\n", "nothing may follow"),
])
def test_malformed_markers_are_reported_with_cell_and_line(body, expected):
    with pytest.raises(L.LessonError) as info:
        L.build_from_text(DECL, LESSON, "# %%\nimport math\n\n# %%\n" + body)
    assert expected in str(info.value)
    assert "tinymod/01_double" in str(info.value) and "cell 2" in str(info.value)


def test_markers_in_markdown_are_refused():
    with pytest.raises(L.LessonError, match="markdown"):
        L.build_from_text(DECL, LESSON, "# %% [markdown]\n# BEGIN SOLUTION: no\n# text\n# END SOLUTION\n")


def test_two_blocks_in_one_cell_and_top_level_code():
    text = "# %%\n# BEGIN SOLUTION: set a\na = 1\n# END SOLUTION\nb = 2\n# BEGIN SOLUTION: set c\nc = 3\n# END SOLUTION\n"
    cell = L.build_from_text(DECL, LESSON, text).cells[0]
    assert cell.todos == ("set a", "set c")
    assert cell.exercise == "# TODO: set a\n...\nb = 2\n# TODO: set c\n..."
    assert cell.solution == "a = 1\nb = 2\nc = 3"


@pytest.fixture
def tinymod(fake_dist):
    return fake_dist(
        {"tinymod": ("workshop_tinymod_plugin", PLUGIN)},
        extra_modules={"workshop_tinymod/__init__.py": "", "workshop_tinymod/lessons/01_double.py": SOURCE},
    )


def test_write_lessons_keeps_edited_notebooks_unless_forced(tinymod, tmp_path):
    from workshop._plugins import registry

    decl = registry().get("tinymod")
    dest = tmp_path / "nb"
    first = L.write_lessons(decl, dest, solutions=True)
    assert [(r.path.name, r.action) for r in first] == [("01_double.ipynb", "written"), ("01_double_solution.ipynb", "written")]
    assert [r.action for r in L.write_lessons(decl, dest, solutions=True)] == ["unchanged", "unchanged"]
    edited = (dest / "01_double.ipynb").read_text().replace("# TODO: return two times x", "return 2 * x")
    (dest / "01_double.ipynb").write_text(edited)
    assert [r.action for r in L.write_lessons(decl, dest)] == ["kept"]
    assert (dest / "01_double.ipynb").read_text() == edited
    assert [r.action for r in L.write_lessons(decl, dest, force=True)] == ["written"]
    assert "# TODO: return two times x" in (dest / "01_double.ipynb").read_text()


def test_an_untouched_notebook_follows_the_lesson_an_edited_one_does_not(tinymod, tmp_path):
    from workshop._plugins import registry

    decl = registry().get("tinymod")
    source = tinymod / "workshop_tinymod" / "lessons" / "01_double.py"
    dest = tmp_path / "nb"
    L.write_lessons(decl, dest, solutions=True)
    source.write_text(source.read_text().replace("Some words.", "Better words."))
    assert [r.action for r in L.write_lessons(decl, dest, solutions=True)] == ["updated", "updated"]
    assert "Better words." in (dest / "01_double.ipynb").read_text()
    mine = (dest / "01_double.ipynb").read_text().replace("# TODO: return two times x", "return 2 * x")
    (dest / "01_double.ipynb").write_text(mine)
    source.write_text(source.read_text().replace("Better words.", "Best words."))
    assert [r.action for r in L.write_lessons(decl, dest, solutions=True)] == ["kept", "updated"]
    assert (dest / "01_double.ipynb").read_text() == mine
    assert "Best words." in (dest / "01_double_solution.ipynb").read_text()


def test_a_broken_lesson_writes_nothing(fake_dist, tmp_path):
    from workshop._plugins import registry

    fake_dist({"tinymod": ("workshop_tinymod_plugin", PLUGIN)},
              extra_modules={"workshop_tinymod/__init__.py": "",
                             "workshop_tinymod/lessons/01_double.py": "# %%\n# END SOLUTION\n"})
    with pytest.raises(L.LessonError):
        L.write_lessons(registry().get("tinymod"), tmp_path / "nb")
    assert not (tmp_path / "nb").exists()


def test_lessons_command_writes_notebooks_and_says_how_to_open_them(tinymod, tmp_path):
    dest = tmp_path / "mine"
    res = CliRunner().invoke(main, ["lessons", "tinymod", "--to", str(dest)])
    assert res.exit_code == 0, res.output
    assert (dest / "01_double.ipynb").is_file() and not (dest / "01_double_solution.ipynb").exists()
    assert f"jupyter lab {dest.resolve()}" in res.output
    assert "VS Code" in res.output and "colab.research.google.com" in res.output
    (dest / "01_double.ipynb").write_text((dest / "01_double.ipynb").read_text().replace("...", "return 2 * x"))
    res = CliRunner().invoke(main, ["lessons", "tinymod", "--to", str(dest), "--solutions"])
    assert res.exit_code == 0
    assert "kept" in res.output and "you edited it" in res.output and "--force" in res.output
    assert (dest / "01_double_solution.ipynb").is_file()


def test_lessons_command_names_the_closest_module(tinymod):
    res = CliRunner().invoke(main, ["lessons", "tinymd"])
    assert res.exit_code == 2
    assert "did you mean 'tinymod'" in res.output


def test_lessons_command_reports_a_broken_source_without_traceback(fake_dist, tmp_path):
    fake_dist({"tinymod": ("workshop_tinymod_plugin", PLUGIN)},
              extra_modules={"workshop_tinymod/__init__.py": "",
                             "workshop_tinymod/lessons/01_double.py": "# %%\n# BEGIN SOLUTION: x\nx = 1\n"})
    res = CliRunner().invoke(main, ["lessons", "tinymod", "--to", str(tmp_path / "x")])
    assert res.exit_code == 1
    assert "never closed" in res.output and "Traceback" not in res.output


def _build_notebooks_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "ci" / "build_notebooks.py"
    spec = importlib.util.spec_from_file_location("build_notebooks", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ci_build_notebooks_writes_and_detects_stale_notebooks(tinymod, tmp_path, capsys):
    script = _build_notebooks_script()
    repo = tmp_path / "repo"
    (repo / "modules" / "tinymod").mkdir(parents=True)
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\n[project.urls]\nRepository = "https://github.com/o/n"\n')
    args = ["--repo", str(repo), "tinymod"]
    assert script.main(["--check", *args]) == 1
    assert "modules/tinymod/notebooks/01_double.ipynb (missing)" in capsys.readouterr().err
    assert script.main(args) == 0
    committed = repo / "modules" / "tinymod" / "notebooks" / "01_double.ipynb"
    assert "# TODO: return two times x" in committed.read_text()
    assert "colab.research.google.com/github/o/n/blob/" in committed.read_text()  # the repo's own address
    assert script.main(["--check", *args]) == 0
    committed.write_text(committed.read_text().replace("Doubling", "Halving"))
    capsys.readouterr()
    assert script.main(["--check", *args]) == 1
    assert "Stale files" in capsys.readouterr().err
    assert script.main(args) == 0 and script.main(["--check", *args]) == 0
    (committed.parent / "99_old.ipynb").write_text("{}")
    assert script.main(["--check", *args]) == 1
    assert "99_old.ipynb: no lesson produces it" in capsys.readouterr().err
