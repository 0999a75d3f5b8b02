"""Checks for the toy lessons (01-06).

Each check runs the participant's function on many inputs (random points, times near 0
and T, several shapes, under ``jit`` where the lesson asks for it) against the reference
in this package. When an answer is wrong, it is also compared with the typical mistakes
(``beta(t)`` instead of its integral, a missing square root, the wrong sign of the
reverse drift, ...) so that the hint names the mistake actually made.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable

import numpy as np

from workshop.checking import CheckFailed, assert_close, assert_shape, call, expect

__all__ = [
    "vp_marginal",
    "perturb",
    "em_step",
    "gaussian_score",
    "dsm_loss",
    "reverse_sde_drift",
    "probability_flow_drift",
    "probability_flow_solve",
    "sliced_wasserstein",
    "divergence",
    "hutchinson_divergence",
]

TIMES = (1e-4, 1e-3, 0.05, 0.3, 0.5, 0.99, 1.0)


def _close(a: Any, b: Any, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    try:
        import jax

        la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
        if len(la) != len(lb):
            return False
        return all(np.shape(x) == np.shape(y) and np.allclose(np.asarray(x, float), np.asarray(y, float), rtol=rtol, atol=atol)
                   for x, y in zip(la, lb))
    except (TypeError, ValueError):
        return False


def _compare(got: Any, expected: Any, mistakes: Callable[[], Iterable[tuple[Any, str]]] | None, *, what: str,
             hint: str, rtol: float = 1e-4, atol: float = 1e-5, near: tuple[float, str] | None = None) -> None:
    """Pass if ``got`` matches ``expected``; else fail with the hint of the first mistake it matches.

    ``mistakes()`` lists ``(wrong answer, hint)`` pairs; it is called only when ``got`` is wrong.
    A wrong answer may be a function of no arguments (a costly one, computed only when the
    mistakes before it did not match); one that cannot be computed explains nothing. With
    ``near=(dist, near_hint)``, an answer no mistake explains but within ``dist`` of ``expected``
    everywhere fails with ``near_hint`` (right idea, too inaccurate).
    """
    if _close(got, expected, rtol, atol):
        return
    for wrong, mistake_hint in (mistakes() if mistakes is not None else ()):
        if callable(wrong):
            try:
                wrong = wrong()
            except Exception:
                continue
        if wrong is not None and _close(got, wrong, rtol, atol):
            assert_close(got, expected, what=what, hint=mistake_hint, rtol=rtol, atol=atol)
    if near is not None and _close(got, expected, 0.0, near[0]):
        assert_close(got, expected, what=what, hint=near[1], rtol=rtol, atol=atol)
    assert_close(got, expected, what=what, hint=hint, rtol=rtol, atol=atol)


def _fast_call(candidate: Callable, *args: Any, what: str, static: tuple[int, ...] = (),
               hints: dict[str, str] | None = None) -> Any:
    """Call the candidate compiled with ``jax.jit`` (one compilation instead of one per
    operation, which makes checks fast); if it cannot be jitted, call it eagerly through
    :func:`workshop.checking.call`, which turns its errors into messages."""
    import jax

    try:
        out = jax.jit(candidate, static_argnums=static)(*args)
    except Exception:
        return call(candidate, *args, what=what, hints=hints)
    return call(lambda *a: out, what=what)


def _jit_hint() -> str:
    return ("it must also work under jax.jit: use jnp functions (not math or numpy) and no Python "
            "'if' on array values")


def _under_jit(candidate: Callable, *args: Any, what: str, static: tuple[int, ...] = ()) -> Any:
    import jax

    try:
        return jax.jit(candidate, static_argnums=static)(*args)
    except CheckFailed:
        raise
    except Exception as exc:  # their code failed only under tracing
        first = (str(exc).strip().splitlines() or [""])[0]
        raise CheckFailed(f"under jax.jit with {what} your function raised {type(exc).__name__}: {first[:200]}",
                          hint=_jit_hint()) from None


# --- lesson 01 ------------------------------------------------------------------------------


def vp_marginal(candidate: Callable) -> str:
    """``vp_marginal(x0, t, beta_min, beta_max) -> (mean, std)`` under the VP SDE (T = 1).

    Tests the mean ``exp(-B(t) / 2) x0`` and the scalar std ``sqrt(1 - exp(-B(t)))`` on three
    shapes, times from 1e-4 to 1 (where ``beta(t) t`` and the integral ``B(t)`` part) and two
    schedules (so that ignoring ``beta_min``/``beta_max`` shows), then under ``jit`` and ``vmap``.
    Recognised mistakes: ``beta(t) t`` or ``beta(t)`` for ``B(t)``, the missing 1/2 of the mean or
    of the integral, the variance for the std, the default schedule, ``(std, mean)`` swapped.
    """
    import jax
    import jax.numpy as jnp

    from ..sde import VPSDE

    rng = np.random.default_rng(0)
    n = 0
    for shape in ((2,), (5, 2), (3, 4, 4)):
        for t in TIMES:
            for bmin, bmax in ((0.1, 20.0), (0.5, 5.0)):
                sde = VPSDE(bmin, bmax)
                x0 = jnp.asarray(rng.normal(size=shape), jnp.float32)
                what = f"x0 of shape {shape}, t={t}, beta_min={bmin}, beta_max={bmax}"
                got = _fast_call(candidate, x0, t, bmin, bmax, what=what, static=(2, 3))
                expect(isinstance(got, (tuple, list)) and len(got) == 2,
                       f"with {what} your function should return a pair (mean, std)",
                       hint="end with: return mean, std")
                mean, std = got
                expect(not (np.shape(mean) == () and np.shape(std) == shape),
                       f"with {what} the first output is a scalar and the second has the shape of x0",
                       hint="the outputs are swapped (std, mean): return mean, std in that order")
                assert_shape(jnp.asarray(mean), shape, what=f"the mean with {what}",
                             hint="the mean is alpha(t) * x0: it has the shape of x0")
                e_mean, e_std = sde.marginal(x0, t)
                B0, beta0 = sde.integrated_beta(t), sde.beta(t)
                B, beta_t = B0, beta0
                B_default = VPSDE().integrated_beta(t)
                default_hint = ("use the beta_min and beta_max passed in, not the defaults 0.1 and 20 "
                                "(the check also tries another schedule)")
                _compare(mean, e_mean, lambda: [
                    (jnp.exp(-B_default / 2) * x0, default_hint),
                    (jnp.exp(-beta_t * t / 2) * x0, "the mean uses the integral B(t) = beta_min t + (beta_max - beta_min) t^2 / 2, not beta(t) * t"),
                    (jnp.exp(-beta_t / 2) * x0, "the mean uses the integral B(t) of beta, not beta(t) itself"),
                    (jnp.exp(-B) * x0, "the mean coefficient is exp(-B(t) / 2): do not forget the 1/2"),
                    (jnp.exp(-0.5 * (bmin * t + (bmax - bmin) * t**2)) * x0,
                     "the integral of beta_min + (beta_max - beta_min) s is beta_min t + (beta_max - beta_min) t^2 / 2"),
                ], what=f"the mean with {what}", hint="mean = exp(-B(t) / 2) * x0 with B(t) = beta_min t + (beta_max - beta_min) t^2 / 2")
                std_arr = jnp.asarray(std)
                expect(std_arr.shape in ((), shape), f"with {what} the std has shape {std_arr.shape}",
                       hint="the std is one number for all coordinates (a scalar)")
                e_std = jnp.broadcast_to(e_std, std_arr.shape)
                B, beta_t = jnp.broadcast_to(B, std_arr.shape), jnp.broadcast_to(beta_t, std_arr.shape)
                _compare(std_arr, e_std, lambda: [
                    (jnp.broadcast_to(jnp.sqrt(1 - jnp.exp(-B_default)), std_arr.shape), default_hint),
                    (1 - jnp.exp(-B), "that is the variance: take the square root for the std"),
                    (jnp.sqrt(1 - jnp.exp(-beta_t * t)), "the std uses the integral B(t), not beta(t) * t"),
                    (jnp.sqrt(1 - jnp.exp(-0.5 * B)), "the variance is 1 - exp(-B(t)), without a 1/2 (that one belongs to the mean)"),
                    (jnp.exp(-B / 2), "that is the mean coefficient alpha(t); the std is sqrt(1 - alpha(t)^2)"),
                ], what=f"the std with {what}", hint="std = sqrt(1 - exp(-B(t))); the std is one number, the same for every coordinate",
                   atol=1e-5 if t > 1e-3 else 2e-5)
                n += 1
    x0 = jnp.ones((4, 2))
    got = _under_jit(candidate, x0, 0.3, 0.1, 20.0, what="t=0.3", static=(2, 3))
    _compare(got, VPSDE().marginal(x0, 0.3), None, what="the jitted result", hint=_jit_hint())
    try:
        stds = jax.vmap(lambda t: jnp.asarray(candidate(jnp.ones(2), t, 0.1, 20.0)[1]).reshape(-1)[0])(jnp.array([0.1, 0.5]))
    except Exception as exc:
        raise CheckFailed(f"under jax.vmap over t your function raised {type(exc).__name__}", hint=_jit_hint()) from None
    assert_close(stds, jax.vmap(VPSDE().marginal_std)(jnp.array([0.1, 0.5])), what="the std under jax.vmap over t",
                 hint="write it with jnp operations so that t may be a traced array")
    return f"mean and std right on {n} inputs (3 shapes, t from 1e-4 to 1, two beta schedules), under jit and vmap"


def perturb(candidate: Callable) -> str:
    """``perturb(sde, x0, t, eps) -> x_t``: ``x0`` of shape (B, ...), ``t`` of shape (B,).

    Tests ``alpha(t) x0 + std(t) eps`` with a different time for every sample, for the VP and VE
    SDEs (where ``sqrt(1 - alpha^2)`` is not the std), on square (B, B) batches (where a
    ``(B,)``-shaped ``t`` broadcasts silently along the wrong axis), 2-D points and images.
    Recognised mistakes: the wrong broadcasting axis, the variance for the std, an unscaled x0,
    alpha and std swapped, the VP formula for the std, one time for the whole batch.
    """
    import jax.numpy as jnp

    from ..sde import VESDE, VPSDE

    rng = np.random.default_rng(1)
    n = 0
    for sde in (VPSDE(), VESDE()):
        for shape in ((2, 2), (7, 2), (3, 1, 4, 4)):
            b = shape[0]
            x0 = jnp.asarray(rng.normal(size=shape), jnp.float32)
            eps = jnp.asarray(rng.normal(size=shape), jnp.float32)
            t = jnp.asarray(rng.uniform(1e-3, 1.0, size=b), jnp.float32)
            what = f"{type(sde).__name__}, x0 of shape {shape}, t of shape ({b},)"
            got = call(candidate, sde, x0, t, eps, what=what)
            assert_shape(got, shape, what=f"x_t with {what}",
                         hint="alpha(t) and std(t) have shape (B,): reshape them to (B, 1, ...) before multiplying")
            expand = (slice(None),) + (None,) * (len(shape) - 1)
            alpha, std = sde.marginal_mean_coeff(t)[expand], sde.marginal_std(t)[expand]
            _compare(got, alpha * x0 + std * eps, lambda: [
                (alpha * x0 + std**2 * eps, "multiply the noise by the std, not the variance"),
                (x0 + std * eps, "the mean is alpha(t) * x0, not x0"),
                (alpha * (x0 + std * eps), "only x0 is scaled by alpha(t); the noise is scaled by std(t)"),
                (std * x0 + alpha * eps, "alpha(t) and std(t) are swapped: alpha(t) multiplies x0, std(t) multiplies eps"),
                (alpha * x0 + jnp.sqrt(jnp.clip(1 - alpha**2, 0.0)) * eps,
                 "sqrt(1 - alpha^2) is the std of the VP SDE only: use sde.marginal_std(t), which also holds for the VE SDE"),
                (alpha[:1] * x0 + std[:1] * eps, "every sample uses its own time t[i]: not t[0] for the whole batch"),
            ], what=f"x_t with {what}",
                hint="x_t = alpha(t) * x0 + std(t) * eps, with sde.marginal_mean_coeff(t) and sde.marginal_std(t) "
                     "reshaped to (B, 1, ...); a (2,)-shaped t against a (2, 2) x0 broadcasts along the wrong axis",
                rtol=1e-4, atol=1e-4)
            n += 1
    return f"x_t right for {n} batches (VP and VE, per-sample times, 2-D points and images)"


# --- lesson 02 ------------------------------------------------------------------------------


def em_step(candidate: Callable) -> str:
    """``em_step(sde, x, t, dt, z) -> x_next``: one Euler–Maruyama step with standard normal ``z``.

    Tests ``x + f(x, t) dt + g(t) sqrt(dt) z`` for the VP and VE SDEs at three times and two steps
    (two values of dt separate ``dt`` from ``sqrt(dt)``). Recognised mistakes: ``dt`` or nothing
    for ``sqrt(dt)``, ``g^2`` for ``g``, the drift not multiplied by ``dt`` or subtracted, the
    noise not multiplied by ``g(t)``.
    """
    import jax.numpy as jnp

    from ..sde import VESDE, VPSDE

    rng = np.random.default_rng(2)
    n = 0
    for sde in (VPSDE(), VESDE()):
        for t in (0.0, 0.2, 0.7):
            for dt in (1e-3, 0.01):
                x = jnp.asarray(rng.normal(size=(6, 2)), jnp.float32)
                z = jnp.asarray(rng.normal(size=(6, 2)), jnp.float32)
                what = f"{type(sde).__name__}, t={t}, dt={dt}"
                got = call(candidate, sde, x, t, dt, z, what=what)
                f, g = sde.drift(x, t), sde.diffusion(t)
                _compare(got, x + f * dt + g * jnp.sqrt(dt) * z, lambda: [
                    (x + f * dt + g * dt * z, "the noise increment dW has std sqrt(dt), not dt: use g(t) * sqrt(dt) * z"),
                    (x + f * dt + g * z, "scale the noise by sqrt(dt): dW ~ N(0, dt)"),
                    (x + f * dt + g**2 * jnp.sqrt(dt) * z, "sde.diffusion(t) is g(t) already, do not square it"),
                    (x + f + g * jnp.sqrt(dt) * z, "multiply the drift by dt"),
                    (x - f * dt + g * jnp.sqrt(dt) * z, "the forward step adds the drift: x + f(x, t) dt (the minus "
                                                        "sign belongs to the reverse-time drift)"),
                    (x + f * dt + jnp.sqrt(dt) * z, "multiply the noise by g(t) = sde.diffusion(t)"),
                ], what=f"x_next with {what}", hint="x_next = x + f(x, t) dt + g(t) sqrt(dt) z", rtol=1e-4, atol=1e-5)
                n += 1
    return f"Euler–Maruyama step right on {n} inputs (VP and VE)"


# --- lesson 03 ------------------------------------------------------------------------------


def gaussian_score(candidate: Callable) -> str:
    """``gaussian_score(x, mean, std) -> grad_x log N(x; mean, std^2 I)``.

    Tests ``-(x - mean) / std^2`` on three shapes with a non-zero mean and stds 0.01 to 3 (std = 1
    alone would hide a missing division), then against ``jax.grad`` of the log-density.
    Recognised mistakes: the sign, the std or 2 std^2 for std^2, no division, the mean forgotten,
    a sum over the coordinates.
    """
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(3)
    n = 0
    for shape in ((2,), (5, 2), (3, 8, 8)):
        for std in (0.01, 0.5, 1.0, 3.0):
            x = jnp.asarray(rng.normal(size=shape), jnp.float32)
            mean = jnp.asarray(rng.normal(size=shape), jnp.float32)
            what = f"x of shape {shape}, std={std}"
            got = call(candidate, x, mean, std, what=what)
            assert_shape(jnp.asarray(got), shape, what=f"the score with {what}",
                         hint="the score has the shape of x (one component per coordinate): do not sum over them")
            _compare(got, -(x - mean) / std**2, lambda: [
                ((x - mean) / std**2, "the score points towards the mean: -(x - mean) / std^2"),
                (-(x - mean) / std, "divide by the variance std^2, not the std"),
                (-(x - mean), "do not forget to divide by std^2"),
                (-(x - mean) / (2 * std**2), "the 1/2 of the log-density cancels the 2 from differentiating the square: "
                                             "-(x - mean) / std^2"),
                (-x / std**2, "subtract the mean: -(x - mean) / std^2"),
            ], what=f"the score with {what}", hint="grad log N(x; m, s^2 I) = -(x - m) / s^2", rtol=1e-4, atol=1e-4)
            n += 1
    # compare with autodiff of the log-density, as the lesson does
    x = jnp.array([0.3, -1.2])
    auto = jax.grad(lambda y: -0.5 * jnp.sum((y - 1.0) ** 2) / 0.25)(x)
    assert_close(call(candidate, x, jnp.ones(2), 0.5, what="x=[0.3, -1.2], mean=1, std=0.5"), auto,
                 what="the score against jax.grad of the log-density", hint="-(x - mean) / std^2", rtol=1e-4)
    return f"score right on {n + 1} inputs, including against jax.grad"


@functools.lru_cache(maxsize=None)
def _dsm_cases():
    """The DSM check's models and inputs with their reference losses, computed once per process."""
    import jax
    import jax.numpy as jnp

    from ..dsm import dsm_loss_at
    from ..sde import VPSDE
    from ..toy import GaussianMixture

    rng = np.random.default_rng(4)
    sde, gm = VPSDE(), GaussianMixture.default()
    models = {
        "the exact mixture score": lambda x, t: gm.score(x, t, sde),
        "a linear model": lambda x, t: -x * (1.0 + t),
        "a zero model": lambda x, t: jnp.zeros_like(x),
    }
    cases = []
    for name, b in [("the exact mixture score", 16), ("a linear model", 2), ("a zero model", 16)]:
        x0 = gm.sample(jax.random.key(b), b)
        eps = jnp.asarray(rng.normal(size=x0.shape), jnp.float32)
        t = jnp.asarray(rng.uniform(1e-3, 1.0, size=b), jnp.float32)
        cases.append((name, models[name], b, x0, t, eps, dsm_loss_at(models[name], sde, x0, t, eps)))
    return sde, tuple(cases)


def dsm_loss(candidate: Callable) -> str:
    """``dsm_loss(model, sde, x0, t, eps) -> scalar``: sigma^2-weighted DSM, mean over dimensions and batch.

    Tests the loss for three models (the exact score, a time-dependent linear model, zero) with a
    time per sample; the exact score separates the sign of the target, which a zero model hides.
    Recognised mistakes: the target's sign, ``-eps`` for ``-eps / std``, no or ``std`` weighting,
    a sum over the dimensions, the model at ``x0`` or at ``x0 + std eps``.
    """
    import jax
    import jax.numpy as jnp

    sde, cases = _dsm_cases()
    n = 0
    for name, model, b, x0, t, eps, expected in cases:
        what = f"{name}, a batch of {b}"
        # called as it is (not under jit): the models are cheap, and the operations compiled for one
        # answer serve the next, and the reference and the typical mistakes
        got = call(candidate, model, sde, x0, t, eps, what=what)
        expect(np.size(got) == 1, f"with {what} the loss should be one number, got shape {np.shape(got)}",
               hint="average over the dimensions and over the batch: jnp.mean(...)")
        got = jnp.reshape(jnp.asarray(got), ())

        def mistakes(model=model, x0=x0, t=t, eps=eps):
            std = sde.marginal_std(t)[:, None]
            xt = sde.marginal_mean_coeff(t)[:, None] * x0 + std * eps
            s = jax.vmap(model)(xt, t)
            return [
                (jnp.mean(std**2 * (s - eps / std) ** 2), "the target score is -eps / std: check the sign"),
                (jnp.mean((s + eps / std) ** 2), "weight each term by std(t)^2 (the 'sigma2' weighting), or the small times dominate"),
                (jnp.mean(std**2 * (s + eps) ** 2), "the target score is -eps / std, not -eps"),
                (jnp.mean(std * (s + eps / std) ** 2), "the weight is std(t)^2, not std(t)"),
                (jnp.mean(jnp.sum(std**2 * (s + eps / std) ** 2, axis=-1)), "take the mean over the dimensions too, not the sum"),
                (jnp.mean((std * jax.vmap(model)(x0, t) + eps) ** 2), "evaluate the model at the noised x_t = alpha x0 + std eps, not at x0"),
                (lambda: jnp.mean(std**2 * (jax.vmap(model)(x0 + std * eps, t) + eps / std) ** 2),
                 "x_t = alpha(t) x0 + std(t) eps: the mean is scaled by alpha(t)"),
            ]

        _compare(got, expected, mistakes, what=f"the loss with {what}",
            hint="loss = mean of std(t)^2 * (model(x_t, t) + eps / std(t))^2 with x_t = alpha(t) x0 + std(t) eps",
            rtol=1e-3, atol=1e-5)
        n += 1
    return f"loss right for {n} (model, batch) pairs, including the exact score"


# --- lesson 04 ------------------------------------------------------------------------------


def _drift_check(candidate: Callable, factor: float, name: str) -> int:
    import jax.numpy as jnp

    from ..sde import VESDE, VPSDE
    from ..toy import GaussianMixture

    gm = GaussianMixture.default()
    rng = np.random.default_rng(5)
    n = 0
    for sde in (VPSDE(), VESDE(sigma_max=10.0)):
        score_fn = lambda x, t, sde=sde: gm.score(x, t, sde)
        for t in (1e-3, 0.1, 0.5, 1.0):
            x = jnp.asarray(rng.normal(size=(2,)), jnp.float32)
            if t >= 0.5:  # far from the data, where the score is large and every factor shows
                x = 4.0 * x
            what = f"{type(sde).__name__}, x={np.round(np.asarray(x), 3).tolist()}, t={t}"
            got = call(candidate, sde, score_fn, x, t, what=what)
            f, g2, s = sde.drift(x, t), sde.diffusion(t) ** 2, score_fn(x, t)
            other = 0.5 if factor == 1.0 else 1.0
            _compare(got, f - factor * g2 * s, lambda: [
                (f + factor * g2 * s, "the score term enters with a minus sign: f - " + ("" if factor == 1 else "1/2 ") + "g^2 score "
                                      "(integrating from T down to 0 turns it into a pull towards the data)"),
                (-f + factor * g2 * s, "this is the drift in reversed time s = T - t; write it in t: f - " + ("" if factor == 1 else "1/2 ") + "g^2 score"),
                (f - other * g2 * s, "the reverse SDE has g^2 score, the probability-flow ODE has g^2 score / 2"
                                     f"; this is the {name}"),
                (f - factor * jnp.sqrt(g2) * s, "sde.diffusion(t) is g(t): square it"),
                (-factor * g2 * s, "the forward drift f(x, t) is missing: f - " + ("" if factor == 1 else "1/2 ") + "g^2 score"),
                (f, "the score term is missing: f - " + ("" if factor == 1 else "1/2 ") + "g^2 score"),
            ], what=f"the {name} with {what}", hint=f"{name} = f(x, t) - {'' if factor == 1 else '0.5 * '}g(t)^2 * score(x, t)",
                rtol=1e-4, atol=1e-4)
            n += 1
    return n


def reverse_sde_drift(candidate: Callable) -> str:
    """``reverse_sde_drift(sde, score_fn, x, t) -> f(x, t) - g(t)^2 score(x, t)``.

    Tests the drift for the VP SDE (whose own drift is not zero) and the VE SDE at four times, on
    points near and far from the data. Recognised mistakes: the sign of the score term, the
    reversed-time drift, the ODE's 1/2, ``g`` for ``g^2``, a missing ``f`` or score term.
    """
    return f"reverse drift right on {_drift_check(candidate, 1.0, 'reverse-SDE drift')} inputs (VP and VE)"


def probability_flow_drift(candidate: Callable) -> str:
    """``probability_flow_drift(sde, score_fn, x, t) -> f(x, t) - g(t)^2 score(x, t) / 2``.

    Tests the velocity on the same inputs as :func:`reverse_sde_drift`. Recognised mistakes: the
    sign of the score term, the reversed-time velocity, the SDE's full ``g^2`` (no 1/2), ``g`` for
    ``g^2``, a missing ``f`` or score term.
    """
    return f"ODE velocity right on {_drift_check(candidate, 0.5, 'probability-flow velocity')} inputs (VP and VE)"


# --- lesson 05 ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _flow_solver():
    """One compiled accurate solve of ``dx/dt = f - factor g^2 score`` from ``T`` down to ``t1``, for the
    reference and the wrong answers alike (``t1`` and ``factor`` are traced: one compilation for all)."""
    import diffrax
    import equinox as eqx

    @eqx.filter_jit
    def solve(sde, gm, x_T, t1, factor):
        def velocity(t, y, args):
            return sde.drift(y, t) - factor * sde.diffusion(t) ** 2 * gm.score(y, t, sde)

        sol = diffrax.diffeqsolve(diffrax.ODETerm(velocity), diffrax.Tsit5(), t0=sde.T, t1=t1, dt0=None, y0=x_T,
                                  stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-6), max_steps=4096)
        return sol.ys[-1]

    return solve


@functools.lru_cache(maxsize=None)
def _flow_case():
    """The ODE check's SDE, mixture, exact score, batch ``x_T`` and ``t_eps``, once per process (the same
    ``score_fn`` object every time, so that a solver compiled for it is reused)."""
    import jax

    from ..sde import VPSDE
    from ..toy import GaussianMixture

    sde, gm, b = VPSDE(), GaussianMixture.default(), 8
    return sde, gm, (lambda x, t: gm.score(x, t, sde)), jax.random.normal(jax.random.key(b), (b, 2)), 0.1


@functools.lru_cache(maxsize=None)
def _flow_solution(t1: float, factor: float):
    """The ODE check's batch solved accurately with velocity ``f - factor g^2 score`` down to ``t1``."""
    import jax.numpy as jnp

    sde, gm, _, x_T, _ = _flow_case()
    return _flow_solver()(sde, gm, x_T, jnp.asarray(t1, jnp.float32), jnp.asarray(factor, jnp.float32))


def probability_flow_solve(candidate: Callable) -> str:
    """``probability_flow_solve(sde, score_fn, x_T, t_eps) -> x`` at ``t_eps`` for a batch ``x_T``.

    Tests the state at ``t_eps`` against an accurate reference solve (tolerance 1e-2) for a batch
    of 8 points and ``t_eps = 0.1``, late enough that stopping at 0 instead shows. Recognised
    mistakes: ``x_T`` returned, ``sol.ys`` instead of ``sol.ys[-1]``, the wrong sign of the score
    term, the reverse-SDE drift (no 1/2) as velocity, ``t1=0`` instead of ``t_eps``, a solve too
    coarse (a fixed step or loose tolerances).
    """
    sde, _, score_fn, x_T, t_eps = _flow_case()
    ref = _flow_solution(t_eps, 0.5)
    n = 0
    for b in (x_T.shape[0],):
        what = f"a batch x_T of shape ({b}, 2), t_eps={t_eps}"
        got = call(candidate, sde, score_fn, x_T, t_eps, what=what)
        assert_shape(got, (b, 2), what=f"the samples with {what}",
                     hint="return sol.ys[-1] (the state at t_eps), reshaped to the batch's shape")
        hint = ("diffeqsolve(ODETerm(velocity), Tsit5(), t0=sde.T, t1=t_eps, dt0=None, y0=x_T, "
                "stepsize_controller=PIDController(rtol=1e-5, atol=1e-5)) with velocity(t, y, args) = "
                "vmap of the probability-flow drift over the batch")
        mistakes = lambda: [
            (x_T, "you returned x_T: integrate from t0=sde.T to t1=t_eps and return the solution's last state"),
            (lambda: _flow_solution(0.0, 0.5), "the solve stops at 0: integrate to t1=t_eps, "
                                                                 "where the score is still smooth"),
            (lambda: _flow_solution(t_eps, 1.0),
             "the velocity is the probability-flow drift f - g^2 score / 2, not the reverse-SDE drift f - g^2 score"),
            (lambda: _flow_solution(t_eps, -0.5),
             "the velocity is f - g^2 score / 2 (minus sign on the score)"),
        ]
        _compare(got, ref, mistakes, what=f"the samples with {what}", hint=hint, rtol=1e-2, atol=1e-2,
                 near=(0.5, "close to the reference, but not accurate enough: the solve is too coarse (a fixed step "
                            "or loose tolerances); " + hint))
        n += 1
    return "ODE samples match an accurate reference solve (8 points, t_eps = 0.1)"


def sliced_wasserstein(candidate: Callable) -> str:
    """``sliced_wasserstein(x, y, directions) -> scalar``: directions are (d, P) unit columns; equal sizes.

    Tests the distance on two pairs of clouds of different spread and centre (in 2-D and 5-D,
    with P != d so that a transposed ``directions`` fails), a cloud against a shuffled copy (0)
    and a shifted copy. Recognised mistakes: no sorting, sorting along the directions, no square
    root, the square root per direction, absolute instead of squared differences, a sum instead
    of a mean, no projection.
    """
    import jax
    import jax.numpy as jnp

    @jax.jit
    def ref(x, y, dirs):
        return jnp.sqrt(jnp.mean((jnp.sort(x @ dirs, axis=0) - jnp.sort(y @ dirs, axis=0)) ** 2))

    n = 0
    for d, m, p in ((2, 300, 64), (5, 40, 16)):
        rng = np.random.default_rng(d * m + p)
        x = jnp.asarray(rng.normal(size=(m, d)), jnp.float32)
        y = jnp.asarray(0.5 * rng.normal(size=(m, d)) + 1.0, jnp.float32)
        dirs = jnp.asarray(rng.normal(size=(d, p)), jnp.float32)
        dirs = dirs / jnp.linalg.norm(dirs, axis=0, keepdims=True)
        what = f"{m} points in {d}-D, {p} directions"
        got = _fast_call(candidate, x, y, dirs, what=what, hints={
            "contracting dimension": f"directions has shape (d, P) = ({d}, {p}): project with x @ directions "
                                     "(not directions.T), giving (n, P)"})
        expect(np.size(got) == 1, f"with {what} the distance should be one number, got shape {np.shape(got)}",
               hint="average over the points and the directions")
        got = jnp.reshape(jnp.asarray(got), ())
        px, py = x @ dirs, y @ dirs
        _compare(got, ref(x, y, dirs), lambda: [
            (jnp.sqrt(jnp.mean((px - py) ** 2)), "sort the projections of each cloud before comparing them (1-D optimal transport matches quantiles)"),
            (jnp.mean((jnp.sort(px, 0) - jnp.sort(py, 0)) ** 2), "take the square root at the end (the 2-Wasserstein distance)"),
            (jnp.sqrt(jnp.mean((jnp.sort(px, 1) - jnp.sort(py, 1)) ** 2)), "sort along the points (axis 0), not along the directions"),
            (jnp.mean(jnp.sqrt(jnp.mean((jnp.sort(px, 0) - jnp.sort(py, 0)) ** 2, axis=0))),
             "take one square root of the mean over the points and over the directions too, not one per direction"),
            (jnp.mean(jnp.abs(jnp.sort(px, 0) - jnp.sort(py, 0))),
             "square the differences (the 2-Wasserstein distance), not their absolute values"),
            (jnp.sqrt(jnp.sum((jnp.sort(px, 0) - jnp.sort(py, 0)) ** 2)), "average the squared differences, not the sum"),
            (jnp.sqrt(jnp.mean((jnp.sort(x, 0) - jnp.sort(y, 0)) ** 2)), "project the clouds first: x @ directions"),
        ], what=f"the distance with {what}", hint="project: x @ directions; sort each column; sqrt of the mean squared difference",
            rtol=1e-4, atol=1e-5)
        n += 1
    x = jnp.asarray(np.random.default_rng(8).normal(size=(30, 2)), jnp.float32)
    dirs = jnp.eye(2)
    assert_close(jnp.reshape(jnp.asarray(call(candidate, x, x[::-1], dirs, what="a cloud and itself shuffled")), ()), 0.0,
                 what="the distance between a cloud and a shuffled copy", hint="sort each projection first", atol=1e-5)
    assert_close(jnp.reshape(jnp.asarray(call(candidate, x, x + jnp.array([3.0, 0.0]), dirs, what="a shifted cloud")), ()),
                 3.0 / np.sqrt(2), what="a cloud shifted by (3, 0), on the two axes",
                 hint="a shift by 3 along x moves the first projection by 3 and the second by 0", rtol=1e-4)
    return f"distance right on {n + 2} cases, including a shuffled copy (0) and a shift"


# --- lesson 06 ------------------------------------------------------------------------------


def _fields():
    import jax.numpy as jnp

    A = jnp.array([[0.5, -2.0, 0.1], [1.0, -0.3, 0.0], [0.2, 0.4, 1.7]])
    return {
        "a linear map A x": (lambda x: A[: x.size, : x.size] @ x),
        "x * sin(x)": (lambda x: x * jnp.sin(x)),
        "a rotation plus a contraction": (lambda x: jnp.concatenate([-x[1:2] - 0.5 * x[:1], x[:1] - 0.5 * x[1:2], -x[2:]])),
        "tanh of a coupled map": (lambda x: jnp.tanh(x + jnp.roll(x, 1) ** 2)),
    }


# a non-linear field with a non-symmetric Jacobian first (a linear map hides where the Jacobian is
# taken; a diagonal Jacobian hides the difference between its trace and the sum of its entries)
_FIELD_CASES = [("tanh of a coupled map", 3), ("a linear map A x", 2), ("a linear map A x", 3), ("x * sin(x)", 2),
                ("a rotation plus a contraction", 3)]


def divergence(candidate: Callable) -> str:
    """``divergence(fn, x) -> sum_i d fn_i / d x_i`` exactly, for ``x`` of shape (d,).

    Tests the trace of the Jacobian on five fields in 2-D and 3-D, non-linear and linear, with
    non-symmetric, non-diagonal Jacobians. Recognised mistakes: the sum of every entry (or the
    gradient of ``sum(fn)``), the determinant or log-determinant, ``sum(fn(x))``, the diagonal
    not summed.
    """
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(6)
    n = 0
    for name, d in _FIELD_CASES:
        fn = _fields()[name]
        x = jnp.asarray(rng.normal(size=(d,)), jnp.float32)
        what = f"{name} at a point in {d}-D"
        got = call(candidate, fn, x, what=what)
        J = jax.jacfwd(fn)(x)
        expect(not _close(got, jnp.diagonal(J)), f"with {what} you returned the diagonal of the Jacobian",
               hint="sum it: the divergence is its trace, jnp.trace(J)")
        expect(np.size(got) == 1, f"with {what} the divergence should be one number, got shape {np.shape(got)}",
               hint="the divergence is the trace of the Jacobian, a scalar")
        _compare(jnp.reshape(jnp.asarray(got), ()), jnp.trace(J), lambda: [
            (jnp.sum(J), "sum only the diagonal of the Jacobian (its trace), not every entry (grad of sum(fn) "
                         "sums every entry too)"),
            (jnp.linalg.det(J), "that is the determinant of the Jacobian: the divergence is its trace"),
            (jnp.linalg.slogdet(J)[1], "that is log |det J|, the log-determinant of the Jacobian: the divergence is "
                                       "its trace"),
            (jnp.sum(fn(x)), "differentiate fn: the divergence is the trace of its Jacobian, not the sum of fn(x)"),
        ], what=f"the divergence of {what}", hint="jnp.trace(jax.jacfwd(fn)(x))", rtol=1e-4, atol=1e-5)
        n += 1
    return f"divergence right on {n} fields and points"


def hutchinson_divergence(candidate: Callable) -> str:
    """``hutchinson_divergence(fn, x, z) -> z . (J z)`` with the Jacobian ``J`` of ``fn`` at ``x``.

    Tests the one-probe estimate on five fields, with probes of mixed signs (an all-ones probe
    hides a missing product with z), a non-linear field first (a linear map hides where the
    Jacobian is taken), then that the mean over all 8 sign probes is the trace. Recognised
    mistakes: ``sum(J z)``, ``z . fn(x)``, the exact trace, ``|J z|^2``, primals and tangents
    swapped in ``jax.jvp``, the Jacobian taken at z, ``z * J z`` not summed.
    """
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(7)
    n = 0
    for name, d in _FIELD_CASES:
        fn = _fields()[name]
        x = jnp.asarray(rng.normal(size=(d,)), jnp.float32)
        signs = rng.choice([-1.0, 1.0], size=(d,))
        signs[1] = -signs[0]  # mixed signs: with z = (1, ..., 1), z . (J z) is the sum of every entry of J
        z = jnp.asarray(signs, jnp.float32)
        what = f"{name} in {d}-D, z={np.asarray(z).tolist()}"
        got = call(candidate, fn, x, z, what=what)
        expect(np.size(got) == 1, f"with {what} the estimate should be one number, got shape {np.shape(got)}",
               hint="z . (J z) is a scalar: sum the products, jnp.sum(z * Jz)")
        J = jax.jacfwd(fn)(x)
        _compare(jnp.reshape(jnp.asarray(got), ()), z @ J @ z, lambda: [
            (jnp.sum(J @ z), "multiply J z by z before summing: z . (J z)"),
            (jnp.sum(z * fn(x)), "use the Jacobian-vector product J z (jax.jvp), not fn(x) itself"),
            (jnp.trace(J), "this is the exact divergence; the exercise asks for the one-probe estimate z . (J z)"),
            (jnp.sum((J @ z) ** 2), "z . (J z), not |J z|^2"),
            (lambda: z @ jax.jvp(fn, (z,), (x,))[1], "in jax.jvp(fn, (x,), (z,)) the primals (x,) come first: "
                                                     "primals and tangents are swapped"),
            (lambda: z @ jax.jvp(fn, (z,), (z,))[1], "take the Jacobian at x: jax.jvp(fn, (x,), (z,))"),
        ], what=f"the estimate for {what}", hint="_, Jz = jax.jvp(fn, (x,), (z,)); return jnp.sum(z * Jz)",
            rtol=1e-4, atol=1e-5)
        n += 1
    # unbiased: the mean over all 2^d Rademacher probes is the trace
    fn = _fields()["tanh of a coupled map"]
    x = jnp.array([0.3, -0.7, 1.1])
    probes = jnp.array([[a, b, c] for a in (-1.0, 1.0) for b in (-1.0, 1.0) for c in (-1.0, 1.0)])
    est = jnp.mean(jnp.stack([jnp.reshape(jnp.asarray(call(candidate, fn, x, z, what="all 8 sign probes")), ()) for z in probes]))
    assert_close(est, jnp.trace(jax.jacfwd(fn)(x)), what="the average over all Rademacher probes",
                 hint="averaged over all sign vectors z, z . (J z) must equal the trace of J", rtol=1e-4, atol=1e-5)
    return f"estimate right on {n} inputs and unbiased over all probes"
