"""Reverse processes: from noise back to data with any score function, solved with Diffrax.

Given the forward SDE ``dx = f(x, t) dt + g(t) dW`` and the score ``s(x, t) = grad log p_t(x)``
(Anderson 1982; Song et al. 2021):

* the **reverse-time SDE** ``dx = [f(x, t) - g(t)^2 s(x, t)] dt + g(t) dW_bar`` (``t`` running
  from ``T`` down to 0) has the same marginals ``p_t`` as the forward process;
* the **probability-flow ODE** ``dx/dt = f(x, t) - g(t)^2 s(x, t) / 2`` has them too, and is
  deterministic: one noise draw maps to one sample, and its likelihood is exact
  (see :mod:`workshop_astro.likelihood`).

Score convention: ``score_fn(x, t)`` takes ONE unbatched sample ``x`` (any shape, e.g.
``(2,)`` or ``(C, H, W)``) and a scalar ``t``, and returns the score with the shape of
``x``. The samplers ``vmap`` it over the batch; ``shape = (batch, *sample_shape)``.

Both samplers return ``(samples, nfe)``: ``nfe`` is the number of evaluations of the
(batched) score, the cost that matters. With ``save_ts`` they return
``(samples, nfe, trajectory)``, ``trajectory`` of shape ``(len(save_ts), *shape)``.

Example::

    >>> from workshop_astro.sde import VPSDE
    >>> from workshop_astro.toy import GaussianMixture
    >>> sde, gm = VPSDE(), GaussianMixture.default()
    >>> score = lambda x, t: gm.score(x, t, sde)
    >>> x, nfe = probability_flow_sample(sde, score, jax.random.key(0), (500, 2))
"""

from __future__ import annotations

from typing import Callable

import diffrax
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from . import guards
from .sde import SDE

__all__ = [
    "ScoreFn",
    "reverse_sde_drift",
    "probability_flow_drift",
    "reverse_sde_sample",
    "probability_flow_sample",
    "tsit5_nfe",
]

ScoreFn = Callable[[Array, Array], Array]
"""``score_fn(x, t) -> score``: one unbatched sample ``x`` and a scalar time ``t``."""


def _batched(score_fn: ScoreFn) -> Callable[[Array, Array], Array]:
    return jax.vmap(score_fn, in_axes=(0, None))


def reverse_sde_drift(sde: SDE, score_fn: ScoreFn, x: Array, t: ArrayLike) -> Array:
    """``f(x, t) - g(t)^2 s(x, t)``: the drift of the reverse-time SDE (in ``dt``, ``t`` decreasing).

    ``x`` is ONE sample; ``vmap`` for a batch.
    """
    return sde.drift(x, t) - sde.diffusion(t) ** 2 * score_fn(x, t)


def probability_flow_drift(sde: SDE, score_fn: ScoreFn, x: Array, t: ArrayLike) -> Array:
    """``f(x, t) - g(t)^2 s(x, t) / 2``: the velocity of the probability-flow ODE.

    ``x`` is ONE sample; ``vmap`` for a batch.
    """
    return sde.drift(x, t) - 0.5 * sde.diffusion(t) ** 2 * score_fn(x, t)


def reverse_sde_sample(
    sde: SDE,
    score_fn: ScoreFn,
    key: PRNGKeyArray,
    shape: tuple[int, ...],
    n_steps: int = 500,
    t_eps: float = 1e-3,
    *,
    x_init: Float[Array, "batch ..."] | None = None,
    save_ts: Float[ArrayLike, " n"] | None = None,
    solver: diffrax.AbstractSolver | None = None,
):
    """Sample by integrating the reverse-time SDE from ``T`` to ``t_eps`` with fixed steps.

    The reverse SDE is written in the reversed time ``s = T - t``, which runs forward:
    ``dx = [g^2 s(x, t) - f(x, t)] ds + g(t) dW_s``; Euler–Maruyama (``diffrax.Euler``)
    on that is the classic ancestral-style sampler. The noise is a
    :class:`diffrax.UnsafeBrownianPath` (exact increments, valid for fixed steps).

    Arguments:
        sde: the forward SDE.
        score_fn: ``score_fn(x, t)`` for ONE sample (see the module docstring).
        key: randomness for the starting noise and the Brownian path.
        shape: ``(batch, *sample_shape)``.
        n_steps: number of fixed steps (= score evaluations for Euler).
        t_eps: where to stop (the score is singular at ``t = 0``).
        x_init: the starting points at ``t = T``; drawn from the prior when ``None``.
        save_ts: decreasing times in ``[t_eps, T]`` at which to also return the state.
        solver: a fixed-step SDE solver (default ``diffrax.Euler()``, Euler–Maruyama).

    Returns:
        ``(samples, nfe)`` or, with ``save_ts``, ``(samples, nfe, trajectory)``.
    """
    n_steps = guards.count("n_steps", n_steps)
    guards.time_window(t_eps, sde.T)
    solver = diffrax.Euler() if solver is None else solver
    _evals_per_step(solver)  # an unknown solver is refused before any work
    key_init, key_bm = jax.random.split(key)
    x_T = _start(sde, score_fn, key_init, shape, x_init)
    shape = x_T.shape
    T = sde.T
    score = _batched(score_fn)

    def drift(s, y, args):
        t = T - s
        x = y.reshape(shape)
        return (sde.diffusion(t) ** 2 * score(x, t) - sde.drift(x, t)).ravel()

    def noise(s, y, args):
        return lx.DiagonalLinearOperator(sde.diffusion(T - s) * jnp.ones_like(y))

    y0 = x_T.ravel()
    s1 = T - t_eps
    brownian = diffrax.UnsafeBrownianPath(shape=y0.shape, key=key_bm)
    terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(noise, brownian))
    saveat = diffrax.SaveAt(t1=True) if save_ts is None else diffrax.SaveAt(t1=True, ts=T - jnp.asarray(save_ts))
    sol = diffrax.diffeqsolve(
        terms, solver, t0=0.0, t1=s1, dt0=s1 / n_steps, y0=y0, saveat=saveat, max_steps=n_steps + 1,
        adjoint=diffrax.ForwardMode(),  # UnsafeBrownianPath: no reverse-mode through the solve
    )
    samples = sol.ys[-1].reshape(shape)
    nfe = jnp.asarray(sol.stats["num_steps"]) * _evals_per_step(solver)
    if save_ts is None:
        return samples, nfe
    return samples, nfe, sol.ys[:-1].reshape((-1, *shape))


def _start(sde: SDE, score_fn: ScoreFn, key, shape, x_init) -> Array:
    """The starting points at ``T``: ``x_init`` (checked) or a prior draw of ``shape`` (checked)."""
    if x_init is None:
        shape = guards.sample_shape("shape", shape)
    else:
        guards.float_array("x_init", x_init, layout="(batch, *sample_shape)")
        if jnp.ndim(x_init) < 1 or not jnp.shape(x_init)[0]:
            raise ValueError(f"x_init must be (batch, *sample_shape) with at least one sample, got shape "
                             f"{jnp.shape(x_init)}")
        shape = tuple(jnp.shape(x_init))
    guards.fits_unet(score_fn, shape[1:])
    return sde.prior_sample(key, shape) if x_init is None else jnp.asarray(x_init)


def _evals_per_step(solver: diffrax.AbstractSolver) -> int:
    # Drift evaluations per step of the common fixed-step SDE solvers.
    if isinstance(solver, diffrax.Euler):
        return 1
    if isinstance(solver, (diffrax.Heun, diffrax.Midpoint)):
        return 2
    raise ValueError(f"count the score evaluations per step of {type(solver).__name__} and add it here")


def tsit5_nfe(num_steps: ArrayLike) -> Array:
    """Score evaluations of an adaptive Tsit5 solve with ``num_steps`` steps (accepted + rejected).

    Tsit5 has 7 stages and is FSAL (the last stage of one step is the first of the next),
    so each attempted step costs 6 new evaluations, and the first stage at the start one
    more. Verified against a vector field that counts its calls, in the tests.
    """
    return 6 * jnp.asarray(num_steps) + 1


def probability_flow_sample(
    sde: SDE,
    score_fn: ScoreFn,
    key: PRNGKeyArray,
    shape: tuple[int, ...],
    rtol: float = 1e-3,
    atol: float = 1e-3,
    t_eps: float = 1e-3,
    *,
    x_init: Float[Array, "batch ..."] | None = None,
    save_ts: Float[ArrayLike, " n"] | None = None,
    max_steps: int = 4096,
):
    """Sample by integrating the probability-flow ODE from ``T`` down to ``t_eps``.

    Adaptive Tsit5 with a PID step-size controller; the whole batch is one state, so the
    step sizes are shared and ``nfe`` is one number.

    Arguments:
        sde, score_fn, key, shape, t_eps, x_init, save_ts: as in :func:`reverse_sde_sample`.
        rtol, atol: tolerances of the PID controller.
        max_steps: the most steps before diffrax gives up.

    Returns:
        ``(samples, nfe)`` or, with ``save_ts``, ``(samples, nfe, trajectory)``.
    """
    guards.positive("rtol", rtol), guards.positive("atol", atol)
    max_steps = guards.count("max_steps", max_steps)
    guards.time_window(t_eps, sde.T)
    x_T = _start(sde, score_fn, key, shape, x_init)
    shape = x_T.shape
    score = _batched(score_fn)

    def velocity(t, y, args):
        x = y.reshape(shape)
        return (sde.drift(x, t) - 0.5 * sde.diffusion(t) ** 2 * score(x, t)).ravel()

    saveat = diffrax.SaveAt(t1=True) if save_ts is None else diffrax.SaveAt(t1=True, ts=jnp.asarray(save_ts))
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(velocity),
        diffrax.Tsit5(),
        t0=sde.T,
        t1=t_eps,
        dt0=None,
        y0=x_T.ravel(),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        saveat=saveat,
        max_steps=max_steps,
    )
    samples = sol.ys[-1].reshape(shape)
    nfe = tsit5_nfe(sol.stats["num_steps"])
    if save_ts is None:
        return samples, nfe
    return samples, nfe, sol.ys[:-1].reshape((-1, *shape))
