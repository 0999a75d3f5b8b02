"""Denoising score matching: the loss, its weightings and the low-discrepancy times."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workshop_astro.dsm import dsm_loss, dsm_loss_at, sample_times
from workshop_astro.score_mlp import ScoreMLP
from workshop_astro.sde import VPSDE
from workshop_astro.toy import GaussianMixture

SDE, GM = VPSDE(), GaussianMixture.default()


def exact(x, t):
    return GM.score(x, t, SDE)


def test_loss_matches_its_formula():
    x0 = GM.sample(jax.random.key(0), 7)
    t = jnp.linspace(0.01, 1.0, 7)
    eps = jax.random.normal(jax.random.key(1), x0.shape)
    model = lambda x, t: -2.0 * x * t
    got = dsm_loss_at(model, SDE, x0, t, eps)
    want = 0.0
    for i in range(7):
        a, s = float(SDE.marginal_mean_coeff(t[i])), float(SDE.marginal_std(t[i]))
        xt = a * np.asarray(x0[i]) + s * np.asarray(eps[i])
        want += s**2 * np.mean((-2.0 * xt * float(t[i]) + np.asarray(eps[i]) / s) ** 2) / 7
    np.testing.assert_allclose(got, want, rtol=1e-5)
    g = SDE.diffusion(t) ** 2
    lik = dsm_loss_at(model, SDE, x0, t, eps, weighting="likelihood")
    per = jnp.mean((jax.vmap(model)(SDE.marginal_mean_coeff(t)[:, None] * x0 + SDE.marginal_std(t)[:, None] * eps, t)
                    + eps / SDE.marginal_std(t)[:, None]) ** 2, axis=1)
    np.testing.assert_allclose(lik, jnp.mean(g * per), rtol=1e-5)


def test_exact_score_is_the_minimiser():
    # d/dc E[loss(c * exact score)] vanishes at c = 1 (the true score minimises the DSM
    # objective), and is clearly negative at c = 0.5.
    x0 = GM.sample(jax.random.key(2), 8000)
    key = jax.random.key(3)
    loss_of = jax.jit(lambda c: dsm_loss(lambda x, t: c * exact(x, t), SDE, x0, key, t_eps=0.01))
    slope = jax.jit(jax.grad(loss_of))
    slope_at_1, slope_at_half = slope(1.0), slope(0.5)
    assert slope_at_half < 0
    assert abs(slope_at_1) < 0.1 * abs(slope_at_half)
    assert loss_of(1.0) < loss_of(0.8) and loss_of(1.0) < loss_of(1.2)


@pytest.mark.parametrize("method", ["stratified", "antithetic", "uniform"])
def test_times_in_range(method):
    t = sample_times(jax.random.key(4), 64, 1e-3, 1.0, method)
    assert t.shape == (64,)
    assert float(t.min()) >= 1e-3 and float(t.max()) <= 1.0


def test_stratified_times_hit_every_stratum_and_antithetic_pairs():
    n = 50
    t = sample_times(jax.random.key(5), n, 0.0, 1.0, "stratified")
    counts = np.bincount(np.floor(np.asarray(t) * n).astype(int), minlength=n)
    assert np.all(counts == 1)
    a = sample_times(jax.random.key(6), 10, 0.0, 1.0, "antithetic")
    np.testing.assert_allclose(np.sort(a[:5]), np.sort(1.0 - a[5:]), atol=1e-6)
    with pytest.raises(ValueError, match="time sampling"):
        sample_times(jax.random.key(0), 4, 0.0, 1.0, "sobol")


def test_stratified_times_lower_the_variance_of_the_loss():
    x0 = GM.sample(jax.random.key(7), 64)
    model = lambda x, t: -x

    def spread(method):
        keys = jax.random.split(jax.random.key(8), 200)
        return jnp.std(jax.jit(jax.vmap(lambda k: dsm_loss(model, SDE, x0, k, time_sampling=method)))(keys))

    assert spread("stratified") < spread("uniform")


def test_loss_is_differentiable_for_the_mlp_and_works_for_images():
    model = ScoreMLP(SDE, 2, key=jax.random.key(9), width=16, depth=1)
    import equinox as eqx

    loss, grads = eqx.filter_jit(eqx.filter_value_and_grad(dsm_loss))(model, SDE, GM.sample(jax.random.key(1), 32), jax.random.key(2))
    assert np.isfinite(loss)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(eqx.filter(grads, eqx.is_array)))
    img_loss = jax.jit(lambda x: dsm_loss(lambda x, t: -x, SDE, x, jax.random.key(3)))(jnp.ones((4, 1, 8, 8)))
    assert img_loss.shape == () and np.isfinite(img_loss)
    with pytest.raises(ValueError, match="weighting"):
        dsm_loss(lambda x, t: -x, SDE, jnp.ones((4, 2)), jax.random.key(3), weighting="uniform")
