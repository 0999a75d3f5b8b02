"""Typical wrong answers to the toy exercises (lessons 01-06): each is caught, and the hint names it.

Every case is a learner's plausible mistake, several of which would pass a check whose
inputs cannot tell them from the right answer (the default schedule only, one time for the
whole batch where all times are equal, the VP SDE only, a linear field where the point of the
Jacobian does not matter, an all-ones probe, a ``t_eps`` so small that stopping at 0 is within
tolerance); ``named`` is the words the message or hint must contain for the mistake to count
as recognised. The rate of named mistakes is printed (``-s``) and must stay at or above 90 %
(this catalogue is at 100 %).
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from workshop.checking import verdict

from workshop_astro.checks import toy as C


def _B(t, bmin, bmax):
    return bmin * t + 0.5 * (bmax - bmin) * t**2


def _marginal(mean_of, std_of):
    def vp_marginal(x0, t, beta_min=0.1, beta_max=20.0):
        return mean_of(x0, t, beta_min, beta_max), std_of(t, beta_min, beta_max)
    return vp_marginal


_MEAN = lambda x0, t, lo, hi: jnp.exp(-0.5 * _B(t, lo, hi)) * x0
_STD = lambda t, lo, hi: jnp.sqrt(1.0 - jnp.exp(-_B(t, lo, hi)))


def _perturb(combine):
    def perturb(sde, x0, t, eps):
        e = (slice(None),) + (None,) * (x0.ndim - 1)
        return combine(sde.marginal_mean_coeff(t)[e], sde.marginal_std(t)[e], x0, eps)
    return perturb


def _em(step):
    def em_step(sde, x, t, dt, z):
        return step(x, sde.drift(x, t), sde.diffusion(t), dt, z)
    return em_step


def _dsm(loss):
    def dsm_loss(model, sde, x0, t, eps):
        std = sde.marginal_std(t)[:, None]
        xt = sde.marginal_mean_coeff(t)[:, None] * x0 + std * eps
        return loss(jax.vmap(model)(xt, t), std, eps)
    return dsm_loss


def _dsm_at(make_xt):
    def dsm_loss(model, sde, x0, t, eps):
        std = sde.marginal_std(t)[:, None]
        return jnp.mean(std**2 * (jax.vmap(model)(make_xt(sde, x0, t, std, eps), t) + eps / std) ** 2)
    return dsm_loss


def _drift(combine):
    def drift(sde, score_fn, x, t):
        return combine(sde.drift(x, t), sde.diffusion(t), score_fn(x, t))
    return drift


@eqx.filter_jit
def _flow(sde, score_fn, x_T, t1, factor):
    def velocity(t, y, args):
        return sde.drift(y, t) - factor * sde.diffusion(t) ** 2 * score_fn(y, t)

    return diffrax.diffeqsolve(diffrax.ODETerm(velocity), diffrax.Tsit5(), t0=sde.T, t1=t1, dt0=None, y0=x_T,
                               stepsize_controller=diffrax.PIDController(rtol=1e-5, atol=1e-5)).ys


def _solve(factor=0.5, stop=lambda t_eps: t_eps, out=lambda ys: ys[-1]):
    # the wrong solves share one compiled solver (factor and t1 are traced), which keeps this file fast
    def probability_flow_solve(sde, score_fn, x_T, t_eps):
        return out(_flow(sde, score_fn, x_T, jnp.asarray(stop(t_eps), jnp.float32), jnp.asarray(factor, jnp.float32)))
    return probability_flow_solve


def _coarse_solve(sde, score_fn, x_T, t_eps):
    velocity = diffrax.ODETerm(lambda t, y, args: sde.drift(y, t) - 0.5 * sde.diffusion(t) ** 2 * score_fn(y, t))
    return diffrax.diffeqsolve(velocity, diffrax.Euler(), t0=sde.T, t1=t_eps, dt0=-0.1, y0=x_T).ys[-1]


def _sw(reduce, project=lambda x, d: x @ d, axis=0):
    def sliced_wasserstein(x, y, directions):
        px, py = project(x, directions), project(y, directions)
        return reduce(jnp.sort(px, axis=axis) - jnp.sort(py, axis=axis))
    return sliced_wasserstein


def _div(of_jacobian):
    def divergence(fn, x):
        return of_jacobian(jax.jacfwd(fn)(x))
    return divergence


CASES = [
    # (check, the wrong answer, words that name the mistake)
    ("vp_marginal", _marginal(lambda x0, t, lo, hi: jnp.exp(-0.5 * (lo + (hi - lo) * t) * t) * x0,
                              lambda t, lo, hi: jnp.sqrt(1 - jnp.exp(-(lo + (hi - lo) * t) * t))), "not beta(t) * t"),
    ("vp_marginal", _marginal(_MEAN, lambda t, lo, hi: 1 - jnp.exp(-_B(t, lo, hi))), "square root"),
    ("vp_marginal", _marginal(lambda x0, t, lo, hi: jnp.exp(-_B(t, lo, hi)) * x0, _STD), "forget the 1/2"),
    ("vp_marginal", _marginal(_MEAN, lambda t, lo, hi: jnp.sqrt(1 - jnp.exp(-0.5 * _B(t, lo, hi)))), "without a 1/2"),
    ("vp_marginal", _marginal(lambda x0, t, lo, hi: _MEAN(x0, t, 0.1, 20.0), lambda t, lo, hi: _STD(t, 0.1, 20.0)),
     "beta_min and beta_max passed in"),
    ("vp_marginal", lambda x0, t, beta_min=0.1, beta_max=20.0: (_STD(t, beta_min, beta_max),
                                                                  _MEAN(x0, t, beta_min, beta_max)), "return mean, std"),
    ("perturb", lambda sde, x0, t, eps: sde.marginal_mean_coeff(t) * x0 + sde.marginal_std(t) * eps, "wrong axis"),
    ("perturb", _perturb(lambda a, s, x0, eps: a * x0 + s**2 * eps), "not the variance"),
    ("perturb", _perturb(lambda a, s, x0, eps: x0 + s * eps), "not x0"),
    ("perturb", _perturb(lambda a, s, x0, eps: s * x0 + a * eps), "swapped"),
    ("perturb", _perturb(lambda a, s, x0, eps: a * x0 + jnp.sqrt(1 - a**2) * eps), "sde.marginal_std"),
    ("perturb", lambda sde, x0, t, eps: _perturb(lambda a, s, x0, eps: a * x0 + s * eps)(sde, x0, jnp.full_like(t, t[0]),
                                                                                          eps), "its own time"),
    ("em_step", _em(lambda x, f, g, dt, z: x + f * dt + g * dt * z), "sqrt(dt)"),
    ("em_step", _em(lambda x, f, g, dt, z: x + f * dt + g * z), "scale the noise by sqrt(dt)"),
    ("em_step", _em(lambda x, f, g, dt, z: x + f * dt + g**2 * jnp.sqrt(dt) * z), "do not square it"),
    ("em_step", _em(lambda x, f, g, dt, z: x + f + g * jnp.sqrt(dt) * z), "multiply the drift by dt"),
    ("em_step", _em(lambda x, f, g, dt, z: x - f * dt + g * jnp.sqrt(dt) * z), "adds the drift"),
    ("em_step", _em(lambda x, f, g, dt, z: x + f * dt + jnp.sqrt(dt) * z), "multiply the noise by g(t)"),
    ("gaussian_score", lambda x, m, s: (x - m) / s**2, "towards the mean"),
    ("gaussian_score", lambda x, m, s: -(x - m) / s, "not the std"),
    ("gaussian_score", lambda x, m, s: -(x - m), "divide by std^2"),
    ("gaussian_score", lambda x, m, s: -(x - m) / (2 * s**2), "cancels"),
    ("gaussian_score", lambda x, m, s: -x / s**2, "subtract the mean"),
    ("gaussian_score", lambda x, m, s: -jnp.sum(x - m) / s**2, "shape of x"),
    ("dsm_loss", _dsm(lambda s, std, eps: jnp.mean(std**2 * (s - eps / std) ** 2)), "check the sign"),
    ("dsm_loss", _dsm(lambda s, std, eps: jnp.mean((s + eps / std) ** 2)), "weight each term"),
    ("dsm_loss", _dsm(lambda s, std, eps: jnp.mean(std**2 * (s + eps) ** 2)), "not -eps"),
    ("dsm_loss", _dsm(lambda s, std, eps: jnp.mean(std * (s + eps / std) ** 2)), "not std(t)"),
    ("dsm_loss", _dsm(lambda s, std, eps: jnp.mean(jnp.sum(std**2 * (s + eps / std) ** 2, -1))), "not the sum"),
    ("dsm_loss", _dsm_at(lambda sde, x0, t, std, eps: x0), "not at x0"),
    ("dsm_loss", _dsm_at(lambda sde, x0, t, std, eps: x0 + std * eps), "scaled by alpha"),
    ("reverse_sde_drift", _drift(lambda f, g, s: f + g**2 * s), "minus sign"),
    ("reverse_sde_drift", _drift(lambda f, g, s: -f + g**2 * s), "reversed time"),
    ("reverse_sde_drift", _drift(lambda f, g, s: f - 0.5 * g**2 * s), "g^2 score / 2"),
    ("reverse_sde_drift", _drift(lambda f, g, s: f - g * s), "square it"),
    ("reverse_sde_drift", _drift(lambda f, g, s: -g**2 * s), "forward drift f(x, t) is missing"),
    ("probability_flow_drift", _drift(lambda f, g, s: f + 0.5 * g**2 * s), "minus sign"),
    ("probability_flow_drift", _drift(lambda f, g, s: f - g**2 * s), "g^2 score / 2"),
    ("probability_flow_drift", _drift(lambda f, g, s: f - 0.5 * g * s), "square it"),
    ("probability_flow_drift", _drift(lambda f, g, s: f), "score term is missing"),
    ("probability_flow_solve", lambda sde, s, x_T, t_eps: x_T, "you returned x_T"),
    ("probability_flow_solve", _solve(out=lambda ys: ys), "sol.ys[-1]"),
    ("probability_flow_solve", _solve(factor=1.0), "reverse-SDE drift"),
    ("probability_flow_solve", _solve(factor=-0.5), "minus sign on the score"),
    ("probability_flow_solve", _solve(stop=lambda t_eps: 0.0), "t1=t_eps"),
    ("probability_flow_solve", _coarse_solve, "not accurate enough"),
    ("sliced_wasserstein", _sw(lambda d: jnp.sqrt(jnp.mean(d**2)), project=lambda x, d: x @ d, axis=None), "sort"),
    ("sliced_wasserstein", _sw(lambda d: jnp.mean(d**2)), "square root at the end"),
    ("sliced_wasserstein", _sw(lambda d: jnp.sqrt(jnp.mean(d**2)), axis=1), "along the points"),
    ("sliced_wasserstein", _sw(lambda d: jnp.mean(jnp.sqrt(jnp.mean(d**2, axis=0)))), "over the directions too"),
    ("sliced_wasserstein", _sw(lambda d: jnp.mean(jnp.abs(d))), "square the differences"),
    ("sliced_wasserstein", _sw(lambda d: jnp.sqrt(jnp.sum(d**2))), "not the sum"),
    ("sliced_wasserstein", _sw(lambda d: jnp.sqrt(jnp.mean(d**2)), project=lambda x, d: x), "project"),
    ("sliced_wasserstein", _sw(lambda d: jnp.sqrt(jnp.mean(d**2)), project=lambda x, d: x @ d.T), "not directions.T"),
    ("divergence", _div(jnp.sum), "not every entry"),
    ("divergence", _div(jnp.linalg.det), "determinant"),
    ("divergence", _div(lambda J: jnp.linalg.slogdet(J)[1]), "determinant"),
    ("divergence", lambda fn, x: jnp.sum(fn(x)), "differentiate fn"),
    ("divergence", _div(jnp.diagonal), "sum it"),
    ("hutchinson_divergence", lambda fn, x, z: jnp.sum(jax.jvp(fn, (x,), (z,))[1]), "multiply J z by z"),
    ("hutchinson_divergence", lambda fn, x, z: jnp.sum(z * fn(x)), "not fn(x) itself"),
    ("hutchinson_divergence", lambda fn, x, z: jnp.trace(jax.jacfwd(fn)(x)), "exact divergence"),
    ("hutchinson_divergence", lambda fn, x, z: jnp.sum(jax.jvp(fn, (x,), (z,))[1] ** 2), "not |J z|^2"),
    ("hutchinson_divergence", lambda fn, x, z: jnp.sum(z * jax.jvp(fn, (z,), (x,))[1]), "swapped"),
    ("hutchinson_divergence", lambda fn, x, z: jnp.sum(z * jax.jvp(fn, (z,), (z,))[1]), "at x"),
    ("hutchinson_divergence", lambda fn, x, z: z * jax.jvp(fn, (x,), (z,))[1], "sum"),
]


def _verdict(name, fn):
    return verdict(getattr(C, name), fn)


def test_astro_toy_checks_catch_and_name_typical_mistakes():
    results = [(name, words, *_verdict(name, fn)) for name, fn, words in CASES]
    missed = [(n, w, v) for n, w, v, _ in results if v != "fail"]
    unnamed = [(n, w, text) for n, w, v, text in results if v == "fail" and w not in text]
    named = len(results) - len(missed) - len(unnamed)
    rate = named / len(results)
    print(f"\nastro toy: {len(results)} typical mistakes, {len(results) - len(missed)} caught, {named} named ({rate:.0%})")
    assert not missed, f"mistakes that pass or look unattempted: {missed}"
    assert rate >= 0.9, "hints that do not name the mistake:\n" + "\n".join(f"{n} [{w}]: {t}" for n, w, t in unnamed)
    assert not unnamed, "hints that do not name the mistake:\n" + "\n".join(f"{n} [{w}]: {t}" for n, w, t in unnamed)

