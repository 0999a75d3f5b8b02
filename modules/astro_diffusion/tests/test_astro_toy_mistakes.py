"""Typical wrong answers to the toy exercises (lessons 01-06): each is caught, and the hint names it.

Every case is a learner's plausible mistake, several of which would pass a check whose
inputs cannot tell them from the right answer (a time where beta(t) t is close to its
integral, one time for the whole batch, a field whose Jacobian is diagonal, a single probe,
a shuffled copy whose projections are already sorted); ``named`` is the words the message or
hint must contain for the mistake to count as recognised. The rate of named mistakes is
printed (``-s``) and must stay at or above 90 % (this catalogue is at 100 %).
"""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
from workshop.checking import CheckFailed, NotAttempted

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


def _solve(velocity_factor=0.5, t0=lambda sde, t_eps: sde.T, t1=lambda sde, t_eps: t_eps, out=lambda sol: sol.ys[-1],
           rtol=1e-5, solver=diffrax.Tsit5, dt0=None):
    def probability_flow_solve(sde, score_fn, x_T, t_eps):
        def v(t, y, args):
            return sde.drift(y, t) - velocity_factor * sde.diffusion(t) ** 2 * score_fn(y, t)
        controller = diffrax.PIDController(rtol=rtol, atol=rtol) if dt0 is None else diffrax.ConstantStepSize()
        sol = diffrax.diffeqsolve(diffrax.ODETerm(v), solver(), t0=t0(sde, t_eps), t1=t1(sde, t_eps), dt0=dt0, y0=x_T,
                                  stepsize_controller=controller)
        return out(sol)
    return probability_flow_solve


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
    ("probability_flow_solve", _solve(out=lambda sol: sol.ys), "sol.ys[-1]"),
    ("probability_flow_solve", _solve(velocity_factor=1.0), "reverse-SDE drift"),
    ("probability_flow_solve", _solve(t1=lambda sde, t_eps: 0.0), "t1=t_eps"),
    ("probability_flow_solve", _solve(solver=diffrax.Euler, dt0=-0.1), "not accurate enough"),
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
    try:
        getattr(C, name)(fn)
    except NotAttempted as exc:
        return "not attempted", exc.render()
    except CheckFailed as exc:
        return "fail", exc.render()
    return "pass", ""


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


def test_the_lessons_solutions_still_pass_the_cheap_checks():
    def hutchinson_divergence(fn, x, z):
        _, jz = jax.jvp(fn, (x,), (z,))
        return jnp.sum(z * jz)

    assert C.hutchinson_divergence(hutchinson_divergence)
    assert C.divergence(lambda fn, x: jnp.trace(jax.jacfwd(fn)(x)))
    assert C.gaussian_score(lambda x, m, s: -(x - m) / s**2)
