"""The galaxy demos under the tiny preset: `workshop run astro` (galaxies), generate, reconstruct.

They run end to end on the embedded data and the embedded pretrained model, write their
figures and JSON, and report numbers that are consistent with what they saved.
"""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

import pytest

from workshop import DemoOptionError, RunContext
from workshop.hardware import Hardware
from workshop_astro.demos.galaxies import GALAXY_PRESETS, _plot_loss, galaxies
from workshop_astro.demos.pretrained import generate, reconstruct
from workshop_astro.train import read_checkpoint_meta


def _ctx(tmp_path, demo, budget=None):
    hw = Hardware("cpu", 1, "cpu", None, 2, None)
    return RunContext(module="astro", demo=demo, preset="tiny", out=tmp_path, budget=budget, hardware=hw, verbose=False)


def _figure(path):
    assert path.stat().st_size > 5000, path
    with Image.open(path) as im:
        assert min(im.size) > 150


def test_loss_figure_draws_crop_steps_apart_from_whole_stamps(tmp_path):
    losses = np.where(np.arange(60) % 2, 0.6, 0.3)  # crop steps lose more, as in the demo
    drawn = _plot_loss(losses, tmp_path / "loss.png", "t", on_crops=np.arange(60) % 2 == 1, crop_label="crops")
    assert sorted(drawn) == ["crops", "whole stamps"]
    assert drawn["whole stamps"].tolist() == list(range(0, 60, 2)) and drawn["crops"].tolist() == list(range(1, 60, 2))
    _figure(tmp_path / "loss.png")
    # without crops, one series of every step
    drawn = _plot_loss(losses, tmp_path / "plain.png", "t")
    assert list(drawn) == ["per step"] and len(drawn["per step"]) == 60


def test_galaxies_demo_trains_samples_evaluates_and_resumes(tmp_path):
    p = GALAXY_PRESETS["tiny"]
    out = galaxies(_ctx(tmp_path, "galaxies"))
    assert out["steps"] == p.max_steps and out["nfe"] == p.sampler_steps
    for name in ("galaxies.png", "loss.png"):
        _figure(tmp_path / name)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["train"]["steps"] == p.max_steps and metrics["sampler"]["n_samples"] == p.n_samples
    for name in ("log_flux", "half_light_radius", "concentration", "ellipticity", "colour", "power_spectrum"):
        assert np.isfinite(metrics["distance"][name]) and metrics["floor"][name] >= 0, name
    assert 0 < metrics["memorisation"]["ratio"]
    # the final loss is that of the last whole-stamp steps (the tiny preset trains every second step on crops)
    losses = read_checkpoint_meta(tmp_path / "checkpoint.eqx")["losses"]
    assert p.crop_every == 2 and len(losses) == p.max_steps
    assert metrics["train"]["final_loss"] == pytest.approx(np.mean(losses[0::2][-20:]), rel=1e-6)
    generated = np.load(tmp_path / "generated.npy")
    assert generated.shape == (p.n_samples, 3, 32, 32) and np.isfinite(generated).all()
    # a second run in the same folder resumes from the finished checkpoint: no new steps
    again = galaxies(_ctx(tmp_path, "galaxies"))
    assert json.loads((tmp_path / "metrics.json").read_text())["train"]["resumed_from"] == p.max_steps
    assert again["steps"] == p.max_steps


def test_galaxies_demo_refuses_a_foreign_checkpoint_in_one_message(tmp_path):
    (tmp_path / "checkpoint.eqx").write_bytes(b"not a checkpoint at all")
    with pytest.raises(DemoOptionError, match=r"checkpoint.eqx is not a workshop_astro training checkpoint.*--out") as e:
        galaxies(_ctx(tmp_path, "galaxies"))
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_generate_demo_uses_the_pretrained_64px_model(tmp_path):
    out = generate(_ctx(tmp_path, "generate"))
    saved = json.loads((tmp_path / "generate.json").read_text())
    assert saved["resolution"] == 64 and saved["n"] == out["n"] >= 4
    assert saved["model_steps"] > 1000  # the shipped model, not a fresh one
    _figure(tmp_path / "generated.png")


def test_reconstruct_demo_scores_the_posterior_against_both_baselines(tmp_path):
    out = reconstruct(_ctx(tmp_path, "reconstruct"))
    saved = json.loads((tmp_path / "reconstruct.json").read_text())
    _figure(tmp_path / "reconstruct.png")
    assert len(saved["single_samples_psnr"]) == saved["n_samples"]
    assert out["psnr_posterior"] == saved["posterior_mean"]["psnr"]
    # the pretrained prior does better than Richardson-Lucy even with the tiny preset's few samples
    assert saved["posterior_mean"]["psnr"] > saved["richardson_lucy"]["psnr"]
    # and fits the observation to its noise level (reduced chi^2 near 1, not over-fitted noise)
    assert 0.7 < saved["posterior_mean"]["chi2"] < 1.5
