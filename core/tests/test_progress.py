"""The participant's progress file: latest result per check, atomic writes, safe with several writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workshop import progress
from workshop.progress import CheckResult


def test_the_file_is_where_workshop_progress_says(tmp_path, monkeypatch):
    target = tmp_path / "somewhere" / "p.json"
    monkeypatch.setenv("WORKSHOP_PROGRESS", str(target))
    assert progress.progress_path() == target
    progress.record("astro", "forward", "passed")
    assert json.loads(target.read_text())["modules"]["astro"]["forward"]["status"] == "passed"


def test_the_default_file_is_in_the_user_data_folder(monkeypatch):
    import platformdirs

    monkeypatch.delenv("WORKSHOP_PROGRESS")
    assert progress.progress_path() == platformdirs.user_data_path("workshop", appauthor=False) / "progress.json"


def test_the_latest_result_counts_and_attempts_add_up():
    progress.record("astro", "forward", "failed", "std is wrong")
    progress.record("astro", "forward", "passed")
    progress.record("astro", "score", "not_attempted")
    progress.record("intro", "grad", "passed")
    assert progress.passed_checks("astro") == {"forward"}
    entry = progress.module_progress("astro")["forward"]
    assert entry["attempts"] == 2 and "first_passed" in entry
    progress.record("astro", "forward", "failed", "broke it again")
    assert progress.passed_checks("astro") == set()
    assert progress.module_progress("astro")["forward"]["message"] == "broke it again"
    assert progress.passed_checks("intro") == {"grad"}
    assert progress.passed_checks("nothing") == set()


def test_unknown_status_is_refused():
    with pytest.raises(ValueError, match="status"):
        progress.record("astro", "forward", "great")


def test_writes_leave_no_temporary_files(tmp_path):
    for i in range(5):
        progress.record("astro", f"c{i}", "passed")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith("progress.json") and p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    progress.record("astro", "forward", "passed")
    path = progress.progress_path()
    before = path.read_text()

    def broken_dump(*args, **kwargs):
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(progress.json, "dump", broken_dump)
        with pytest.raises(progress.ProgressError, match="cannot save the progress file .*disk full"):
            progress.record("astro", "score", "passed")
    assert path.read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_an_unreadable_file_is_set_aside_not_fatal(tmp_path, capsys):
    path = progress.progress_path()
    path.write_text("{not json")
    assert progress.passed_checks("astro") == set()
    (aside,) = tmp_path.glob("progress.json.unreadable-*")
    assert aside.read_text() == "{not json"
    assert f"it was set aside as {aside}" in capsys.readouterr().err
    progress.record("astro", "forward", "passed")
    assert progress.passed_checks("astro") == {"forward"}


def test_reset_one_module_or_everything():
    progress.record("astro", "forward", "passed")
    progress.record("intro", "grad", "passed")
    progress.reset("astro")
    assert progress.passed_checks("astro") == set() and progress.passed_checks("intro") == {"grad"}
    progress.reset()
    assert progress.passed_checks("intro") == set()


HAMMER = """
import sys
from workshop import progress
for i in range(25):
    progress.record("astro", sys.argv[1], "passed" if i % 2 else "failed")
"""


def test_two_processes_recording_at_once_lose_nothing(tmp_path):
    env = dict(os.environ, WORKSHOP_PROGRESS=str(progress.progress_path()))
    procs = [subprocess.Popen([sys.executable, "-c", HAMMER, f"w{w}"], env=env) for w in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    entries = progress.module_progress("astro")
    assert entries["w0"]["attempts"] == 25 and entries["w1"]["attempts"] == 25


def test_check_result_is_small_and_truthful():
    ok = CheckResult("astro.forward", "passed", "checked on 20 inputs")
    bad = CheckResult("astro.forward", "failed", "std wrong", "use sqrt")
    assert ok and not bad and ok.passed
    assert repr(bad) == "<check astro.forward: failed>"
    assert repr(CheckResult("a.b", "not_attempted")) == "<check a.b: not attempted>"
