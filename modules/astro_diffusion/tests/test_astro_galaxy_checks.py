"""The galaxy checks pass on reference answers, fail on stubs, and name the typical mistakes.

``CASES`` is the catalogue of typical wrong answers to the galaxy exercises (lessons
07-11): each must fail, and its message or hint must contain the words that name the
mistake. The rate of named mistakes is printed (``-s``) and must stay 100 % for this
catalogue (the toy catalogue, in test_astro_toy_checks.py, asserts the same case by case).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

from workshop.checking import NotAttempted, verdict
from workshop_astro.checks import galaxies as G


# --- references ---------------------------------------------------------------------------


def standardise(images):
    mean, std = images.mean(axis=(0, 2, 3)), images.std(axis=(0, 2, 3))
    return (images - mean[:, None, None]) / std[:, None, None], mean, std


def unstandardise(z, mean, std):
    return z * std[:, None, None] + mean[:, None, None]


def time_conditioned_block(x, t, inner, proj, embed):
    scale, shift = jnp.split(proj(embed(t)), 2)
    return x + inner(x * (1 + scale[:, None, None]) + shift[:, None, None])


def ema_update(ema, params, decay):
    return jax.tree_util.tree_map(lambda e, p: decay * e + (1 - decay) * p if eqx.is_inexact_array(p) else e, ema, params)


def final_denoise(score_fn, sde, x, t_eps):
    alpha, std = sde.marginal_mean_coeff(t_eps), sde.marginal_std(t_eps)
    return (x + std**2 * score_fn(x, t_eps)) / alpha


REFERENCES = {
    "standardise": standardise,
    "unstandardise": unstandardise,
    "time_conditioned_block": time_conditioned_block,
    "ema_update": ema_update,
    "final_denoise": final_denoise,
    "upsample_nearest": lambda x: jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2),
    "ddim_step": lambda x, x0, a_s, s_s, a_t, s_t: a_t * x0 + s_t * (x - a_s * x0) / s_s,
    "tweedie_denoise": lambda x, score, a, s: (x + s**2 * score) / a,
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_reference_passes(name):
    msg = getattr(G, name)(REFERENCES[name])
    assert isinstance(msg, str) and msg


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_stub_is_not_attempted(name):
    with pytest.raises(NotAttempted):
        getattr(G, name)(lambda *args: None)


def test_the_new_checks_are_declared_for_their_lessons():
    from workshop_astro.plugin import workshop_module

    lessons = {c.name: c.lesson for c in workshop_module().checks}
    assert lessons["time_conditioned_block"] == "07_unet_forward"
    assert lessons["standardise"] == lessons["unstandardise"] == lessons["ema_update"] == "08_training_step"
    assert lessons["final_denoise"] == "09_few_step_sampling"
    for name in ("standardise", "unstandardise", "time_conditioned_block", "ema_update", "final_denoise"):
        assert getattr(G, name).__doc__.strip(), name


# --- typical mistakes ---------------------------------------------------------------------


def _standardise(axes=(0, 2, 3), keep=True, swap=False, variance=False):
    def fn(images):
        mean, std = images.mean(axis=axes, keepdims=keep), images.std(axis=axes, keepdims=keep)
        if swap:
            mean, std = std, mean
        return (images - mean) / (std**2 if variance else std), mean, std

    return fn


def _block(where="inside", one_plus=True, swap=False, last_axis=False, raw_t=False):
    def fn(x, t, inner, proj, embed):
        scale, shift = jnp.split(proj(t if raw_t else embed(t)), 2)
        if swap:
            scale, shift = shift, scale
        if not last_axis:
            scale, shift = scale[:, None, None], shift[:, None, None]
        film = lambda h: h * ((1 + scale) if one_plus else scale) + shift  # noqa: E731
        if where == "after":
            return film(x + inner(x))
        if where == "skip":
            return film(x) + inner(film(x))
        return x + inner(film(x))

    return fn


def _ema(a, b, filtered=True):
    def fn(ema, params, decay):
        wa, wb = a(decay), b(decay)
        return jax.tree_util.tree_map(
            lambda e, p: wa * e + wb * p if (eqx.is_inexact_array(p) or not filtered) else e, ema, params)

    return fn


def _final(kind):
    def fn(score_fn, sde, x, t_eps):
        a, s = sde.marginal_mean_coeff(t_eps), sde.marginal_std(t_eps)
        score = score_fn(x, t_eps)
        return {"x": x, "no_alpha": x + s**2 * score, "sign": (x - s**2 * score) / a,
                "std": (x + s * score) / a}[kind]

    return fn


CASES = [
    # (check name, the wrong answer, words that name the mistake)
    ("standardise", _standardise(axes=(2, 3)), "per image"),
    ("standardise", _standardise(axes=None), "all channels at once"),
    ("standardise", _standardise(axes=0), "per pixel"),
    ("standardise", _standardise(swap=True), "mean and std swapped"),
    ("standardise", _standardise(variance=True), "variance"),
    ("standardise", _standardise(keep=False), "last axis"),
    ("unstandardise", lambda z, m, s: z, "returned unchanged"),
    ("unstandardise", lambda z, m, s: (z + m[:, None, None]) * s[:, None, None], "wrong order"),
    ("unstandardise", lambda z, m, s: z * m[:, None, None] + s[:, None, None], "mean and std swapped"),
    ("unstandardise", lambda z, m, s: (z - m[:, None, None]) / s[:, None, None], "standardised again"),
    ("unstandardise", lambda z, m, s: z * s + m, "last axis"),
    ("time_conditioned_block", _block(where="after"), "after the residual sum"),
    ("time_conditioned_block", _block(where="skip"), "skip path"),
    ("time_conditioned_block", _block(one_plus=False), "without the 1 +"),
    ("time_conditioned_block", _block(swap=True), "scale and shift swapped"),
    ("time_conditioned_block", _block(last_axis=True), "last axis"),
    ("time_conditioned_block", _block(raw_t=True), "raw time t"),
    ("ema_update", _ema(lambda d: 1 - d, lambda d: d), "swapped"),
    ("ema_update", lambda ema, params, decay: params, "params were returned"),
    ("ema_update", lambda ema, params, decay: ema, "did not move"),
    ("ema_update", _ema(lambda d: d, lambda d: 1.0), "1 - decay is missing"),
    ("ema_update", _ema(lambda d: d, lambda d: 1 - d, filtered=False), "not arrays"),
    ("final_denoise", _final("x"), "last noisy iterate"),
    ("final_denoise", _final("no_alpha"), "1 / alpha"),
    ("final_denoise", _final("sign"), "sign"),
    ("final_denoise", _final("std"), "std instead of std^2"),
    ("upsample_nearest", lambda x: jnp.tile(x, (1, 2, 2)), "jnp.tile"),
    ("ddim_step", lambda x, x0, a_s, s_s, a_t, s_t: a_t * x0 + s_s * (x - a_s * x0) / s_s, "std_t, not std_s"),
    ("ddim_step", lambda x, x0, a_s, s_s, a_t, s_t: a_t * x0 + s_t * (x - x0) / s_s, "(x - alpha_s * x0)"),
    ("tweedie_denoise", lambda x, score, a, s: (x + s * score) / a, "std**2"),
    ("tweedie_denoise", lambda x, score, a, s: x + s**2 * score, "divide by alpha"),
]


def _verdict(check, fn):
    return verdict(check, fn)


def _rate(results):
    missed = [(n, w, v) for n, w, v, _ in results if v != "fail"]
    unnamed = [(n, w, text) for n, w, v, text in results if v == "fail" and w not in text]
    return missed, unnamed


def test_galaxy_checks_catch_and_name_typical_mistakes():
    results = [(name, words, *_verdict(getattr(G, name), fn)) for name, fn, words in CASES]
    missed, unnamed = _rate(results)
    assert not missed, f"mistakes that pass or look unattempted: {missed}"
    named = len(results) - len(unnamed)
    print(f"\nastro galaxies: {len(results)} typical mistakes, all caught; {named} named ({named / len(results):.0%})")
    assert not unnamed, "hints that do not name the mistake:\n" + "\n".join(f"{n} [{w}]: {t}" for n, w, t in unnamed)

