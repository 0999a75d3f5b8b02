"""Few-step samplers: exact on a Gaussian with a known score, NFE as documented, agree with the ODE."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workshop_astro.edm import EDMDenoiser, edm_coefficients
from workshop_astro.fewstep import dpm_solver_sample, edm_sample, heun_sample, karras_sigmas, model_score, time_grid
from workshop_astro.sampling import probability_flow_sample
from workshop_astro.sde import VESDE, VPSDE

M, S0 = 0.7, 0.3


def gaussian_score(sde):
    def score(x, t):
        a, s = sde.marginal_mean_coeff(t), sde.marginal_std(t)
        return -(x - a * M) / (a**2 * S0**2 + s**2)
    return score


def test_time_grids_are_monotone_and_span_the_interval():
    sde = VPSDE()
    for spacing in ("logsnr", "karras", "uniform"):
        ts = time_grid(sde, 10, 1e-3, spacing)
        assert ts.shape == (11,) and np.isclose(ts[0], 1.0) and np.isclose(ts[-1], 1e-3)
        assert np.all(np.diff(ts) < 0)
    # logsnr spacing: equal steps in log(alpha / std)
    ts = time_grid(sde, 8, 1e-3, "logsnr")
    lam = np.log(np.asarray(jax.vmap(sde.marginal_mean_coeff)(ts)) / np.asarray(jax.vmap(sde.marginal_std)(ts)))
    assert np.allclose(np.diff(lam), np.diff(lam)[0], rtol=1e-2)
    with pytest.raises(ValueError):
        time_grid(sde, 4, 1e-3, "nope")


@pytest.mark.parametrize("sde", [VPSDE(), VESDE(sigma_max=20.0)], ids=["vp", "ve"])
def test_few_step_samplers_recover_a_gaussian(sde):
    score = gaussian_score(sde)
    key = jax.random.key(0)
    x_init = sde.prior_sample(jax.random.key(1), (4000, 2))
    dpm = jax.jit(lambda: dpm_solver_sample(sde, score, key, (4000, 2), n_steps=10, x_init=x_init))
    heun = jax.jit(lambda: heun_sample(sde, score, key, (4000, 2), n_steps=10, x_init=x_init, spacing="logsnr"))
    x, nfe = dpm()
    y, nfe_h = heun()
    assert int(nfe) == 10 and int(nfe_h) == 20
    for z, tol in ((x, 0.02), (y, 0.06)):
        assert abs(float(z.mean()) - M) < 0.03
        assert abs(float(z.std()) - S0) < tol
    # deterministic samplers of the same ODE: close to the adaptive Tsit5 solution, path by path
    z, nfe_ode = probability_flow_sample(sde, score, key, (4000, 2), x_init=x_init, rtol=1e-5, atol=1e-5)
    assert int(nfe_ode) > 10
    assert float(jnp.abs(z - x).mean()) < 0.02


def test_dpm_solver_converges_with_more_steps():
    sde = VPSDE()
    score = gaussian_score(sde)
    x_init = jax.random.normal(jax.random.key(2), (2000, 2))
    errs = []
    for n in (3, 6, 12):
        x, _ = dpm_solver_sample(sde, score, jax.random.key(0), (2000, 2), n_steps=n, x_init=x_init)
        errs.append(abs(float(x.std()) - S0))
    assert errs[2] < errs[0] and errs[2] < 0.01


def test_clipping_keeps_denoised_estimates_in_range():
    sde = VPSDE()
    far = lambda x, t: -(x - 5.0 * sde.marginal_mean_coeff(t)) / (sde.marginal_std(t) ** 2 + 1e-3)  # data at 5
    x, _ = dpm_solver_sample(sde, far, jax.random.key(0), (64, 3), n_steps=8, clip_denoised=1.0, prediction="data")
    assert float(jnp.abs(x).max()) < 1.1


def test_model_score_divides_noise_by_std():
    sde = VPSDE()
    model = lambda x, t: jnp.ones_like(x)
    s = model_score(model, sde)(jnp.zeros(3), 0.5)
    assert np.allclose(s, -1 / float(sde.marginal_std(0.5)))


def test_noise_and_data_forms_agree_for_an_exact_score():
    sde = VPSDE()
    score = gaussian_score(sde)
    x_init = jax.random.normal(jax.random.key(3), (500, 2))
    a, _ = dpm_solver_sample(sde, score, jax.random.key(0), (500, 2), n_steps=20, x_init=x_init, prediction="noise")
    b, _ = dpm_solver_sample(sde, score, jax.random.key(0), (500, 2), n_steps=20, x_init=x_init, prediction="data")
    assert float(jnp.abs(a - b).mean()) < 0.02


def test_karras_sigmas_decrease_to_zero():
    s = karras_sigmas(6, 0.002, 80.0)
    assert s.shape == (7,) and np.isclose(s[0], 80.0) and np.isclose(s[-2], 0.002) and s[-1] == 0
    assert np.all(np.diff(s) < 0)
    with pytest.raises(ValueError):
        karras_sigmas(0)


def gaussian_denoiser(y, sigma):
    # E[x0 | x0 + sigma n] for x0 ~ N(M, S0^2) per coordinate
    return M + S0**2 / (S0**2 + sigma**2) * (y - M)


@pytest.mark.parametrize("solver,nfe", [("dpm++2m", 24), ("heun", 47)])
def test_edm_sampler_recovers_a_gaussian_in_sigma(solver, nfe):
    # a narrow Gaussian (std 0.3) under EDM's grid from sigma 80: 24 steps land within 6 %
    run = jax.jit(lambda: edm_sample(gaussian_denoiser, jax.random.key(0), (4000, 2), n_steps=24, solver=solver))
    x, n = run()
    assert int(n) == nfe
    assert abs(float(x.mean()) - M) < 0.03 and abs(float(x.std()) - S0) < 0.02
    with pytest.raises(ValueError, match="solver"):
        edm_sample(gaussian_denoiser, jax.random.key(0), (4, 2), solver="euler")


class _Zero:
    config = None

    def __call__(self, x, t):
        return jnp.zeros_like(x)


def test_edm_preconditioning_and_its_noise_prediction_view():
    c_skip, c_out, c_in, c_noise = edm_coefficients(jnp.asarray([1e-3, 1.0, 80.0]), 1.0)
    assert np.allclose(c_skip, [1.0, 0.5, 1 / 6401], rtol=1e-4)  # D(y) -> y as sigma -> 0
    assert np.allclose(c_out**2, [1e-6 / (1 + 1e-6), 0.5, 6400 / 6401], rtol=1e-3)
    assert np.allclose(c_in, 1 / np.sqrt(np.array([1e-6, 1.0, 6400.0]) + 1.0), rtol=1e-5)
    # with F = 0, D = c_skip y and the noise prediction is (y - D) / sigma with y = x / alpha
    den = EDMDenoiser(_Zero(), 1.0)
    sde = VPSDE()
    x = jax.random.normal(jax.random.key(3), (3, 4, 4))
    t = 0.4
    a, s = sde.marginal_mean_coeff(t), sde.marginal_std(t)
    sigma = s / a
    expected = (x / a) * (1 - 1 / (1 + sigma**2)) / sigma
    assert np.allclose(den(x, t), expected, rtol=1e-5, atol=1e-6)
    # the score the samplers use: -eps / std
    assert np.allclose(model_score(den, sde)(x, t), -expected / s, rtol=1e-5, atol=1e-6)
