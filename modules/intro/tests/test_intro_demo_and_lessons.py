"""The tour demo under the tiny preset, and the lessons' wiring to the declared checks."""

from __future__ import annotations

import json

import pytest

from workshop import RunContext
from workshop._plugins import registry
from workshop.hardware import detect
from workshop.lessons import build
from workshop_intro.demos.tour import tour


@pytest.fixture(scope="module")
def decl():
    return registry().get("intro")


def test_declaration(decl):
    assert decl.minutes == 60 and decl.path == "modules/intro" and decl.distribution == "workshop-intro"
    assert [l.id for l in decl.lessons] == ["01_numpy_api", "02_transforms", "03_pytrees", "04_trace_vs_run",
                                            "05_ecosystem", "06_langevin"]
    assert len(decl.checks) >= 12 and all(c.lesson and c.summary for c in decl.checks)
    assert decl.demo().name == "tour"
    assert set(decl.presets) == {"tiny", "cpu", "gpu", "full"}


def test_every_check_is_called_by_its_own_lesson_once(decl):
    called = {}
    for lesson in decl.lessons:
        built = build(decl, lesson)
        assert built.exercise_groups(), lesson.id
        for name in built.check_names:
            called[name] = lesson.id
    assert called == {f"intro.{c.name}": c.lesson for c in decl.checks}


def test_tour_under_tiny_writes_the_figure_and_json(tmp_path):
    ctx = RunContext(module="intro", demo="tour", preset="tiny", out=tmp_path, budget=None, hardware=detect(),
                     verbose=False)
    result = tour(ctx)
    png = tmp_path / "langevin.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "tour.json").read_text())
    assert summary["preset"] == "tiny"
    assert summary["jit"]["compile_s"] > 0 and summary["jit"]["speedup"] > 0
    assert summary["vmap"]["max_abs_difference"] < 1e-4
    assert summary["grad"]["grad_relative_error"] < 1e-5
    lang = summary["langevin"]
    assert lang["annealed_sliced_w2"] < lang["plain_sliced_w2"]
    assert abs(lang["annealed_weights"][0] - lang["true_weights"][0]) < abs(lang["plain_weights"][0] - lang["true_weights"][0])
    assert result["figure"] == str(png)
