"""Typical wrong answers to the wrap-up exercises: each is caught, and the hint names the mistake.

Every case is a learner's plausible mistake; ``named`` is the words a message or hint must
contain for the mistake to count as recognised. The rate of named mistakes is printed
(run with ``-s``) and must stay at or above 90 %.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from workshop.checking import verdict

from workshop_wrapup import checks


def _verdict(check, fn):
    return verdict(check, fn)


def _ecosystem_cases():
    import lineax as lx
    import numpyro
    import numpyro.distributions as dist

    from workshop_wrapup.deconvolution import blur_operator, normal_operator
    from workshop_wrapup.fit import residuals, to_physical, to_unconstrained
    from workshop_wrapup.inference import sersic_priors
    from workshop_wrapup.sersic import PARAM_NAMES, SersicParams, observed_model, sersic_image

    def res(mean_fn, scale=lambda s: s):
        def f(u, args):
            image, psf, sigma = args
            return ((mean_fn(u, psf) - image) / scale(sigma)).ravel()
        return f

    def op(fn, tags=(lx.symmetric_tag, lx.positive_semidefinite_tag)):
        def make(psf, lam):
            K = blur_operator(psf)
            return lx.FunctionLinearOperator(lambda x: fn(K, lam, x), jax.ShapeDtypeStruct(psf.shape, psf.dtype),
                                             tags=tags)
        return make

    def model(priors_for=None, scale=lambda s: s, blur=True):
        def m(image, psf, sigma):
            pri = sersic_priors(psf.shape if priors_for is None else (priors_for, priors_for))
            p = SersicParams(*(numpyro.sample(k, pri[k]) for k in PARAM_NAMES))
            mean = observed_model(p, psf) if blur else sersic_image(p, psf.shape)
            numpyro.sample("image", dist.Normal(mean, scale(sigma)).to_event(2), obs=image)
        return m

    def not_observed(image, psf, sigma):
        pri = sersic_priors(psf.shape)
        p = SersicParams(*(numpyro.sample(k, pri[k]) for k in PARAM_NAMES))
        numpyro.sample("image", dist.Normal(observed_model(p, psf), sigma).to_event(2))

    def missing_param(image, psf, sigma):
        pri = sersic_priors(psf.shape)
        p = SersicParams(*(numpyro.sample(k, pri[k]) if k != "n" else 1.0 for k in PARAM_NAMES))
        numpyro.sample("image", dist.Normal(observed_model(p, psf), sigma).to_event(2), obs=image)

    return [
        # (check, the wrong answer, words that name the mistake)
        ("sersic_residuals", res(lambda u, psf: observed_model(to_physical(u), psf), lambda s: 1.0), "not divided"),
        ("sersic_residuals", res(lambda u, psf: observed_model(to_physical(u), psf), lambda s: s**2), "variance"),
        ("sersic_residuals", res(lambda u, psf: sersic_image(to_physical(u), psf.shape)), "PSF"),
        ("sersic_residuals", res(lambda u, psf: observed_model(SersicParams(*u), psf)), "to_physical"),
        # solution.value without to_physical; the free coordinates of the truth stand in for a 10 s fit
        ("fit_galaxy", lambda img, psf, s: to_unconstrained(checks.ecosystem._sersic_args(seed=5).truth), "free (unconstrained)"),
        ("normal_operator", op(lambda K, lam, x: K.mv(K.mv(x)) + lam * x), "transpose is missing"),
        ("normal_operator", op(lambda K, lam, x: K.transpose().mv(K.mv(x))), "lam * x is missing"),
        ("normal_operator", op(lambda K, lam, x: K.mv(x) + lam * x), "K + lam I"),
        ("normal_operator", op(lambda K, lam, x: K.transpose().mv(K.mv(x)) - lam * x), "sign of lam"),
        ("normal_operator", lambda psf, lam: blur_operator(psf), "transpose"),
        ("normal_operator", op(lambda K, lam, x: K.transpose().mv(K.mv(x)) + lam * x, tags=()), "not tagged"),
        ("normal_operator", lambda psf, lam: jnp.abs(jnp.fft.fft2(psf)) ** 2 + lam, "Lineax operator"),
        ("sersic_model", model(scale=lambda s: s**2), "variance"),
        ("sersic_model", model(blur=False), "PSF"),
        ("sersic_model", model(priors_for=48), "priors were made for a 48"),  # the lesson's galaxy at cpu
        ("sersic_model", model(priors_for=24), "priors were made for a 24"),  # ... and at tiny
        ("sersic_model", not_observed, "no observed site"),
        ("sersic_model", missing_param, "not sampled: ['n']"),
    ], [
        ("sersic_residuals", residuals), ("sersic_residuals", lambda u, a: -residuals(u, a)),
        ("normal_operator", normal_operator), ("sersic_model", model()),  # fit_galaxy's: test_wrapup_ecosystem.py
    ]


def _sharding_cases():
    """sum_of_squares mistakes on the devices this process has (one, usually): a pmean or one
    device's part equal the right answer on one device, so they are named by the 8-device
    test in test_wrapup_sharding.py, not here."""
    from jax.sharding import PartitionSpec as P

    from workshop_wrapup import sharding as S

    def smap(local, combine=jax.lax.psum):
        def f(x, mesh):
            return jax.shard_map(lambda b: combine(local(b), "data"), mesh=mesh, in_specs=P("data"), out_specs=P())(x)
        return f

    return [
        ("sum_of_squares", smap(lambda b: jnp.sum(b)), "not of x²"),
        ("sum_of_squares", smap(lambda b: jnp.mean(b**2), jax.lax.pmean), "a mean"),
        ("sum_of_squares", smap(lambda b: jnp.sum(b) ** 2), "squares"),
        ("sum_of_squares", lambda x, m: jnp.sum(x**2), "shard_map"),
    ], [("sum_of_squares", S.sum_of_squares_shard_map)]


def test_wrapup_checks_catch_and_name_typical_mistakes():
    wrong, right = _ecosystem_cases()
    more_wrong, more_right = _sharding_cases()
    for name, fn in right + more_right:
        assert _verdict(getattr(checks, name), fn)[0] == "pass", name
    results = [(name, words, *_verdict(getattr(checks, name), fn)) for name, fn, words in wrong + more_wrong]
    missed = [(n, w) for n, w, v, _ in results if v != "fail"]
    assert not missed, f"mistakes that pass or look unattempted: {missed}"
    unnamed = [(n, w, text) for n, w, _, text in results if w not in text]
    rate = 1 - len(unnamed) / len(results)
    print(f"\nwrapup: {len(results)} typical mistakes, all caught; {len(results) - len(unnamed)} named ({rate:.0%})")
    assert not unnamed, "hints that do not name the mistake:\n" + "\n".join(f"{n} [{w}]: {t}" for n, w, t in unnamed)
