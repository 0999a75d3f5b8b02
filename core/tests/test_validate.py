"""`workshop validate`: solutions pass, stubs fail, data hashes, references, fresh notebooks."""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from workshop._plugins import registry
from workshop._scaffold import scaffold
from workshop._validate import validate_module
from workshop.cli import main


def _discoverable(folder: Path, name: str, monkeypatch) -> Path:
    """Make a scaffolded module importable and discoverable here and in notebook kernels, uninstalled."""
    src = folder / "src"
    info = src / f"workshop_{name}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: workshop-{name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[workshop.modules]\n{name} = workshop_{name}.plugin\n")
    monkeypatch.syspath_prepend(str(src))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")])))
    return src


@pytest.fixture
def module(tmp_path, monkeypatch):
    """A freshly scaffolded module 'valmod', discoverable but not installed."""
    folder = scaffold("valmod", tmp_path / "valmod", check_installed=False)
    src = _discoverable(folder, "valmod", monkeypatch)
    yield folder, src / "workshop_valmod"
    for key in [k for k in sys.modules if k == "workshop_valmod" or k.startswith("workshop_valmod.")]:
        del sys.modules[key]


def _lesson(pkg: Path) -> Path:
    return pkg / "lessons" / "01_stable_sums.py"


@pytest.mark.slow  # executes notebooks in a kernel
def test_a_fresh_scaffold_is_valid(module):
    res = CliRunner().invoke(main, ["validate", "valmod"])
    assert res.exit_code == 0, res.output
    for expected in ("dataset scores.txt: embedded file matches its sha256", "demo softmax", "builds (",
                     "the solution notebook executes (preset tiny", "valmod.logsumexp: passes on the solution",
                     "valmod.logsumexp: fails on the exercise stub (not attempted)", "are fresh", "valmod: valid"):
        assert expected in res.output, expected


@pytest.mark.slow  # executes notebooks in a kernel
def test_deleting_the_solution_body_makes_validate_fail(module):
    folder, pkg = module
    text = _lesson(pkg).read_text()
    text = re.sub(r"(# BEGIN SOLUTION:[^\n]*\n).*?(\n\s*# END SOLUTION)", r"\1    pass\2", text, flags=re.S)
    _lesson(pkg).write_text(text)
    res = CliRunner().invoke(main, ["validate", "valmod"])
    assert res.exit_code == 1
    assert "valmod.logsumexp: fails on the solution (not_attempted)" in res.output
    assert "the solution notebook fails at cell 9 of lessons/01_stable_sums.py ('scores = np.array([1000.0, 1001.0, 1002.0])')" in res.output
    assert "stale" not in res.output  # the exercise notebook itself did not change


def test_a_stale_committed_notebook_is_reported(module):
    folder, pkg = module
    _lesson(pkg).write_text(_lesson(pkg).read_text().replace("# # Stable sums", "# # Stable sums, revised"))
    report = validate_module(registry().get("valmod"), execute=False)
    assert report.failures == [
        f"committed notebooks are stale: 01_stable_sums.ipynb; regenerate them with 'workshop lessons valmod "
        f"--to {folder / 'notebooks'} --force'"]
    script = folder.parent / "ci" / "build_notebooks.py"  # inside a repository: its script
    script.parent.mkdir()
    script.write_text("")
    report = validate_module(registry().get("valmod"), execute=False)
    assert report.failures == [
        f"committed notebooks are stale: 01_stable_sums.ipynb; regenerate them with 'python {script} valmod'"]


@pytest.mark.slow  # executes notebooks in a kernel
def test_a_check_that_passes_on_the_stub_is_caught(module):
    folder, pkg = module
    (pkg / "checks" / "stable_sums.py").write_text("def logsumexp(candidate):\n    return 'anything goes'\n")
    report = validate_module(registry().get("valmod"))
    assert not report.ok
    assert any("PASSES on the unsolved exercise stub" in f for f in report.failures)
    assert not any("fails on the solution" in f for f in report.failures)


def test_static_problems_are_named(module):
    folder, pkg = module
    plugin = (pkg / "plugin.py").read_text()
    plugin = re.sub(r'sha256="[0-9a-f]{64}"', 'sha256="' + "0" * 64 + '"', plugin)
    plugin = plugin.replace("demos.stable_sums:softmax_temperatures", "demos.stable_sums:no_such_demo")
    (pkg / "plugin.py").write_text(plugin)
    lesson = _lesson(pkg).read_text()
    lesson = lesson.replace('check("valmod.logsumexp", logsumexp)',
                            'check("valmod.logsumexp", logsumexp)\ncheck("valmod.logsumexpp", logsumexp)')
    _lesson(pkg).write_text(lesson + "\n# %%\ndef broken(:\n    pass\n")
    report = validate_module(registry().get("valmod"), execute=False)
    text = "\n".join(report.failures)
    assert "dataset scores.txt: embedded file 'data/scores.txt' does not match its sha256" in text
    assert "demo softmax: workshop_valmod.demos.stable_sums:no_such_demo does not import" in text
    assert "check('valmod.logsumexpp') is not declared" in text and "did you mean 'valmod.logsumexp'" in text
    assert "does not compile: invalid syntax" in text


def test_a_malformed_lesson_is_reported_once(module):
    folder, pkg = module
    _lesson(pkg).write_text(_lesson(pkg).read_text().replace("    # END SOLUTION\n", ""))
    report = validate_module(registry().get("valmod"), execute=False)
    assert len(report.failures) == 1 and "never closed" in report.failures[0]


def test_an_embedded_file_that_is_missing(module):
    folder, pkg = module
    (pkg / "data" / "scores.txt").unlink()
    report = validate_module(registry().get("valmod"), execute=False)
    assert any("embedded file 'data/scores.txt' is missing" in f for f in report.failures)


def test_validate_usage_errors(module):
    res = CliRunner().invoke(main, ["validate", "valmd"])
    assert res.exit_code == 2 and "did you mean 'valmod'" in res.output
    res = CliRunner().invoke(main, ["validate"])
    assert res.exit_code == 2 and "--all" in res.output
    res = CliRunner().invoke(main, ["validate", "valmod", "--preset", "huge"])
    assert res.exit_code == 2
    res = CliRunner().invoke(main, ["validate", "valmod", "--lesson", "01_stable_sum"])
    assert res.exit_code == 2 and "did you mean '01_stable_sums'" in res.output
    res = CliRunner().invoke(main, ["validate", "valmod", "--lesson", "01_stable_sums", "--no-execute"])
    assert res.exit_code == 0 and "valmod: valid" in res.output


@pytest.mark.slow  # executes notebooks in a kernel
def test_validate_never_touches_the_participants_progress(module, tmp_path):
    progress_file = Path(os.environ["WORKSHOP_PROGRESS"])
    report = validate_module(registry().get("valmod"))
    assert report.ok, report.failures
    assert not progress_file.exists()


def test_data_hash_helper_matches_the_scaffolded_registry(module):
    folder, pkg = module
    digest = hashlib.sha256((pkg / "data" / "scores.txt").read_bytes()).hexdigest()
    assert digest in (pkg / "plugin.py").read_text()


@pytest.mark.slow  # executes notebooks in a kernel
def test_a_check_in_the_exercise_cell_itself_is_run_after_the_stub(module):
    folder, pkg = module
    text = _lesson(pkg).read_text().replace('    # END SOLUTION\n\n\n# %%\ncheck(', '    # END SOLUTION\n\n\ncheck(')
    assert text != _lesson(pkg).read_text()
    text += '\n# %% tags=["raises-exception"]\nraise ValueError("shown on purpose")\n'
    text += '\n# %%\nraise KeyError("not on purpose")\n'
    _lesson(pkg).write_text(text)
    report = validate_module(registry().get("valmod"), only=["01_stable_sums"])
    # the stub is still caught; a cell tagged raises-exception may raise, an untagged one may not
    assert [f for f in report.failures if "stale" not in f] == [
        "lesson 01_stable_sums: the solution notebook fails at cell 10 of lessons/01_stable_sums.py ('raise KeyError(\"not on purpose\")'): "
        "KeyError: 'not on purpose'"]
    assert ("ok", "valmod.logsumexp: fails on the exercise stub (not attempted)") in report.lines


def test_ctrl_c_during_validation_exits_130_without_traceback(module, monkeypatch):
    import workshop._validate as v

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(v, "validate_module", interrupted)
    res = CliRunner().invoke(main, ["validate", "valmod"])
    assert res.exit_code == 130 and "Interrupted." in res.output


def test_a_solution_line_left_in_the_exercise_is_flagged(module):
    folder, pkg = module
    text = _lesson(pkg).read_text().replace("# %%\nimport numpy as np\n",
                                            "# %%\nimport numpy as np\n# return m + np.log(np.sum(np.exp(x - m)))\n"
                                            "print(np.log(np.sum(np.exp(np.zeros(2)))))\n")
    _lesson(pkg).write_text(text.replace("    return m + np.log", "    print(np.log(np.sum(np.exp(np.zeros(2)))))\n"
                                                                  "    return m + np.log"))
    report = validate_module(registry().get("valmod"), execute=False)
    warnings = [m for level, m in report.lines if level == "warn"]
    assert warnings == ["lesson 01_stable_sums, cell 6: the solution line 'print(np.log(np.sum(np.exp(np.zeros(2)))))' "
                        "also appears in the exercise notebook; does it give the answer away?"]
