"""The tour demo runs end to end on the tiny preset and writes its figures and JSON."""

import json

from workshop import RunContext
from workshop.hardware import Hardware

from workshop_protein import demos
from workshop_protein.demos import tour


def test_tour_tiny(tmp_path, monkeypatch):
    # The structure sections are tested by their own tests; keep this one short.
    monkeypatch.setattr(demos, "TOUR_SECTIONS", ("masked_lm", "mutations"))
    hw = Hardware("cpu", 1, "cpu", None, 2, None)
    ctx = RunContext(module="protein", demo="tour", preset="tiny", out=tmp_path, budget=None, hardware=hw, verbose=False)
    summary = tour(ctx)
    data = json.loads((tmp_path / "tour.json").read_text())
    assert data["model"]["name"] == "embedded"
    for section in ("masked_lm", "mutations"):
        assert "skipped" not in data[section], data[section]
        assert (tmp_path / data[section]["figure"]).stat().st_size > 1000
    mlm = data["masked_lm"]
    assert 0 <= mlm["top1_correct"] <= mlm["masked"] and 1 < mlm["pseudo_perplexity"] < 40
    assert len(data["mutations"]["most_damaging"]) == 10
    assert data["mutations"]["most_damaging"][0][1] <= data["mutations"]["most_tolerated"][0][1]
    assert set(summary) == {"masked_lm", "mutations"}
