"""Reconstruction: posterior sampling with a known prior (a mixture around real galaxies) beats the classical baselines."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workshop_astro.reconstruct import (
    Degradation, gaussian_psf, mean_power_spectrum, posterior_sample, psnr, reduced_chi2, richardson_lucy, wiener,
)
from workshop_astro.sde import VPSDE

H = 16


def test_psf_and_operator_adjoint():
    psf = gaussian_psf((8, 8), 2.0)
    assert np.isclose(psf.sum(), 1.0) and psf[0, 0] == psf.max()
    deg = Degradation.make((2, 8, 8), fwhm=2.0, noise_std=0.1, missing=0.3, seed=1)
    key1, key2 = jax.random.split(jax.random.key(0))
    u, v = jax.random.normal(key1, (2, 8, 8)), jax.random.normal(key2, (2, 8, 8))
    assert np.isclose(float(jnp.vdot(deg(u), v)), float(jnp.vdot(u, deg.adjoint(v))), rtol=1e-4)
    assert 0.5 < float(deg.mask.mean()) < 0.9


def test_metrics_on_known_inputs():
    x = np.zeros((1, 4, 4))
    assert np.isclose(psnr(x + 0.2, x), 10 * np.log10(4 / 0.04))
    deg = Degradation.make((1, 4, 4), fwhm=1.0, noise_std=0.5, missing=0.0)
    y = np.asarray(deg(jnp.asarray(x))) + 0.5  # residual of exactly one noise std everywhere
    assert np.isclose(reduced_chi2(x, y, deg), 1.0, rtol=1e-5)


def _templates():
    # four real HDF galaxies, 2x2-binned to 16x16
    from workshop.data import fetch
    from workshop_astro.galaxies import load_stamps

    test = load_stamps(fetch("astro", "hdf_stamps_32.npz")).test
    pick = test[[0, 3, 7, 12]]
    return pick.reshape(4, 3, H, 2, H, 2).mean(axis=(3, 5)).astype(np.float32)


def _mixture_score(sde, means, tau):
    # prior: equal mixture of N(m_k, tau^2 I); x(t) | k ~ N(alpha m_k, (alpha^2 tau^2 + std^2) I)
    def score(x, t):
        a, s = sde.marginal_mean_coeff(t), sde.marginal_std(t)
        v = a**2 * tau**2 + s**2
        d = x[None] - a * means
        logw = -0.5 * jnp.sum(d**2, axis=(1, 2, 3)) / v
        w = jax.nn.softmax(logw)
        return -jnp.tensordot(w, d, axes=1) / v
    return score


def test_posterior_sampling_beats_richardson_lucy_and_wiener():
    sde = VPSDE()
    means = _templates()
    tau = 0.05
    rng = np.random.default_rng(0)
    truths = means + tau * rng.normal(size=means.shape).astype(np.float32)
    deg = Degradation.make((3, H, H), fwhm=3.0, noise_std=0.1, missing=0.3, seed=2)
    score = _mixture_score(sde, jnp.asarray(means), tau)
    run = jax.jit(lambda y, k: posterior_sample(sde, score, deg, y, k, n_samples=8, n_steps=200)[0])
    power = mean_power_spectrum(means)
    res = {"posterior": [], "rl": [], "wiener": [], "chi2": [], "spread": []}
    for i, x in enumerate(truths):
        y = deg.observe(jnp.asarray(x), jax.random.key(10 + i))
        samples = np.asarray(run(y, jax.random.key(i)))
        mean = samples.mean(0)
        res["posterior"].append(psnr(mean, x))
        res["rl"].append(psnr(richardson_lucy(y, deg), x))
        res["wiener"].append(psnr(wiener(y, deg, power), x))
        res["chi2"].append(reduced_chi2(mean, y, deg))
        res["spread"].append(float(samples.std(0).mean()))
    post, rl, wi = (float(np.mean(res[k])) for k in ("posterior", "rl", "wiener"))
    assert post > rl + 3.0, res
    assert post > wi + 1.5, res
    assert 0.5 < np.mean(res["chi2"]) < 1.5, res  # consistent with the noise, not over-fitted
    assert 0.005 < np.mean(res["spread"]) < 0.2, res  # a distribution of about the prior's width


def test_mean_power_spectrum_of_white_noise_is_flat():
    x = np.random.default_rng(0).normal(size=(200, 1, 8, 8))
    p = mean_power_spectrum(x)
    assert p.shape == (8, 8) and np.allclose(p[1:, 1:], 1.0, atol=0.25)


def test_posterior_sampling_eager_python_loop_equals_jitted_scan():
    # eager calls run a compiled step from Python (fast for U-Nets on a CPU); under jit the
    # loop is a lax.scan: the two must draw the same samples from the same key
    sde = VPSDE()
    truth = jnp.zeros((1, 8, 8))
    deg = Degradation.make(truth.shape, fwhm=2.0, noise_std=0.1, missing=0.2, seed=0)
    y = deg.observe(truth, jax.random.key(0))

    def score(x, t):  # exact score of N(0, 0.25 I) data
        a, s = sde.marginal_mean_coeff(t), sde.marginal_std(t)
        return -x / (a**2 * 0.25 + s**2)

    eager, nfe = posterior_sample(sde, score, deg, y, jax.random.key(3), n_samples=3, n_steps=12)
    jitted, nfe_j = jax.jit(lambda y, k: posterior_sample(sde, score, deg, y, k, n_samples=3, n_steps=12))(y, jax.random.key(3))
    assert int(nfe) == int(nfe_j) == 13
    np.testing.assert_allclose(np.asarray(eager), np.asarray(jitted), rtol=1e-4, atol=1e-5)
    assert float(jnp.abs(eager).max()) > 0


# --------------------------------------------------------------------------- calibration

from workshop_astro.reconstruct import (  # noqa: E402
    calibrated_coverage, gaussian_calibration, sample_calibration, wiener_posterior_std,
)


def test_calibrated_sampler_scores_the_reference_and_a_too_narrow_one_does_not():
    rng = np.random.default_rng(0)
    s = 8
    draws = rng.normal(size=(s + 1, 2, 64, 64))  # truth and samples exchangeable: calibrated
    mask = np.ones((2, 64, 64))
    mask[:, :20] = 0
    cal = sample_calibration(draws[:s], draws[s], mask)
    for level in ("0.68", "0.95"):
        assert abs(cal["coverage"][level]["all"] - cal["calibrated_reference"][level]) < 0.02
        assert abs(cal["coverage"][level]["lost"] - cal["calibrated_reference"][level]) < 0.03
    assert np.allclose(cal["rank_histogram"], 1 / (s + 1), atol=0.01) and np.isclose(sum(cal["rank_histogram"]), 1)
    # 8 samples cannot reach 95%: the reference is about 0.95 * 7/9 (exact for a uniform posterior)
    assert abs(calibrated_coverage(0.95, 8) - 0.95 * 7 / 9) < 0.02 and calibrated_coverage(0.95, 8) < 0.8
    assert calibrated_coverage(0.68, 64) > calibrated_coverage(0.68, 8)
    narrow = sample_calibration(0.5 * draws[:s], draws[s], mask)  # over-confident: U-shaped ranks
    assert narrow["coverage"]["0.68"]["all"] < cal["calibrated_reference"]["0.68"] - 0.15
    assert narrow["outside_samples"] > 2 * narrow["outside_samples_if_calibrated"]
    wide = sample_calibration(2.0 * draws[:s], draws[s], mask)  # under-confident: a hump
    assert wide["coverage"]["0.95"]["all"] > cal["calibrated_reference"]["0.95"] + 0.1
    assert wide["outside_samples"] < 0.5 * wide["outside_samples_if_calibrated"]


def test_gaussian_calibration_of_an_exact_gaussian_posterior():
    rng = np.random.default_rng(1)
    mean = rng.normal(size=(1, 100, 100))
    std = rng.uniform(0.5, 2.0, size=mean.shape)
    truth = mean + std * rng.normal(size=mean.shape)
    cal = gaussian_calibration(mean, std, truth, np.ones_like(mean), bins=9)
    assert abs(cal["coverage"]["0.68"]["all"] - 0.68) < 0.015 and abs(cal["coverage"]["0.95"]["all"] - 0.95) < 0.01
    assert cal["coverage"]["0.68"]["lost"] is None  # nothing masked
    assert np.allclose(cal["rank_histogram"], 1 / 9, atol=0.01)
    bad = gaussian_calibration(mean, 0.3 * std, truth, np.ones_like(mean))
    assert bad["coverage"]["0.95"]["all"] < 0.5


def test_wiener_posterior_std_matches_the_error_of_the_wiener_filter_on_its_own_prior():
    # draw images from the Gaussian prior the filter assumes (power spectrum P, image mean 0),
    # observe them (blur + noise, nothing lost), filter: the error's per-pixel std is the
    # closed-form posterior std
    rng = np.random.default_rng(2)
    h = 16
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(h) * h, np.fft.fftfreq(h) * h, indexing="ij"))
    power = 4.0 / (1 + k**2)
    power[0, 0] = 0.0
    deg = Degradation.make((1, h, h), fwhm=2.5, noise_std=0.1, missing=0.0)
    white = rng.normal(size=(200, 1, h, h))
    x = np.real(np.fft.ifft2(np.fft.fft2(white) * np.sqrt(power)))  # |F x|^2 / (H W) = P on average
    # deg.observe in NumPy (eager JAX would compile each small op: seconds on a busy CPU)
    blur = np.fft.fft2(np.asarray(deg.psf, np.float64))
    y = np.real(np.fft.ifft2(np.fft.fft2(x) * blur)) + deg.noise_std * rng.normal(size=x.shape)
    measured = float(np.std([wiener(y[i], deg, power) - x[i] for i in range(len(x))]))
    predicted = wiener_posterior_std(deg, power)
    assert abs(measured / predicted - 1) < 0.06, (measured, predicted)
    assert predicted < float(np.sqrt(power.mean()))  # the data shrink the prior's spread


def test_reconstruct_demo_figure_and_summary_from_synthetic_results(tmp_path):
    from workshop_astro.demos.pretrained import _calibration_line, _plot_reconstruction
    from workshop_astro.reconstruct import RICHARDSON_LUCY_CALIBRATION

    rng = np.random.default_rng(3)
    truth = rng.uniform(-1, 0, (3, 16, 16)).astype(np.float32)
    samples = truth + 0.1 * rng.normal(size=(8, 3, 16, 16)).astype(np.float32)
    mask = (rng.random((3, 16, 16)) > 0.25).astype(np.float32)
    cal = dict(posterior=sample_calibration(samples, truth, mask),
               wiener=dict(gaussian_calibration(truth, np.full_like(truth, 0.1), truth, mask), posterior_std=0.1),
               richardson_lucy=RICHARDSON_LUCY_CALIBRATION)
    line = _calibration_line(cal)
    assert "8 samples" in line and "no posterior" in line and f"{cal['posterior']['coverage']['0.68']['all']:.0%}" in line
    _plot_reconstruction(tmp_path / "r.png", truth, samples, truth, truth, truth, cal, n_steps=10)
    assert (tmp_path / "r.png").stat().st_size > 10000


def test_standardised_degradation_sees_the_same_observation_in_standard_units():
    """A model trained on per-channel standardised images reconstructs in those units: the
    observation and the noise map exactly (PSF summing to one), channel by channel."""
    from workshop_astro.galaxies import ChannelStats

    stats = ChannelStats(mean=(-0.8, -0.5, 0.1), std=(0.2, 0.4, 0.1))
    deg = Degradation.make((3, 8, 8), fwhm=2.0, noise_std=0.1, missing=0.3, seed=2)
    x = np.asarray(jax.random.uniform(jax.random.key(3), (3, 8, 8), minval=-1, maxval=1), np.float32)
    z = stats.standardise(x[None])[0]
    deg_z = deg.in_standard_units(stats)
    np.testing.assert_allclose(np.asarray(deg.standardise_observation(deg(jnp.asarray(x)), stats)),
                               np.asarray(deg_z(jnp.asarray(z))), atol=1e-5)
    np.testing.assert_allclose(np.asarray(deg_z.noise_var()).ravel(), (0.1 / np.array([0.2, 0.4, 0.1])) ** 2, rtol=1e-6)
    # the per-channel noise of an observation made in standard units has those variances
    obs = np.asarray(deg_z.observe(jnp.zeros((4000, 3, 8, 8)), jax.random.key(4)))
    m = np.asarray(deg.mask)[None] > 0
    measured = [obs[:, c][m[:, c].repeat(4000, 0)].std() for c in range(3)]
    np.testing.assert_allclose(measured, 0.1 / np.array([0.2, 0.4, 0.1]), rtol=0.03)
    with pytest.raises(ValueError, match="already in standardised units"):
        deg_z.in_standard_units(stats)
    with pytest.raises(ValueError, match="2 channel statistics for a 3-channel"):
        deg.in_standard_units(ChannelStats(mean=(0.0, 0.0), std=(1.0, 1.0)))


def test_posterior_sample_with_a_prior_trained_in_standardised_units():
    """``stats=`` runs the sampler in the prior's standardised units and returns model units:
    with a unit-Gaussian prior in those units, observed pixels follow the data and lost pixels
    follow the prior's per-channel mean and spread; sampling the same prior in model units
    (forgetting ``stats``) fills lost pixels around 0 instead."""
    from workshop_astro.galaxies import ChannelStats

    sde = VPSDE()
    stats = ChannelStats(mean=(-0.8, -0.5, 0.1), std=(0.2, 0.4, 0.1))
    z_true = np.asarray(jax.random.normal(jax.random.key(5), (3, 8, 8)), np.float32)
    truth = stats.unstandardise(z_true[None])[0]
    deg = Degradation.make(truth.shape, fwhm=0.5, noise_std=0.01, missing=0.5, seed=0)
    y = deg.observe(jnp.asarray(truth), jax.random.key(6))
    lost, seen = np.asarray(deg.mask)[0] == 0, np.asarray(deg.mask)[0] == 1

    def score(z, t):  # exact score of N(0, I) data in standardised units
        a, s = sde.marginal_mean_coeff(t), sde.marginal_std(t)
        return -z / (a**2 + s**2)

    right, _ = posterior_sample(sde, score, deg, y, jax.random.key(7), n_samples=64, n_steps=60, stats=stats)
    wrong, _ = posterior_sample(sde, score, deg, y, jax.random.key(7), n_samples=64, n_steps=60)
    right, wrong = np.asarray(right), np.asarray(wrong)
    for c in range(3):
        np.testing.assert_allclose(right.mean(0)[c][seen], truth[c][seen], atol=0.05)
        np.testing.assert_allclose(right.mean(0)[c][lost].mean(), stats.mean[c], atol=0.3 * stats.std[c])
        np.testing.assert_allclose(right.std(0)[c][lost].mean(), stats.std[c], rtol=0.25)
    assert abs(wrong.mean(0)[0][lost].mean() - stats.mean[0]) > 0.5
