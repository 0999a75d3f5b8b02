"""The tour demo runs end to end on the tiny preset and writes its figures and JSON."""

import json

from workshop import RunContext
from workshop.hardware import Hardware

from workshop_protein.demos import lm as tour_demo
from workshop_protein.demos.lm import tour


def test_tour_tiny(tmp_path, monkeypatch):
    # The structure sections are tested by their own tests; keep this one short.
    monkeypatch.setattr(tour_demo, "TOUR_SECTIONS", ("masked_lm", "mutations"))
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
    assert "Aβ42 DMS (468 singles): Spearman" in data["mutations"]["measured_quality"]
    assert data["mutations"]["most_damaging"][0][1] <= data["mutations"]["most_tolerated"][0][1]
    assert set(summary) == {"masked_lm", "mutations"}


def _run(*args, env=None):
    from click.testing import CliRunner

    from workshop.cli import main

    return CliRunner().invoke(main, ["run", "protein", *args], env=env)


def test_launcher_fetches_pins_and_uses_esm2_and_says_so(esm2_host, tmp_path, monkeypatch):
    # The whole tour, as a participant runs it, with a 127.0.0.1 server standing in for
    # the official host; --model picks ESM2-8M at the tiny preset to keep the test short.
    esm2_host.write("esm2_t6_8M_UR50D", 6, 320, 20)
    out = tmp_path / "out"
    r = _run("--preset", "tiny", "--model", "esm2_t6_8M_UR50D", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "Model: esm2_t6_8M_UR50D (6 layers × 320 dims × 20 heads" in r.output
    assert "pinned protein/esm2_t6_8M_UR50D.pt (first download)" in r.output
    data = json.loads((out / "tour.json").read_text())
    assert data["model"]["name"] == "esm2_t6_8M_UR50D"
    assert "skipped" not in data["contacts"] and data["contacts"]["head"] == "esm2_t6_8M_UR50D regression"


def test_launcher_offline_uses_the_embedded_model_and_says_so(esm2_host, tmp_path, monkeypatch):
    monkeypatch.setattr(tour_demo, "TOUR_SECTIONS", ("masked_lm",))
    monkeypatch.setenv("WORKSHOP_OFFLINE", "1")
    r = _run("--preset", "cpu", "--out", str(tmp_path / "out"))
    assert r.exit_code == 0, r.output
    assert "Model: the small embedded model" in r.output and "workshop fetch protein esm2_t6_8M_UR50D.pt" in r.output
    assert esm2_host.hits == []


def test_unknown_model_is_a_usage_error(tmp_path):
    r = _run("--preset", "tiny", "--model", "esm3", "--out", str(tmp_path / "out"))
    assert r.exit_code == 2 and "unknown model 'esm3'" in r.output and "Traceback" not in r.output
