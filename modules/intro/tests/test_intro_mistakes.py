"""Typical wrong answers the intro checks must both catch and name.

Each case is a plausible mistake, many of which pass a check whose inputs cannot tell them
from the right answer (a symmetric matrix, one key, points near the data, equal
component widths); ``named`` is the words the message or hint must contain for the mistake
to count as recognised. The rate of named mistakes is printed (``-s``); it must be 100 %
for this catalogue (the older catalogue is in test_intro_checks.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from workshop.checking import verdict

from workshop_intro import checks


def _score(log_terms):
    def score(x, weights, means, stds):
        return jax.grad(lambda y: jax.nn.logsumexp(log_terms(y, weights, means, stds)))(x)

    return score


def _sq(x, m):
    return jnp.sum((x - m) ** 2, -1)


def _naive_log_sum_exp_score(x, weights, means, stds):
    d = x.shape[-1]
    return jax.grad(lambda y: jnp.log(jnp.sum(weights * jnp.exp(-0.5 * _sq(y, means) / stds**2) / stds**d)))(x)


def _step(drift=1.0, noise=lambda eps: jnp.sqrt(2 * eps), key_of=lambda key: key, shape=lambda x: x.shape):
    def langevin_step(key, x, score_fn, step_size):
        z = jax.random.normal(key_of(key), shape(x))
        return x + drift * step_size * jax.vmap(score_fn)(x) + noise(step_size) * z

    return langevin_step


def _fixed_key(key):
    return jax.random.key(0)


def _grad(w, x, y):
    return 2.0 * x.T @ (x @ w - y) / x.shape[0]


def _loss(w, x, y):
    return jnp.mean((x @ w - y) ** 2)


CASES = [
    # (check, the wrong answer, words that name the mistake)
    ("set_diagonal", lambda a, v: jnp.asarray(a).at[jnp.arange(a.shape[0])].set(v), "whole rows"),
    ("set_diagonal", lambda a, v: jnp.asarray(a) + v * jnp.eye(a.shape[0]), "added to the diagonal"),
    ("set_diagonal", lambda a, v: jnp.asarray(a).at[jnp.arange(a.shape[0]), a.shape[0] - 1 - jnp.arange(a.shape[0])]
     .set(v), "anti-diagonal"),
    ("pairwise_sq_distances", lambda xs, ys: (xs[:, None] - ys[None]) ** 2, "not summed over the coordinates"),
    ("pairwise_sq_distances", lambda xs, ys: jnp.sum(xs[:, None] - ys[None], -1) ** 2, "summed before squaring"),
    ("pairwise_sq_distances", lambda xs, ys: jnp.sum(xs**2, 1)[:, None] + jnp.sum(ys**2, 1)[None] + 2 * xs @ ys.T,
     "cross term"),
    ("loss_and_grad", lambda w, x, y: (_loss(w, x, y), _grad(w, x, y) / 2), "factor 2"),
    ("loss_and_grad", lambda w, x, y: (_loss(w, x, y), -_grad(w, x, y)), "wrong sign"),
    ("loss_and_grad", lambda w, x, y: (_loss(w, x, y), x.shape[0] * _grad(w, x, y)), "N times"),
    ("ar1_trajectory", lambda x0, a, e: jax.lax.scan(lambda x, n: (a * x, a * x), x0, e)[1], "never added"),
    ("ar1_trajectory", lambda x0, a, e: jax.lax.scan(lambda x, n: (a * (x + n), a * (x + n)), x0, e)[1],
     "multiplies the noise"),
    ("sgd_step", lambda p, g, lr: jax.tree.map(lambda gi: lr * gi, g), "only the step"),
    ("sgd_step", lambda p, g, lr: jax.tree.map(lambda pi, gi: pi - gi, p, g), "learning rate is missing"),
    ("sgd_step", lambda p, g, lr: jax.tree.map(lambda pi: pi + 0.0, p), "did not move"),
    ("piecewise", lambda x: jnp.where(x > 1, 2 * x - 1, x**2), "swapped"),
    ("mlp_loss", lambda m, x, y: jnp.sum((jax.vmap(m)(x) - y) ** 2), "sum of the squared errors"),
    ("mlp_loss", lambda m, x, y: jnp.sqrt(jnp.mean((jax.vmap(m)(x) - y) ** 2)), "root mean square"),
    ("solve_spd", lambda a, b: a @ b, "multiplies b"),
    ("mixture_score", _naive_log_sum_exp_score, "far from the modes"),
    ("mixture_score", _score(lambda x, w, m, s: jnp.log(w) - 0.5 * _sq(x, m) / s**2), "d log s_k"),
    ("mixture_score", _score(lambda x, w, m, s: jnp.log(w) - 0.5 * _sq(x, m) / s - x.shape[-1] * jnp.log(s)),
     "variance"),
    ("mixture_score", _score(lambda x, w, m, s: jnp.log(w) - _sq(x, m) / s**2 - x.shape[-1] * jnp.log(s)), "1/2"),
    ("langevin_step", _step(key_of=_fixed_key), "ignores its key"),
    ("langevin_step", _step(shape=lambda x: x.shape[1:]), "same noise vector"),
    ("langevin_step", _step(drift=-1.0), "down the score"),
    ("langevin_step", _step(drift=0.0), "drift ε score(x) is missing"),
    ("langevin_step", _step(drift=2.0), "twice"),
    ("langevin_step", _step(noise=lambda eps: eps), "noise std is ε"),
    ("langevin_step", _step(noise=lambda eps: 2 * eps), "square root is missing"),
    ("langevin_step", _step(noise=lambda eps: 1.0), "not scaled"),
]


def _verdict(name, fn):
    return verdict(getattr(checks, name), fn)


def test_langevin_step_without_the_score_scaled_by_the_step_is_named():
    def unscaled(key, x, score_fn, step_size):
        return x + jax.vmap(score_fn)(x) + jnp.sqrt(2 * step_size) * jax.random.normal(key, x.shape)

    assert "not multiplied by step_size" in _verdict("langevin_step", unscaled)[1]


def test_intro_checks_catch_and_name_typical_mistakes():
    results = [(name, words, *_verdict(name, fn)) for name, fn, words in CASES]
    missed = [(n, w, v) for n, w, v, _ in results if v != "fail"]
    assert not missed, f"mistakes that pass or look unattempted: {missed}"
    unnamed = [(n, w, text) for n, w, _, text in results if w not in text]
    rate = 1 - len(unnamed) / len(results)
    print(f"\nintro: {len(results)} typical mistakes, all caught; {len(results) - len(unnamed)} named ({rate:.0%})")
    assert not unnamed, "hints that do not name the mistake:\n" + "\n".join(f"{n} [{w}]: {t}" for n, w, t in unnamed)


@pytest.mark.parametrize("name", ["mixture_score", "langevin_step"])
def test_the_reference_solutions_still_pass(name):
    from workshop_intro import langevin as lv

    if name == "mixture_score":
        def ref(x, w, m, s):
            return lv.analytic_score(lv.GaussianMixture(w, m, s), x)
    else:
        ref = lv.langevin_step
    assert isinstance(getattr(checks, name)(ref), str)
