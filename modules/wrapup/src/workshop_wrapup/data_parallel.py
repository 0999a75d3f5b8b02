"""Data-parallel training: the same training step on one device or on many.

Data parallelism keeps a full copy of the model on every device and splits the batch.
Each device computes the loss gradient on its part; averaging the gradients needs one
all-reduce, which the compiler inserts by itself because the loss is a mean over a
batch that is sharded. The training step below is ordinary single-device code: only
*where the inputs live* changes (:func:`place_for_data_parallel`).

The task is the one a diffusion model trains on: add Gaussian noise of a random level
``σ`` to a galaxy image and predict that noise. :class:`TinyDenoiser` is a small
convolutional net; any Equinox model called as ``model(image, sigma)`` on one
``(C, H, W)`` image trains the same way, the astro module's U-Net included
(:func:`astro_unet`).

Example::

    >>> import jax, optax
    >>> model = TinyDenoiser(channels=1, width=8, key=jax.random.key(0))
    >>> images = galaxy_batch(jax.random.key(1), 8, size=16)
    >>> step = make_train_step(optax.adam(1e-3))
    >>> opt_state = optax.adam(1e-3).init(eqx.filter(model, eqx.is_inexact_array))
    >>> model, opt_state, loss = step(model, opt_state, images, jax.random.key(2))
"""

from __future__ import annotations

import time
from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh
from jaxtyping import Array, Float, PRNGKeyArray

from . import guards
from .sersic import SersicParams, sersic_image
from .sharding import data_mesh, replicate, shard_rows


class TinyDenoiser(eqx.Module):
    """Three 3×3 convolutions that predict the noise in an image, given the noise level.

    Arguments:
        channels: image channels.
        width: hidden feature channels.
        key: PRNG key for the weights.
    """

    layers: tuple[eqx.nn.Conv2d, ...]

    def __init__(self, channels: int = 1, width: int = 16, *, key: PRNGKeyArray):
        k1, k2, k3 = jax.random.split(key, 3)
        # The noise level enters as one extra, constant input channel.
        self.layers = (
            eqx.nn.Conv2d(channels + 1, width, 3, padding=1, key=k1),
            eqx.nn.Conv2d(width, width, 3, padding=1, key=k2),
            eqx.nn.Conv2d(width, channels, 3, padding=1, key=k3),
        )

    def __call__(self, x: Float[Array, "c h w"], sigma: Float[Array, ""]) -> Float[Array, "c h w"]:
        h = jnp.concatenate([x, jnp.full((1, *x.shape[1:]), jnp.log(sigma))], axis=0)
        for layer in self.layers[:-1]:
            h = jax.nn.gelu(layer(h))
        return self.layers[-1](h)


def galaxy_batch(key: PRNGKeyArray, n: int, *, size: int = 32, channels: int = 1) -> Float[Array, "n c h w"]:
    """``n`` random Sérsic galaxies (random size, index, shape, angle and centre), scaled to about [0, 1]."""
    keys = jax.random.split(key, 6)
    c = (size - 1) / 2

    def one(r, n_, e, a, dx, dy):
        img = sersic_image(SersicParams(1.0, r, n_, e, a, c + dx, c + dy), (size, size))
        return img / img.max()

    u = lambda k, lo, hi: jax.random.uniform(k, (n,), minval=lo, maxval=hi)  # noqa: E731
    imgs = jax.vmap(one)(u(keys[0], size / 12, size / 5), u(keys[1], 0.7, 3.0), u(keys[2], 0.0, 0.6),
                         u(keys[3], 0.0, jnp.pi), u(keys[4], -2.0, 2.0), u(keys[5], -2.0, 2.0))
    return jnp.repeat(imgs[:, None], channels, axis=1)


def denoising_loss(model: Callable, images: Float[Array, "b c h w"], key: PRNGKeyArray) -> Float[Array, ""]:
    """Mean squared error of the predicted noise, at a random noise level per image."""
    knoise, ksigma = jax.random.split(key)
    noise = jax.random.normal(knoise, images.shape)
    sigma = jnp.exp(jax.random.uniform(ksigma, (images.shape[0],), minval=jnp.log(0.05), maxval=jnp.log(1.0)))
    noisy = images + sigma[:, None, None, None] * noise
    predicted = jax.vmap(model)(noisy, sigma)
    return jnp.mean((predicted - noise) ** 2)


def make_train_step(optimizer: optax.GradientTransformation, loss_fn: Callable = denoising_loss):
    """A jitted step ``(model, opt_state, images, key) -> (model, opt_state, loss)``.

    Nothing in it mentions devices: run it on a row-sharded batch and a replicated model
    and XLA makes it data parallel.
    """

    @eqx.filter_jit
    def step(model, opt_state, images, key):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, images, key)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    return step


def batch_size(batch) -> int:
    """The leading-axis length shared by every array of a batch (an array or a pytree)."""
    return jax.tree_util.tree_leaves(batch)[0].shape[0]


def place_for_data_parallel(model, opt_state, batch, mesh: Mesh):
    """Replicate the model and optimiser state over ``mesh`` and split the batch (any pytree) over it."""
    if batch_size(batch) % mesh.size:
        raise ValueError(f"the batch of {batch_size(batch)} does not split evenly over {mesh.size} devices")
    params, static = eqx.partition(model, eqx.is_array)
    return eqx.combine(replicate(params, mesh), static), replicate(opt_state, mesh), shard_rows(batch, mesh)


def train(model, batch, *, steps: int, mesh: Mesh | None = None, lr: float = 3e-3, key: PRNGKeyArray,
          loss_fn: Callable = denoising_loss) -> tuple[eqx.Module, list[float], float]:
    """Train ``model`` for ``steps`` steps on one fixed batch, data parallel over ``mesh`` if given.

    Arguments:
        model: an Equinox model.
        batch: an array or pytree of arrays with a common leading (batch) axis.
        steps: optimiser steps.
        mesh: a one-axis ``"data"`` mesh, or ``None`` for plain single-device execution.
        lr: Adam's learning rate.
        key: PRNG key handed to ``loss_fn`` (split once per step).
        loss_fn: ``loss_fn(model, batch, key) -> scalar`` (default :func:`denoising_loss`).

    Returns:
        ``(model, losses, seconds)``; ``seconds`` is the wall time of the steps after the
        first (which includes compilation).
    """
    steps = guards.count("steps", steps)
    guards.positive("lr", lr)
    optimizer = optax.adam(lr)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    if mesh is not None:
        model, opt_state, batch = place_for_data_parallel(model, opt_state, batch, mesh)
    step = make_train_step(optimizer, loss_fn)
    losses, start = [], None
    for i, k in enumerate(jax.random.split(key, steps)):
        model, opt_state, loss = step(model, opt_state, batch, k)
        losses.append(float(loss))  # float() waits for the step to finish
        if i == 0:
            start = time.perf_counter()
    return model, losses, time.perf_counter() - start


def throughput_by_devices(make_model: Callable[[], eqx.Module], batch, device_counts=(1, 2, 4, 8), *,
                          steps: int = 6, key: PRNGKeyArray, loss_fn: Callable = denoising_loss,
                          lr: float = 3e-3) -> list[dict]:
    """Examples per second of the same training run on meshes of each size (same global batch).

    Every run starts from the same weights and sees the same noise, so the losses must
    agree across device counts (up to float rounding in the order of the sums).
    """
    rows = []
    n_examples = batch_size(batch)
    for n in device_counts:
        if n > len(jax.devices()) or n_examples % n:
            continue
        _, losses, seconds = train(make_model(), batch, steps=steps, mesh=data_mesh(n), key=key, loss_fn=loss_fn, lr=lr)
        timed = steps - 1
        rows.append({"devices": n, "images_per_s": n_examples * timed / seconds if timed else float("nan"),
                     "seconds_per_step": seconds / max(timed, 1), "losses": losses})
    return rows


def astro_unet(preset: str, channels: int = 1, *, key: PRNGKeyArray) -> tuple[eqx.Module | None, str]:
    """The astro module's U-Net at ``preset`` size, or ``(None, why)`` when it is not available.

    Optional: the wrap-up module never depends on ``workshop-astro``.
    """
    try:
        import dataclasses

        from workshop_astro.unet import UNet, config_for
    except Exception as exc:  # not installed, or an older version without the U-Net
        return None, f"the astro U-Net is not available ({type(exc).__name__}: {exc}); install workshop-astro to include it"
    try:
        config = dataclasses.replace(config_for(preset), image_channels=channels)
        return UNet(config, key=key), f"workshop_astro.unet.UNet with {config}"
    except Exception as exc:
        return None, f"could not build the astro U-Net ({type(exc).__name__}: {exc})"


class ProteinTask(NamedTuple):
    """The protein module's fine-tuning step, packaged for :func:`throughput_by_devices`."""

    make_model: Callable[[], eqx.Module]
    batch: tuple
    loss_fn: Callable
    description: str
    #: A fine-tuning learning rate. With a large one, Adam's first steps (about lr times the
    #: *sign* of each gradient) turn float-rounding differences in near-zero gradients into
    #: full-size updates, and runs on different device counts drift apart.
    learning_rate: float = 1e-4


def protein_finetune_task(n_sequences: int, *, length: int = 48, key: PRNGKeyArray) -> tuple[ProteinTask | None, str]:
    """The protein module's fine-tune (an ESM2-architecture backbone with a regression head,
    its own loss) on random sequences, or ``(None, why)`` when ``workshop-protein`` is absent.

    The backbone is small and randomly initialised: this measures the data-parallel
    mechanics of that training step, not a useful model.
    """
    try:
        import numpy as np
        from workshop_protein.finetune import Predictor
        from workshop_protein.finetune import loss_fn as protein_loss
        from workshop_protein.models import new_model
        from workshop_protein.tokens import AMINO_ACIDS, batch_tokenize
    except Exception as exc:
        return None, f"the protein fine-tune is not available ({type(exc).__name__}: {exc}); install workshop-protein to include it"
    try:
        rng = np.random.default_rng(0)
        seqs = ["".join(rng.choice(list(AMINO_ACIDS), size=length - 2)) for _ in range(n_sequences)]
        tokens, _ = batch_tokenize(seqs, length=length)
        labels = rng.normal(size=n_sequences).astype(np.float32)
        batch = (jnp.asarray(tokens), jnp.asarray(labels), jnp.ones(n_sequences, jnp.float32))
        kb, kh = jax.random.split(key)

        def make_model():
            return Predictor.init(new_model(2, 64, 4, key=kb), "regression", 1, key=kh, labels=labels)

        def loss(model, batch, key):
            del key  # the fine-tune loss is deterministic
            return protein_loss(model, *batch)

        return ProteinTask(make_model, batch, loss, "workshop_protein.finetune.Predictor on a 2-layer, 64-wide ESM2"), \
            f"workshop_protein.finetune (Predictor + loss_fn) on a random 2-layer ESM2, {n_sequences} sequences of {length} tokens"
    except Exception as exc:
        return None, f"could not build the protein fine-tune ({type(exc).__name__}: {exc})"
