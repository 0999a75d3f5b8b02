"""Exact log-likelihood through the probability-flow ODE against the analytic mixture density."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workshop_astro.likelihood import exact_divergence, hutchinson_divergence, log_likelihood
from workshop_astro.sde import VESDE, VPSDE
from workshop_astro.toy import GaussianMixture

GM = GaussianMixture.default()
T_EPS = 1e-3
# points from the mixture, plus one between components and one far in a tail
POINTS = jnp.concatenate([GM.sample(jax.random.key(0), 6), jnp.array([[0.0, 0.0], [2.0, 2.0]])])


@pytest.mark.parametrize("sde", [VPSDE(), VESDE(sigma_max=20.0)], ids=["VP", "VE"])
def test_ode_log_likelihood_matches_the_mixture_density(sde):
    score = lambda x, t: GM.score(x, t, sde)
    exact_T = lambda y: GM.marginal_log_prob(y, sde.T, sde)

    @jax.jit
    @jax.vmap
    def both(x):
        with_exact_prior = log_likelihood(sde, score, x, prior_logp=exact_T)
        with_sde_prior = log_likelihood(sde, score, x)
        return with_exact_prior, with_sde_prior

    (logp, nfe), (logp0, _) = both(POINTS)
    # (a) with the exact density at T as the prior, only the ODE solve is tested:
    want = GM.marginal_log_prob(POINTS, T_EPS, sde)
    assert float(jnp.max(jnp.abs((logp - want) / want))) < 1e-3
    assert np.all(np.asarray(nfe) > 6)
    # (b) with the SDE's own prior, against the data density at t = 0: relative error < 1e-2
    rel = jnp.abs((logp0 - GM.log_prob(POINTS)) / GM.log_prob(POINTS))
    assert float(jnp.max(rel)) < 1e-2, rel


def test_likelihood_ranks_a_wrong_model_lower():
    sde = VPSDE()
    logp, _ = jax.vmap(lambda x: log_likelihood(sde, lambda y, t: GM.score(y, t, sde), x, rtol=1e-4, atol=1e-4))(POINTS[:6])
    # the score of N(0, I) at every time: its flow maps N(0, I) to N(0, I)
    logq, _ = jax.vmap(lambda x: log_likelihood(sde, lambda y, t: -y, x, rtol=1e-4, atol=1e-4))(POINTS[:6])
    np.testing.assert_allclose(logq, -0.5 * jnp.sum(POINTS[:6] ** 2, -1) - jnp.log(2 * jnp.pi), rtol=1e-3)
    assert float(jnp.mean(logp)) > float(jnp.mean(logq))


def test_hutchinson_is_unbiased():
    sde = VPSDE()
    score = lambda x, t: GM.score(x, t, sde)
    x = POINTS[0]
    exact, _ = log_likelihood(sde, score, x, rtol=1e-4, atol=1e-4)
    n = 64
    est, _ = jax.jit(jax.vmap(lambda k: log_likelihood(sde, score, x, divergence="hutchinson", key=k, rtol=1e-4, atol=1e-4)))(
        jax.random.split(jax.random.key(1), n))
    assert abs(float(est.mean() - exact)) < 4 * float(est.std()) / np.sqrt(n) + 1e-3
    assert float(est.std()) > 0  # it is an estimate, not the exact trace
    with pytest.raises(ValueError, match="key"):
        log_likelihood(sde, score, x, divergence="hutchinson")


def test_divergences_on_a_known_field():
    A = jnp.array([[1.0, 2.0, 0.0], [0.5, -3.0, 1.0], [0.0, 0.0, 0.25]])
    fn = lambda x: A @ x + jnp.sin(x)
    x = jnp.array([0.1, 0.2, -0.3])
    want = jnp.trace(A) + jnp.sum(jnp.cos(x))
    np.testing.assert_allclose(exact_divergence(fn, x), want, rtol=1e-5)
    probes = jnp.array([[a, b, c] for a in (-1.0, 1.0) for b in (-1.0, 1.0) for c in (-1.0, 1.0)])
    est = jax.vmap(lambda z: hutchinson_divergence(fn, x, z))(probes)
    np.testing.assert_allclose(est.mean(), want, rtol=1e-5)
    # images: works on any shape
    img = jnp.ones((1, 2, 2))
    np.testing.assert_allclose(exact_divergence(lambda y: 3.0 * y, img), 12.0)
