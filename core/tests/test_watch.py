"""`workshop check MODULE NOTEBOOK --watch`: checked now, again after each save, until Ctrl-C."""

from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner

from workshop import _cli_learning
from workshop._watch import watch
from workshop.cli import main

TINY_PLUGIN = '''
from workshop import hookimpl, ModuleDeclaration, Lesson
@hookimpl
def workshop_module():
    return ModuleDeclaration(name="tinywatch", title="Tiny", summary="for tests", minutes=1, package="workshop_tinywatch",
                             lessons=[Lesson("01_one", "One", "lessons/01_one.py")])
'''


def test_watch_runs_each_file_then_again_after_each_save_even_one_made_during_a_run(tmp_path):
    nb = tmp_path / "01_one.ipynb"
    nb.write_text("first")
    stop, seen = threading.Event(), []

    def on_save(path):
        seen.append(path.read_text())
        if len(seen) == 1:
            path.write_text("saved while it ran")
        else:
            stop.set()

    watch(lambda: [nb, tmp_path / "not_there.ipynb"], on_save, interval=0.01, stop=stop)
    assert seen == ["first", "saved while it ran"]


@pytest.mark.timeout(60)
def test_check_watch_checks_again_when_the_notebook_is_saved_and_ctrl_c_exits_130(fake_dist, tmp_path, monkeypatch):
    fake_dist({"tinywatch": ("workshop_tinywatch_plugin", TINY_PLUGIN)},
              extra_modules={"workshop_tinywatch/__init__.py": ""})
    nb = tmp_path / "01_one.ipynb"
    nb.write_text('{"cells": []}')
    checked = []

    def check_notebook(decl, path, timeout):
        checked.append(path.read_text())
        if len(checked) == 1:  # the participant saves once, from elsewhere
            threading.Thread(target=nb.write_text, args=('{"cells": [1]}',)).start()
        else:
            raise KeyboardInterrupt
        return 0, 0, 0

    monkeypatch.setattr(_cli_learning, "_check_notebook", check_notebook)
    res = CliRunner().invoke(main, ["check", "tinywatch", str(nb), "--watch", "--every", "0.01"])
    assert res.exit_code == 130, res.output
    assert checked == ['{"cells": []}', '{"cells": [1]}']
    assert "save to check again" in res.output and "Stopped watching." in res.output


def test_check_watch_needs_a_notebook(fake_dist):
    fake_dist({"tinywatch": ("workshop_tinywatch_plugin", TINY_PLUGIN)},
              extra_modules={"workshop_tinywatch/__init__.py": ""})
    res = CliRunner().invoke(main, ["check", "tinywatch", "--watch"])
    assert res.exit_code == 2
    assert "--watch needs a notebook" in res.output


def test_check_every_without_watch_is_refused_not_ignored(fake_dist, tmp_path):
    fake_dist({"tinywatch": ("workshop_tinywatch_plugin", TINY_PLUGIN)},
              extra_modules={"workshop_tinywatch/__init__.py": ""})
    nb = tmp_path / "01_one.ipynb"
    nb.write_text("{}")
    res = CliRunner().invoke(main, ["check", "tinywatch", str(nb), "--every", "2"])
    assert res.exit_code == 2
    assert "--every only sets how often --watch looks" in res.output
    assert "--watch --every 2" in res.output


@pytest.mark.timeout(60)
def test_check_watch_reports_an_unreadable_save_and_goes_on_watching(fake_dist, tmp_path, monkeypatch):
    from workshop._errors import UsageProblem

    fake_dist({"tinywatch": ("workshop_tinywatch_plugin", TINY_PLUGIN)},
              extra_modules={"workshop_tinywatch/__init__.py": ""})
    nb = tmp_path / "01_one.ipynb"
    nb.write_text("{}")
    saves = iter(["half a notebo", '{"cells": []}'])
    checked = []

    def check_notebook(decl, path, timeout):
        checked.append(path.read_text())
        if len(checked) == 3:
            raise KeyboardInterrupt
        threading.Thread(target=nb.write_text, args=(next(saves),)).start()
        if len(checked) == 2:
            raise UsageProblem(f"cannot read the notebook {path}")
        return 0, 0, 0

    monkeypatch.setattr(_cli_learning, "_check_notebook", check_notebook)
    res = CliRunner().invoke(main, ["check", "tinywatch", str(nb), "--watch", "--every", "0.01"])
    assert res.exit_code == 130, res.output
    assert checked == ["{}", "half a notebo", '{"cells": []}']
    assert "cannot check: cannot read the notebook" in res.output
