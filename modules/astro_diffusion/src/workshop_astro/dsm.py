"""Denoising score matching: learn the score of the noised data from (data, noise) pairs.

For ``x(t) = alpha(t) x0 + std(t) eps`` the conditional score is
``grad log p(x(t) | x0) = -eps / std(t)``, and regressing a model on it recovers the
marginal score ``grad log p_t`` (Vincent 2011). The loss

    ``E_t E_x0 E_eps [ lambda(t) * mean_i (s(x(t), t) + eps / std(t))_i^2 ]``

is averaged over the dimensions of one sample, so it does not grow with image size.

Weightings ``lambda(t)``:

* ``"sigma2"``: ``std(t)^2``, which makes every time equally hard
  (``|std s + eps|^2``, a noise-prediction error); the usual choice for training;
* ``"likelihood"``: ``g(t)^2``, under which the loss bounds the negative log-likelihood
  (Song et al. 2021, "Maximum likelihood training of score-based diffusion models").

Model convention: ``model(x, t) -> score`` takes ONE unbatched sample ``x`` (any shape)
and a scalar ``t``; the loss ``vmap``s it. An ``eqx.Module`` or a plain function both work.

Times are drawn with low discrepancy: ``"stratified"`` puts one time in each of
``batch`` equal slices of ``[t_eps, T]`` (one shared uniform offset, shifted), which
lowers the variance of the loss estimate at no cost; ``"antithetic"`` pairs ``t`` with
``T + t_eps - t``; ``"uniform"`` is plain i.i.d.

Example::

    >>> loss = dsm_loss(model, VPSDE(), x0_batch, jax.random.key(0))
    >>> grads = eqx.filter_grad(dsm_loss)(model, VPSDE(), x0_batch, key)
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from . import guards
from .sde import SDE

__all__ = ["sample_times", "dsm_loss", "dsm_loss_at"]


def sample_times(key: PRNGKeyArray, n: int, t_eps: float, T: float, method: str = "stratified") -> Float[Array, " n"]:
    """``n`` times in ``[t_eps, T]``: ``"stratified"``, ``"antithetic"`` or ``"uniform"``."""
    n = guards.count("n", n)
    guards.time_window(t_eps, T, zero=True)
    if method == "stratified":
        u = (jax.random.uniform(key, ()) + jnp.arange(n) / n) % 1.0
    elif method == "antithetic":
        half = jax.random.uniform(key, ((n + 1) // 2,))
        u = jnp.concatenate([half, 1.0 - half])[:n]
    elif method == "uniform":
        u = jax.random.uniform(key, (n,))
    else:
        raise ValueError(f"unknown time sampling {method!r}; choose 'stratified', 'antithetic' or 'uniform'")
    return t_eps + (T - t_eps) * u


def _weight(sde: SDE, t: Array, std: Array, weighting: str) -> Array:
    if weighting == "sigma2":
        return std**2
    if weighting == "likelihood":
        return sde.diffusion(t) ** 2
    raise ValueError(f"unknown weighting {weighting!r}; choose 'sigma2' or 'likelihood'")


def dsm_loss_at(
    model: Callable[[Array, Array], Array],
    sde: SDE,
    x0: Float[Array, "batch ..."],
    t: Float[Array, " batch"],
    eps: Float[Array, "batch ..."],
    weighting: str = "sigma2",
) -> Float[Array, ""]:
    """The DSM loss for given times ``t`` and noises ``eps`` (no randomness inside).

    Arguments:
        model: ``model(x, t) -> score`` for ONE sample.
        sde: the forward SDE.
        x0: a batch of clean data.
        t: one time per sample.
        eps: standard normal noise of the shape of ``x0``.
        weighting: ``"sigma2"`` or ``"likelihood"``.

    Returns:
        The batch mean of ``lambda(t) * mean_i (s + eps / std)_i^2``.
    """
    expand = (slice(None),) + (None,) * (x0.ndim - 1)
    alpha, std = jax.vmap(sde.marginal_mean_coeff)(t), jax.vmap(sde.marginal_std)(t)
    xt = alpha[expand] * x0 + std[expand] * eps
    score = jax.vmap(model)(xt, t)
    per_sample = jnp.mean(((score + eps / std[expand]) ** 2).reshape(x0.shape[0], -1), axis=1)
    return jnp.mean(_weight(sde, t, std, weighting) * per_sample)


def dsm_loss(
    model: Callable[[Array, Array], Array],
    sde: SDE,
    x0_batch: Float[Array, "batch ..."],
    key: PRNGKeyArray,
    weighting: str = "sigma2",
    t_eps: float = 1e-3,
    time_sampling: str = "stratified",
) -> Float[Array, ""]:
    """Denoising score matching loss on a batch, with fresh times and noise from ``key``.

    Arguments:
        model: ``model(x, t) -> score`` for ONE unbatched sample (see the module docstring).
        sde: the forward SDE.
        x0_batch: clean data, shape ``(batch, ...)``.
        key: randomness for the times and the noise.
        weighting: ``"sigma2"`` (default) or ``"likelihood"``.
        t_eps: the smallest time (the target ``eps / std`` blows up at ``t = 0``).
        time_sampling: ``"stratified"`` (default), ``"antithetic"`` or ``"uniform"``.

    Returns:
        The scalar loss; differentiate it with ``eqx.filter_grad``.
    """
    guards.float_array("x0_batch", x0_batch, layout="(batch, ...)")
    if jnp.ndim(x0_batch) < 2 or not jnp.shape(x0_batch)[0]:
        raise ValueError(f"x0_batch must be a batch (batch, ...) of at least one sample, got shape "
                         f"{jnp.shape(x0_batch)}")
    kt, ke = jax.random.split(key)
    t = sample_times(kt, x0_batch.shape[0], t_eps, sde.T, time_sampling)
    eps = jax.random.normal(ke, x0_batch.shape)
    return dsm_loss_at(model, sde, x0_batch, t, eps, weighting)
