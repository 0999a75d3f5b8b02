"""workshop.check in a notebook, and `workshop check` (progress list, one check, a notebook run headlessly)."""

from __future__ import annotations

import json
import os

import nbformat
import nbformat.v4 as v4
import pytest
from click.testing import CliRunner

import workshop
from workshop import _check, progress
from workshop.cli import main

PLUGIN = '''
from workshop import hookimpl, ModuleDeclaration, Lesson, Check
@hookimpl
def workshop_module():
    return ModuleDeclaration(
        name="tinymod", title="Tiny module", summary="for tests", minutes=5, package="workshop_tinymod",
        lessons=[Lesson("01_basics", "Basics", "lessons/01_basics.py")],
        checks=[
            Check("double", "workshop_tinymod.checks:double", lesson="01_basics", summary="two times x",
                  hint="x + x is the same thing"),
            Check("mean", "workshop_tinymod.checks:mean", lesson="01_basics", summary="average of a list"),
            Check("buggy", "workshop_tinymod.checks:buggy", summary="a check with a bug in it"),
            Check("gone", "workshop_tinymod.checks:no_such_function", summary="a reference that does not resolve"),
            Check("raw", "workshop_tinymod.checks:raw", summary="calls the function without checking.call"),
        ],
    )
'''
CHECKS = '''
from workshop.checking import CheckFailed, assert_close, call

def double(candidate):
    for x in (0, 1, -3, 2.5, 10):
        got = call(candidate, x, what=f"x={x}")
        assert_close(got, 2 * x, what=f"double({x})", hint="multiply x by 2")
    return "checked on 5 inputs"

def mean(candidate):
    for xs in ([1.0], [1.0, 2.0, 6.0], [-1.0, 1.0]):
        got = call(candidate, list(xs), what=f"xs={xs}")
        assert_close(got, sum(xs) / len(xs), what=f"mean({xs})", hint="divide the sum by len(xs)")
    return "checked on 3 lists"

def buggy(candidate):
    return {}["oops"]

def raw(candidate):
    if candidate([1.0, 3.0]) != 2.0:
        raise CheckFailed("wrong mean")
'''


@pytest.fixture
def tinymod(fake_dist, monkeypatch):
    site = fake_dist({"tinymod": ("workshop_tinymod_plugin", PLUGIN)},
                     extra_modules={"workshop_tinymod/__init__.py": "", "workshop_tinymod/checks.py": CHECKS})
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    return site


def test_a_right_answer_passes_prints_a_tick_and_is_recorded(tinymod, capsys):
    result = workshop.check("tinymod.double", lambda x: 2 * x)
    assert result.status == "passed" and result and result.message == "checked on 5 inputs"
    assert "✓ tinymod.double passed: checked on 5 inputs" in capsys.readouterr().out
    assert progress.passed_checks("tinymod") == {"double"}
    assert repr(result) == "<check tinymod.double: passed>"


def test_a_wrong_answer_names_the_input_expected_got_and_a_hint(tinymod, capsys):
    result = workshop.check("tinymod.double", lambda x: x + 2)
    out = capsys.readouterr().out
    assert result.status == "failed" and not result
    assert "double(0)" in out and "expected: 0" in out and "got:      2" in out
    assert "hint: multiply x by 2" in out and result.hint == "multiply x by 2"
    assert "Traceback" not in out
    assert progress.module_progress("tinymod")["double"]["status"] == "failed"


def test_an_untouched_stub_is_not_attempted(tinymod, capsys):
    def double(x):
        ...

    result = workshop.check("tinymod.double", double)
    assert result.status == "not_attempted" and result.hint == "x + x is the same thing"  # the declared nudge
    out = capsys.readouterr().out
    assert "not attempted" in out and "hint: x + x is the same thing" in out


def test_an_exception_in_the_learners_code_is_their_message_not_a_traceback(tinymod, capsys):
    def mean(xs):
        return sum(xs) / (len(xs) - 1)

    result = workshop.check("tinymod.mean", mean)
    out = capsys.readouterr().out
    assert result.status == "failed"
    assert "ZeroDivisionError" in out and "xs=[1.0]" in out and "Traceback" not in out


def test_a_bug_in_the_check_itself_is_reported_briefly_and_kindly(tinymod, capsys):
    result = workshop.check("tinymod.buggy", lambda x: x)
    out = capsys.readouterr().out
    assert result.status == "failed"
    assert "the check itself stopped with KeyError" in out and "not your fault" in out
    assert "checks.py" in out and "Traceback" not in out


def test_a_check_that_cannot_be_imported_is_reported(tinymod, capsys):
    result = workshop.check("tinymod.gone", lambda x: x)
    assert result.status == "failed" and "could not be loaded" in capsys.readouterr().out


@pytest.mark.parametrize("name, expected", [
    ("tinymod.dobule", "did you mean 'tinymod.double'?"),
    ("tinymd.double", "did you mean 'tinymod'?"),
    ("double", "named 'module.check'"),
])
def test_a_misspelt_check_name_gets_the_closest_match(tinymod, capsys, name, expected):
    result = workshop.check(name, lambda x: 2 * x)
    out = capsys.readouterr().out
    assert result.status == "failed" and expected in out and "Traceback" not in out
    assert progress.module_progress("tinymod") == {}


def test_results_go_to_the_report_file_with_their_phase(tinymod, tmp_path, monkeypatch, capsys):
    report = tmp_path / "report.jsonl"
    monkeypatch.setenv("WORKSHOP_CHECK_REPORT", str(report))
    workshop.check("tinymod.double", lambda x: 2 * x)
    _check.set_phase("stub")
    try:
        workshop.check("tinymod.double", lambda x: None)
    finally:
        _check.set_phase(None)
    lines = [json.loads(l) for l in report.read_text().splitlines()]
    assert [(l["check"], l["status"], l["phase"]) for l in lines] == [
        ("tinymod.double", "passed", ""), ("tinymod.double", "not_attempted", "stub")]


def test_the_result_is_not_echoed_twice_in_a_notebook(tinymod, capsys):
    result = workshop.check("tinymod.double", lambda x: 2 * x)
    capsys.readouterr()
    result._ipython_display_()  # what IPython calls when the check is a cell's last line
    assert capsys.readouterr().out == ""
    result._ipython_display_()  # shown again on purpose: the short form
    assert capsys.readouterr().out.strip() == "<check tinymod.double: passed>"


def _participant_notebook(path, mean_body: str, double_body: str = "return 2 * x"):
    nb = v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "workshop": {"module": "tinymod", "lesson": "01_basics"}}
    nb.cells = [
        v4.new_code_cell("from workshop import check"),
        v4.new_code_cell(f"def double(x):\n    {double_body}"),
        v4.new_code_cell('check("tinymod.double", double)'),
        v4.new_code_cell(f"def mean(xs):\n    {mean_body}"),
        v4.new_code_cell('check("tinymod.mean", mean)'),
        v4.new_code_cell("undefined_name + 1"),
    ]
    nbformat.write(nb, path)
    return path


@pytest.mark.slow  # executes notebooks in a kernel
def test_check_notebook_one_right_one_wrong(tinymod, tmp_path):
    nb = _participant_notebook(tmp_path / "01_basics.ipynb", "return sum(xs) / (len(xs) + 1)")
    before = nb.read_text()
    res = CliRunner().invoke(main, ["check", "tinymod", str(nb)])
    assert res.exit_code == 1, res.output
    lines = res.output.splitlines()
    double = next(l for l in lines if " double " in l)
    mean = next(l for l in lines if " mean " in l)
    assert "passed" in double
    assert "failed" in mean and "mean([1.0])" in mean
    assert "hint: divide the sum by len(xs)" in res.output
    assert "1/2 passed, 1 failed" in res.output
    assert "cell 6 raised NameError" in res.output  # a broken cell is a note, not a crash
    assert nb.read_text() == before  # the participant's notebook is never modified
    # the run recorded progress, shown by `workshop check MODULE` and `workshop list`
    res = CliRunner().invoke(main, ["check", "tinymod"])
    assert res.exit_code == 0
    assert "1/5 checks passed" in res.output
    assert "Next: tinymod.mean in lesson 01_basics" in res.output
    listing = CliRunner().invoke(main, ["list"])
    assert any(l.startswith("tinymod") and l.rstrip().endswith("1/5") for l in listing.output.splitlines())


@pytest.mark.slow  # executes notebooks in a kernel
def test_check_a_folder_of_notebooks_with_untouched_stubs(tinymod, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    res = CliRunner().invoke(main, ["check", "tinymod", str(folder)])
    assert res.exit_code == 2 and "workshop lessons tinymod" in res.output
    _participant_notebook(folder / "stubs.ipynb", "# TODO: return the average\n    ...",
                          double_body="# TODO: return two times x\n    ...")
    (folder / "01_basics_solution.ipynb").write_text("not even json")  # solutions are not checked
    (folder / "other.ipynb").write_text(nbformat.writes(v4.new_notebook()))  # not this module's
    res = CliRunner().invoke(main, ["check", "tinymod", str(folder)])
    assert res.exit_code == 0, res.output
    assert "tinymod: stubs.ipynb" in res.output and "other.ipynb" not in res.output
    assert res.output.count("not attempted") == 2 and "0/2 passed" in res.output
    assert "tinymod: 0/2 checks passed in 1 notebook" in res.output


def test_check_one_check_and_unknown_names(tinymod):
    res = CliRunner().invoke(main, ["check", "tinymod.mean"])
    assert res.exit_code == 0
    assert "average of a list" in res.output and "lesson:  01_basics - Basics" in res.output
    assert "not attempted" in res.output and "hint:" not in res.output  # mean declares no hint
    res = CliRunner().invoke(main, ["check", "tinymod.double"])
    assert "hint:    x + x is the same thing" in res.output
    res = CliRunner().invoke(main, ["check", "tinymod.meen"])
    assert res.exit_code == 2 and "did you mean 'tinymod.mean'" in res.output
    res = CliRunner().invoke(main, ["check", "tinymd"])
    assert res.exit_code == 2 and "did you mean 'tinymod'" in res.output


def test_check_reset_forgets_progress(tinymod, capsys):
    workshop.check("tinymod.double", lambda x: 2 * x)
    assert progress.passed_checks("tinymod") == {"double"}
    res = CliRunner().invoke(main, ["check", "tinymod", "--reset"])
    assert res.exit_code == 0 and progress.passed_checks("tinymod") == set()


@pytest.mark.slow  # executes notebooks in a kernel
def test_check_notebook_stops_a_cell_that_runs_too_long(tinymod, tmp_path):
    nb = v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nb.cells = [v4.new_code_cell("from workshop import check"),
                v4.new_code_cell('check("tinymod.double", lambda x: 2 * x)'),
                v4.new_code_cell("import time\ntime.sleep(120)"),
                v4.new_code_cell('check("tinymod.mean", lambda xs: sum(xs) / len(xs))')]
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, path)
    res = CliRunner().invoke(main, ["check", "tinymod", str(path), "--timeout", "30"])
    assert res.exit_code == 1
    assert "a cell ran longer than 30 s (the cell starting 'import time'); the cells after it did not run" in res.output
    assert "double  passed" in res.output and "mean    not attempted" in res.output
    assert "1/2 passed" in res.output


def test_a_module_installed_after_the_first_check_is_found(fake_dist, capsys):
    from workshop._plugins import registry

    assert "tinymod" not in registry().modules  # the kernel started before the install
    fake_dist({"tinymod": ("workshop_tinymod_plugin", PLUGIN)},
              extra_modules={"workshop_tinymod/__init__.py": "", "workshop_tinymod/checks.py": CHECKS})
    assert workshop.check("tinymod.double", lambda x: 2 * x).status == "passed"


def test_an_exception_from_a_wrapped_learner_function_is_still_theirs(tinymod, capsys):
    import functools

    def mean(xs):
        return sum(xs) / (len(xs) - 2)

    @functools.wraps(mean)
    def wrapped(xs):
        return mean(xs)

    class Averager:
        def __call__(self, xs):
            return xs.missing_attribute

    for candidate, error in ((wrapped, "ZeroDivisionError"), (functools.partial(mean), "ZeroDivisionError"),
                             (Averager(), "AttributeError")):
        result = workshop.check("tinymod.raw", candidate)
        assert result.status == "failed"
        assert result.message.startswith(f"your code raised {error}"), result.message
    assert "the check itself" not in capsys.readouterr().out
