"""The default demo end to end under the tiny preset, as `workshop run wrapup` runs it."""

from __future__ import annotations

import json

import pytest
from workshop import RunContext
from workshop.hardware import detect

from workshop_wrapup.demos import tour

pytestmark = pytest.mark.slow  # the whole tour: about a minute and a half of CPU time


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    out = tmp_path_factory.mktemp("wrapup-tour")
    ctx = RunContext(module="wrapup", demo="tour", preset="tiny", out=out, budget=None, hardware=detect(), verbose=False)
    return out, tour(ctx)


def test_tour_writes_every_figure_and_result(ran):
    out, _ = ran
    for name in ("throughput_vs_devices.png", "sersic_fit.png", "sersic_posterior.png", "deconvolution.png",
                 "sharding/sharding_pictures.txt", "sharding.json", "multihost.json", "sersic.json",
                 "deconvolution.json", "further_reading.md"):
        assert (out / name).is_file() and (out / name).stat().st_size > 100, name
    pictures = (out / "sharding/sharding_pictures.txt").read_text()
    assert "CPU 7" in pictures and "P('data')" in pictures


def test_tour_sharding_part_agrees_across_device_counts(ran):
    out, result = ran
    sharding = json.loads((out / "sharding.json").read_text())
    assert sharding["device_count"] == 8
    rows = sharding["throughput"]["tiny_denoiser"]["rows"]
    assert [r["devices"] for r in rows] == [1, 2, 4, 8]
    assert all(r["images_per_s"] > 0 for r in rows)
    assert result["sharding.final_loss_spread_across_device_counts"] < 1e-5
    assert result["sharding.column_means_max_difference"] < 1e-6
    assert result["sharding.all_reduces_inserted"] >= 1
    if "astro_unet" in sharding["throughput"]:  # only when workshop-astro is installed
        assert sharding["throughput"]["astro_unet"]["final_loss_spread"] < 1e-5
    else:
        assert "not available" in sharding["astro_unet"] or "could not" in sharding["astro_unet"]


def test_tour_ecosystem_parts_recover_the_truth(ran):
    out, result = ran
    assert result["multihost.matches_single_process"] is True
    sersic = json.loads((out / "sersic.json").read_text())
    assert abs(sersic["fit"]["n"] / sersic["truth"]["n"] - 1) < 0.05
    assert sum(sersic["truth_in_99pct_interval"].values()) >= 6
    deconv = json.loads((out / "deconvolution.json").read_text())
    assert deconv["converged"]
    assert deconv["rms_error"]["tikhonov_cg"] < deconv["rms_error"]["blurred"] < deconv["rms_error"]["naive_inverse"]
