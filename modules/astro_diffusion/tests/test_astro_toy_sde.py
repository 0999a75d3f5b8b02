"""Forward SDEs: closed-form marginals against Monte Carlo forward simulation, and basics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workshop_astro.sde import VESDE, VPSDE, forward_simulate


@pytest.mark.parametrize("sde", [VPSDE(), VESDE(sigma_max=5.0)], ids=["VP", "VE"])
def test_marginals_match_monte_carlo_forward_simulation(sde):
    n = 2000
    x0 = jnp.tile(jnp.array([[1.5, -0.5]]), (n, 1))
    ts = jnp.array([0.0, 0.1, 0.4, 1.0])
    paths = forward_simulate(sde, x0, jax.random.key(0), ts, dt=5e-3)
    for t, xt in zip(ts[1:], paths[1:]):
        mean, std = sde.marginal(x0[0], t)
        se = std / np.sqrt(n)
        # Monte Carlo error ~ std / sqrt(n); Euler-Maruyama bias O(dt) is far below it here.
        np.testing.assert_allclose(xt.mean(0), mean, atol=5 * float(se) + 1e-3)
        np.testing.assert_allclose(xt.std(0), std, rtol=0.07)
    np.testing.assert_allclose(paths[0], x0)


def test_vp_closed_forms():
    sde = VPSDE(0.1, 20.0)
    t = 0.3
    B = 0.1 * t + 0.5 * 19.9 * t**2
    assert np.isclose(sde.integrated_beta(t), B)
    assert np.isclose(sde.marginal_mean_coeff(t), np.exp(-B / 2))
    assert np.isclose(sde.marginal_std(t), np.sqrt(1 - np.exp(-B)))
    assert np.isclose(sde.diffusion(t) ** 2, sde.beta(t))
    # variance preserving: unit-variance data keeps unit variance
    assert np.isclose(sde.marginal_mean_coeff(t) ** 2 + sde.marginal_std(t) ** 2, 1.0, atol=1e-6)
    # no cancellation at tiny t: std ~ sqrt(beta_min t)
    assert np.isclose(sde.marginal_std(1e-7), np.sqrt(0.1 * 1e-7), rtol=1e-3)


def test_constructor_argument_order():
    assert VPSDE(0.5, 5.0, 2.0) == VPSDE(beta_min=0.5, beta_max=5.0, T=2.0)
    assert VESDE(0.1, 10.0).sigma_max == 10.0
    assert VPSDE(0.5, 5.0).T == 1.0


def test_ve_closed_forms_and_priors():
    sde = VESDE(0.01, 50.0)
    assert np.isclose(sde.marginal_std(0.0), 0.0)
    assert np.isclose(sde.marginal_std(1.0) ** 2, 50.0**2 - 0.01**2, rtol=1e-5)
    assert np.allclose(sde.drift(jnp.ones(3), 0.5), 0.0)
    x = jnp.array([0.3, -1.0])
    from scipy.stats import norm

    assert np.isclose(sde.prior_logp(x), norm.logpdf(np.asarray(x), scale=50.0).sum(), rtol=1e-5)
    assert np.isclose(VPSDE().prior_logp(x), norm.logpdf(np.asarray(x)).sum(), rtol=1e-5)
    assert VPSDE().prior_sample(jax.random.key(0), (3, 4, 4)).shape == (3, 4, 4)


def test_marginal_works_under_jit_and_vmap_for_images():
    sde = VPSDE()
    x0 = jnp.ones((3, 8, 8))
    mean, std = jax.jit(sde.marginal)(x0, 0.5)
    assert mean.shape == (3, 8, 8) and std.shape == ()
    stds = jax.vmap(sde.marginal_std)(jnp.linspace(0.0, 1.0, 5))
    assert np.all(np.diff(np.asarray(stds)) > 0)
