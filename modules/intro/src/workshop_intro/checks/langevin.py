"""Checks for lesson 06, Langevin dynamics with an exact score."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from workshop.checking import CheckFailed, assert_close, expect

from .. import langevin as lv
from ._common import _allclose, _call, _function

__all__ = ["mixture_score", "langevin_step"]


def _mixtures():
    yield lv.default_mixture()
    yield lv.GaussianMixture(jnp.array([0.5, 0.3, 0.2]), jnp.array([[0.0, 0.0], [2.0, 1.0], [-1.0, 2.5]]),
                             jnp.array([0.8, 1.2, 0.6]))


def _batched_score(log_terms: Callable) -> Callable:
    """Scores at a batch of points of ``logsumexp_k log_terms(x, w, m, s)_k``, jitted once for every call."""

    def score(x, weights, means, stds):
        return jax.grad(lambda y: jax.nn.logsumexp(log_terms(y, weights, means, stds)))(x)

    return jax.jit(jax.vmap(score, in_axes=(0, None, None, None)))


def _sq_dist(x, m):
    return jnp.sum((x - m) ** 2, -1)


# The score of the log density written with a typical mistake, and the hint that fixes it.
_SCORE_MISTAKES = {
    "the -d log s_k normalisation term is missing": (
        _batched_score(lambda x, w, m, s: jnp.log(w) - 0.5 * _sq_dist(x, m) / s**2),
        "each component's log density has -d log s_k (its normalisation): without it wide components weigh too much"),
    "s_k is used where the variance s_k² belongs": (
        _batched_score(lambda x, w, m, s: jnp.log(w) - 0.5 * _sq_dist(x, m) / s - x.shape[-1] * jnp.log(s)),
        "the exponent is -|x - m_k|² / (2 s_k²): divide by the variance, the std squared"),
    "the 1/2 in the exponent is missing": (
        _batched_score(lambda x, w, m, s: jnp.log(w) - _sq_dist(x, m) / s**2 - x.shape[-1] * jnp.log(s)),
        "the exponent is -|x - m_k|² / (2 s_k²)"),
}
_analytic_scores = jax.jit(jax.vmap(lv.analytic_score, in_axes=(None, 0)))
_mixture_scores = jax.jit(jax.vmap(lv.score, in_axes=(None, 0)))
_densities = jax.jit(jax.vmap(lambda mix, x: jnp.exp(lv.log_density(mix, x)), in_axes=(None, 0)))


def mixture_score(candidate: Callable) -> str:
    """``mixture_score(x, weights, means, stds)``: ``∇ log p(x)`` of an isotropic Gaussian mixture at one point.

    Tested on points drawn from two mixtures (one with unequal weights and stds, so that a
    missing weight, a missing ``d log s_k`` or a variance in place of a std changes the
    answer) and on points far from every mode, where a log-density written as
    ``log(sum(exp(...)))`` underflows to ``log 0`` and its gradient to NaN.
    """
    _function(candidate)
    grad_hint = ("write log p(x) = logsumexp_k [log w_k - |x - m_k|² / (2 s_k²) - d log s_k] (+ a constant) "
                 "and return jax.grad of it")
    far = jnp.array([[30.0, -25.0], [-40.0, 12.0], [60.0, 60.0]])
    for mix in _mixtures():
        xs = jnp.concatenate([lv.sample(mix, jax.random.key(11), 6), far])
        f = jax.jit(jax.vmap(candidate, in_axes=(0, None, None, None)))
        got = _call(f, xs, mix.weights, mix.means, mix.stds, what=f"6 points near the modes and 3 far from them, "
                    f"{mix.weights.shape[0]} components, under jit(vmap)")
        expected = _analytic_scores(mix, xs)
        if getattr(got, "shape", None) == expected.shape and not _allclose(got, expected, rtol=1e-3, atol=1e-4):
            got_np = np.asarray(got)
            if not np.isfinite(got_np[-3:]).all() and np.isfinite(got_np[:-3]).all():
                raise CheckFailed("the score is NaN or infinite far from the modes (e.g. at x = (30, -25)), right near them: "
                                  "exp(-|x - m|² / 2s²) underflows to 0 there and log(0) is -inf",
                                  hint="compute log Σ_k exp(a_k) with jax.nn.logsumexp(a), which subtracts the largest "
                                       "a_k first and never underflows")
            dens = _densities(mix, xs)[:, None]
            uniform = lv.GaussianMixture(jnp.full_like(mix.weights, 1.0 / mix.weights.shape[0]), mix.means, mix.stds)
            if _allclose(got[:-3], (dens * expected)[:-3], rtol=1e-3, atol=1e-6):
                raise CheckFailed("this is the gradient of the density p(x), not of log p(x)",
                                  hint="the score is ∇ log p = ∇p / p: differentiate the log density "
                                       "(jax.nn.logsumexp over the components)")
            if _allclose(got, -expected, rtol=1e-3, atol=1e-4):
                raise CheckFailed("the score has the wrong sign",
                                  hint="the score points uphill, towards the modes: grad of +log p")
            if _allclose(got, _analytic_scores(uniform, xs), rtol=1e-3, atol=1e-4):
                raise CheckFailed("the mixture weights are missing",
                                  hint="each component's term inside the logsumexp starts with log w_k")
        mistakes = {name: (lambda v=v: v(xs, mix.weights, mix.means, mix.stds), hint)
                    for name, (v, hint) in _SCORE_MISTAKES.items()}
        assert_close(got, expected, what="the score", rtol=1e-3, atol=1e-4, hint=grad_hint, mistakes=mistakes)
    return "matches the closed-form score on two mixtures, near the modes and far from them, under jit and vmap"


def _raise_batch(x):
    raise TypeError(f"score_fn takes one point of shape (d,), got shape {x.shape}")


def langevin_step(candidate: Callable) -> str:
    """``langevin_step(key, x, score_fn, step_size)``: ``x + ε score(x) + √(2ε) z`` for a batch of particles.

    Run with two keys on the same particles (a step that ignores its key gives the same
    particles twice) and with two step sizes; the noise is judged by its statistics
    (independent of the score, N(0, 1) in units of √(2ε), different for every particle)
    and the drift by the regression of the update on the score, which names a missing,
    reversed or unscaled drift.
    """
    _function(candidate)
    step_hint = "x + step_size * jax.vmap(score_fn)(x) + jnp.sqrt(2 * step_size) * jax.random.normal(key, x.shape)"
    mix = lv.default_mixture()
    x = lv.sample(mix, jax.random.key(12), 4000)

    def score_fn(y):
        if y.ndim != 1:
            _raise_batch(y)
        return lv.score(mix, y)

    scores = _mixture_scores(mix, x)
    s = np.asarray(scores)
    step = jax.jit(candidate, static_argnums=2)
    exact, previous = 0, None
    for key_seed, eps in ((13, 0.05), (14, 0.05), (15, 0.2)):
        key = jax.random.key(key_seed)
        got = _call(step, key, x, score_fn, eps,
                    what=f"4000 particles of shape (4000, 2), step_size={eps}, under jit",
                    hints=(("score_fn takes one point", "score_fn takes one point: apply it to the batch with "
                                                        "jax.vmap(score_fn)(x)"),))
        expect(getattr(got, "shape", None) == x.shape, f"expected particles of shape {x.shape}, got "
               f"{getattr(got, 'shape', type(got).__name__)}", hint=step_hint)
        if previous is not None and eps == previous[0]:
            expect(not _allclose(got, previous[1], rtol=0, atol=0),
                   "two different keys gave exactly the same particles: the step ignores its key",
                   hint="draw the noise from the key argument: jax.random.normal(key, x.shape), not from a key made "
                        "inside the function")
        previous = (eps, got)
        drift = x + eps * scores
        if _allclose(got, drift + jnp.sqrt(2 * eps) * jax.random.normal(key, x.shape)):
            exact += 1
            continue
        # drawn differently: judge the update by its statistics. z should be N(0, 1) and
        # uncorrelated with the score; a missing or wrong drift shows up as a correlation.
        z = np.asarray((got - drift) / jnp.sqrt(2 * eps))
        std = float(z.std())
        beta = float(np.sum(z * s) / np.sum(s * s))
        coef = 1.0 + beta * np.sqrt(2 * eps) / eps  # the multiple of ε score(x) actually added
        if std < 1e-3:
            raise CheckFailed("there is no noise: this is gradient ascent, not Langevin dynamics",
                              hint="add jnp.sqrt(2 * step_size) * jax.random.normal(key, x.shape)")
        if np.allclose(z[0], z[1:], atol=1e-5):
            raise CheckFailed("every particle got the same noise vector",
                              hint="draw one noise vector per particle: jax.random.normal(key, x.shape)")
        if abs(beta) >= 0.05:
            for value, name, fix in (
                    (0.0, "the drift ε score(x) is missing", "add step_size * jax.vmap(score_fn)(x)"),
                    (-1.0, "the drift goes down the score (x - ε score(x))",
                     "Langevin moves uphill, towards high density: x + step_size * score"),
                    (2.0, "the drift is twice ε score(x)", "the drift is step_size * score, without a factor 2"),
                    (1.0 / eps, "the score is not multiplied by step_size", "the drift is step_size * score(x)")):
                if abs(coef - value) < 0.1 * max(1.0, abs(value)):
                    raise CheckFailed(f"the drift is wrong: {name} (measured {coef:+.2f} ε score(x) at "
                                      f"step_size={eps})", hint=fix)
        noise_scale = std * np.sqrt(2 * eps)  # the measured std of the noise term
        for value, name, fix in (
                (np.sqrt(eps), "the noise std is √ε, not √(2ε)", "the noise std is sqrt(2 * step_size)"),
                (2 * eps, "the noise std is 2ε, not √(2ε): the square root is missing",
                 "the noise std is sqrt(2 * step_size)"),
                (eps, "the noise std is ε, not √(2ε)", "the noise std is sqrt(2 * step_size)"),
                (1.0, "the noise is not scaled by √(2ε)", "multiply the normal draws by sqrt(2 * step_size)")):
            if abs(std - 1.0) >= 0.03 and abs(noise_scale - value) < 0.03 * value:
                raise CheckFailed(f"{name} (measured {noise_scale:.3f} at step_size={eps})", hint=fix)
        expect(abs(beta) < 0.05, f"the drift is wrong: what is left after removing x + ε score(x) still depends on the "
               f"score (regression slope {beta:+.3f}, expected 0)", hint=step_hint)
        expect(abs(std - 1.0) < 0.03 and float(np.abs(z.mean(axis=0)).max()) < 0.05,
               f"the noise should be N(0, 2ε): measured std {std:.3f} in units of √(2ε)", hint=step_hint)
    if exact == 3:
        return "exactly x + ε score(x) + √(2ε) z for two keys and two step sizes"
    return ("drift ε score(x) and noise of std √(2ε) for two keys and two step sizes (noise drawn differently, "
            "but its statistics are right)")
