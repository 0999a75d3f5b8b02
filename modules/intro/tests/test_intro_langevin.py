"""The Langevin science: exact score, noised mixtures, samplers, metrics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workshop_intro import langevin as lv

THREE = lv.GaussianMixture(jnp.array([0.5, 0.3, 0.2]), jnp.array([[0.0, 0.0], [2.0, 1.0], [-1.0, 2.5]]),
                           jnp.array([0.8, 1.2, 0.6]))


@pytest.mark.parametrize("mix", [lv.default_mixture(), THREE], ids=["default", "three"])
def test_grad_score_equals_the_closed_form(mix):
    xs = jax.random.uniform(jax.random.key(0), (50, 2), minval=-8.0, maxval=8.0)
    got = jax.jit(jax.vmap(lv.score, in_axes=(None, 0)))(mix, xs)
    want = jax.jit(jax.vmap(lv.analytic_score, in_axes=(None, 0)))(mix, xs)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_log_density_is_normalised():
    g = jnp.linspace(-12.0, 12.0, 241)
    xx, yy = jnp.meshgrid(g, g)
    pts = jnp.stack([xx.ravel(), yy.ravel()], axis=1)
    p = jnp.exp(jax.jit(jax.vmap(lv.log_density, in_axes=(None, 0)))(lv.default_mixture(), pts))
    assert float(p.sum() * (g[1] - g[0]) ** 2) == pytest.approx(1.0, abs=1e-3)


def test_score_far_from_the_modes_is_finite():
    s = lv.score(lv.default_mixture(), jnp.array([300.0, -300.0]))
    assert bool(jnp.isfinite(s).all())


def test_noised_mixture_matches_adding_noise():
    mix = lv.GaussianMixture(jnp.array([1.0]), jnp.array([[1.0, -2.0]]), jnp.array([0.5]))
    x = lv.sample(mix, jax.random.key(1), 20_000) + 2.0 * jax.random.normal(jax.random.key(2), (20_000, 2))
    assert float(lv.noised(mix, 2.0).stds[0]) == pytest.approx(float(jnp.sqrt(0.25 + 4.0)))
    np.testing.assert_allclose(x.std(axis=0), jnp.sqrt(0.25 + 4.0), rtol=0.03)


def test_exact_samples_have_the_true_mode_weights():
    mix = lv.default_mixture()
    w = lv.mode_weights(mix, lv.sample(mix, jax.random.key(3), 5000))
    np.testing.assert_allclose(w, mix.weights, atol=0.02)


def test_sliced_wasserstein_of_a_shift_is_its_length_over_root_two():
    x = jax.random.normal(jax.random.key(4), (500, 2))
    assert float(lv.sliced_wasserstein(x, x)) == pytest.approx(0.0, abs=1e-6)
    shift = jnp.array([3.0, 4.0])  # |v| = 5; the mean over directions of (v . theta)^2 is |v|^2 / 2
    assert float(lv.sliced_wasserstein(x, x + shift, n_directions=256)) == pytest.approx(5 / np.sqrt(2), rel=1e-3)


def test_langevin_samples_a_gaussian():
    x0 = jnp.zeros((2000, 2))
    x = jax.jit(lv.langevin, static_argnums=(0, 4))(lambda y: -y, jax.random.key(5), x0, 0.05, 300)
    # unadjusted Langevin on N(0, 1) with step eps has stationary variance 1 / (1 - eps / 2)
    assert float(x.var()) == pytest.approx(1 / (1 - 0.025), rel=0.06)
    assert abs(float(x.mean())) < 0.05


def test_annealed_beats_plain_on_weights_and_distance():
    c = lv.compare_samplers(jax.random.key(0), 400, 420)
    plain_err = float(jnp.abs(c.plain_weights - c.true_weights).max())
    annealed_err = float(jnp.abs(c.annealed_weights - c.true_weights).max())
    assert plain_err > 0.2  # plain Langevin keeps the share of starting points in each basin (~0.5)
    assert annealed_err < 0.08
    assert float(c.annealed_distance) < 0.5 * float(c.plain_distance)


def test_step_sizes_follow_the_noised_variance():
    steps = lv.annealing_step_sizes(jnp.array([10.0, 1.0, 0.0]), eps=0.1)
    np.testing.assert_allclose(steps, [0.1 * 101, 0.1 * 2, 0.1], rtol=1e-6)
