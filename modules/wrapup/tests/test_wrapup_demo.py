"""The default demo end to end under the tiny preset, as `workshop run wrapup` runs it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from workshop import RunContext
from workshop.hardware import detect

from workshop_wrapup.demos.tour import tour
from workshop_wrapup.multihost import example_data, reference_statistics
from workshop_wrapup.sersic import PARAM_NAMES

pytestmark = pytest.mark.slow  # the whole tour: about 3.5 minutes of CPU time (sharding part 2.2, NUTS 0.4)


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


def test_tour_two_processes_compute_the_single_process_answer(ran):
    # The tour's multi-process part is the only run of run_multiprocess_demo with real workers
    # that agree (test_wrapup_multihost.py covers the failures): every property is asserted here.
    out, result = ran
    assert result["multihost.matches_single_process"] is True
    mh = json.loads((out / "multihost.json").read_text())
    assert mh["matches_single_process"], mh
    procs = mh["processes"]
    n_rows = procs[0]["rows"]
    assert [p["process_id"] for p in procs] == [0, 1]
    assert all(p["process_count"] == 2 and p["global_devices"] == 4 for p in procs)
    assert all(len(p["local_devices"]) == 2 and p["local_rows"] == n_rows // 2 for p in procs)
    # The two processes hold different devices and agree exactly with each other.
    assert not set(procs[0]["local_devices"]) & set(procs[1]["local_devices"])
    assert procs[0]["column_means"] == procs[1]["column_means"]
    ref = reference_statistics(example_data(n_rows))  # computed here, not taken from the run
    np.testing.assert_allclose(procs[0]["column_means"], ref["column_means"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(procs[1]["sum_of_squares"], ref["sum_of_squares"], rtol=1e-5)
    # Half the data alone would give a different answer: the result really is global.
    half = reference_statistics(example_data(n_rows)[: n_rows // 2])
    assert abs(half["sum_of_squares"] - procs[0]["sum_of_squares"]) > 1.0


def test_tour_ecosystem_parts_recover_the_truth(ran):
    out, _ = ran
    sersic = json.loads((out / "sersic.json").read_text())
    assert abs(sersic["fit"]["n"] / sersic["truth"]["n"] - 1) < 0.05
    assert sum(sersic["truth_in_99pct_interval"].values()) >= 6
    # The NUTS posterior (sample_posterior at the tiny sizes, 100 warm-up + 100 samples; the
    # tour's run is the test's run) covers the truth and is far narrower than the priors.
    assert sersic["divergences"] <= 2
    for name in PARAM_NAMES:
        mean, std, truth = sersic["posterior_mean"][name], sersic["posterior_std"][name], sersic["truth"][name]
        assert std > 0 and abs(mean - truth) / std < 4, (name, mean, std, truth)
    assert sersic["posterior_std"]["n"] < 0.2 and sersic["posterior_std"]["r_eff"] < 0.2
    deconv = json.loads((out / "deconvolution.json").read_text())
    assert deconv["converged"]
    assert deconv["rms_error"]["tikhonov_cg"] < deconv["rms_error"]["blurred"] < deconv["rms_error"]["naive_inverse"]
