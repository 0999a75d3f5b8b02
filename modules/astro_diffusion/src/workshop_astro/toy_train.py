"""Training a score model on 2-D toy data with Optax: jitted, scanned steps and an EMA.

Each step draws a fresh batch from the data sampler, so the toy never overfits; the steps
run in chunks under one ``jax.lax.scan`` to keep Python out of the loop. The exponential
moving average (EMA) of the weights is what samples best.

Example::

    >>> from workshop_astro.toy import GaussianMixture
    >>> gm = GaussianMixture.default()
    >>> result = train_toy(lambda k, n: gm.sample(k, n), VPSDE(), jax.random.key(0), n_steps=2000)
    >>> score_fn = result.ema_model        # model(x, t) -> score
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, PRNGKeyArray

from .dsm import dsm_loss
from .score_mlp import ScoreMLP
from .sde import SDE

__all__ = ["TrainResult", "make_train_chunk", "train_toy"]


class TrainResult(NamedTuple):
    """What :func:`train_toy` returns: the final and the EMA model, and one loss per step."""

    model: ScoreMLP
    ema_model: ScoreMLP
    losses: Array


def make_train_chunk(
    sample_fn: Callable[[PRNGKeyArray, int], Array],
    sde: SDE,
    optimizer: optax.GradientTransformation,
    batch_size: int,
    chunk: int,
    ema_decay: float,
    weighting: str = "sigma2",
):
    """A jitted function running ``chunk`` training steps.

    Returns:
        ``step(params, static, opt_state, ema, key) -> (params, opt_state, ema, losses)``
        where ``params``/``static`` are the two halves of ``eqx.partition(model, eqx.is_array)``.
    """

    def loss_fn(params, static, key):
        kx, kl = jax.random.split(key)
        model = eqx.combine(params, static)
        return dsm_loss(model, sde, sample_fn(kx, batch_size), kl, weighting=weighting)

    @eqx.filter_jit
    def run(params, static, opt_state, ema, key):
        def one(carry, k):
            params, opt_state, ema = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, static, k)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            ema = jax.tree.map(lambda e, p: ema_decay * e + (1 - ema_decay) * p, ema, params)
            return (params, opt_state, ema), loss

        (params, opt_state, ema), losses = jax.lax.scan(one, (params, opt_state, ema), jax.random.split(key, chunk))
        return params, opt_state, ema, losses

    return run


def train_toy(
    sample_fn: Callable[[PRNGKeyArray, int], Array],
    sde: SDE,
    key: PRNGKeyArray,
    n_steps: int = 3000,
    batch_size: int = 512,
    learning_rate: float = 2e-3,
    ema_decay: float = 0.995,
    chunk: int = 250,
    model: ScoreMLP | None = None,
    weighting: str = "sigma2",
    on_chunk: Callable[[int, Array], None] | None = None,
) -> TrainResult:
    """Train a :class:`ScoreMLP` by denoising score matching (Adam, cosine-decayed step).

    Arguments:
        sample_fn: ``sample_fn(key, n) -> (n, dim)`` fresh data.
        sde: the forward SDE.
        key: randomness for the initialisation and the training.
        n_steps: training steps (rounded up to whole chunks).
        batch_size: data points per step.
        learning_rate: peak Adam step size.
        ema_decay: decay of the weights' moving average.
        chunk: steps per jitted call.
        model: a model to start from (a fresh ``ScoreMLP`` when ``None``).
        weighting: DSM weighting (see :func:`workshop_astro.dsm.dsm_loss`).
        on_chunk: called after each chunk with ``(steps done, that chunk's losses)``;
            for progress bars at the edges (demos), never printing here.

    Returns:
        A :class:`TrainResult`.
    """
    k_init, k_train = jax.random.split(key)
    if model is None:
        dim = sample_fn(k_init, 1).shape[-1]
        model = ScoreMLP(sde, dim, key=k_init)
    n_chunks = max(1, -(-n_steps // chunk))
    schedule = optax.cosine_decay_schedule(learning_rate, n_chunks * chunk, alpha=0.05)
    optimizer = optax.adam(schedule)
    params, static = eqx.partition(model, eqx.is_array)
    opt_state = optimizer.init(params)
    ema = params
    run = make_train_chunk(sample_fn, sde, optimizer, batch_size, chunk, ema_decay, weighting)
    losses = []
    for i, k in enumerate(jax.random.split(k_train, n_chunks)):
        params, opt_state, ema, chunk_losses = run(params, static, opt_state, ema, k)
        losses.append(chunk_losses)
        if on_chunk is not None:
            on_chunk((i + 1) * chunk, chunk_losses)
    return TrainResult(eqx.combine(params, static), eqx.combine(ema, static), jnp.concatenate(losses))
