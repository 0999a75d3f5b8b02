"""Checks of the arguments of the module's public functions, and of image arrays.

Each check raises before any JAX work starts, with a message naming the argument, the
value received and what is expected: ``TypeError`` for a value of the wrong kind,
``ValueError`` for one of the right kind outside what the function can use. Values that
are being traced (inside ``jax.jit``) are not checked: their values are not known yet.

Images come in two layouts, and most mistakes are mixing them up:

* **pixels** (files, plots): ``uint8 (N, H, W, 3)``, channels last, 0..255;
* **model units**: ``float32 (N, 3, H, W)``, channels first, in ``[-1, 1]``
  (:func:`workshop_astro.galaxies.to_model` converts).
"""

from __future__ import annotations


import numpy as np
from workshop import guards as _core
from workshop.guards import count, positive
from workshop.guards import shown as _shown

__all__ = ["count", "positive", "time_window", "sample_shape", "float_array", "model_images", "pixel_images",
           "fits_unet"]


def _traced(value) -> bool:
    import jax

    return isinstance(value, jax.core.Tracer)


def time_window(t_eps, T, *, zero: bool = False) -> None:
    """``0 < t_eps < T`` (``0 <= t_eps`` with ``zero=True``): where a reverse process stops
    (the score is singular at 0) and the SDE's end time."""
    if _traced(t_eps) or _traced(T):
        return
    positive("t_eps", t_eps, zero=zero)
    if not float(t_eps) < float(T):
        raise ValueError(f"t_eps must be below the SDE's end time T = {float(T):g}, got {float(t_eps):g}")


def float_array(name: str, x, *, ndim: int | None = None, layout: str = ""):
    """A floating-point array (:func:`workshop.guards.float_array`); uint8 pixels are told
    to go through :func:`workshop_astro.galaxies.to_model`."""
    uint8 = np.dtype(getattr(x, "dtype", None) or np.asarray(x).dtype) == np.uint8
    return _core.float_array(name, x, ndim=ndim, layout=layout, integer_fix="uint8 pixels: convert with "
                             "galaxies.to_model" if uint8 else "convert with .astype(float)")


def sample_shape(name: str, shape) -> tuple[int, ...]:
    """``(batch, *sample_shape)``: a tuple of positive whole numbers, the batch first."""
    if not isinstance(shape, (tuple, list)) or not shape:
        raise TypeError(f"{name} must be a tuple (batch, *sample_shape) such as (16, 3, 32, 32), got {_shown(shape)}")
    for k, n in enumerate(shape):
        count(f"{name}[{k}]", n)
    return tuple(int(n) for n in shape)


def model_images(name: str, x, *, channels: int = 3, batched: bool = True, values: bool = True) -> np.ndarray:
    """Images in model units: float ``(N, C, H, W)`` (``(C, H, W)`` with ``batched=False``) in ``[-1, 1]``.

    Refuses channels-last arrays, grey images, integer pixels and (with ``values``,
    for real images) NaN, ``[0, 1]`` or ``0..255`` floats, each with the conversion that
    fixes it. A model's samples are checked with ``values=False``: a poor model's samples
    may stray outside ``[-1, 1]``, and saying so is the metrics' job.
    """
    layout = f"({'N, ' if batched else ''}{channels}, H, W) in [-1, 1]"
    want = 4 if batched else 3
    float_array(name, x, layout=layout)
    shape = tuple(np.shape(x))
    if len(shape) != want:
        grey = " (grey images? the model takes RGB)" if len(shape) == want - 1 else ""
        raise ValueError(f"{name} must be {layout}, got shape {shape}{grey}")
    if shape[-3] != channels:
        if shape[-1] == channels:
            raise ValueError(f"{name} has shape {shape}: channels last; the model takes channels first {layout}: "
                             "use np.moveaxis(x, -1, -3)")
        raise ValueError(f"{name} has {shape[-3]} channels (shape {shape}); the model takes {layout}")
    if _traced(x):
        return x
    arr = np.asarray(x, np.float32)
    if not values:
        return arr
    if arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name} holds {int((~np.isfinite(arr)).sum())} NaN or infinite values")
    if arr.size and (arr.max() > 2.0 or arr.min() < -2.0):
        raise ValueError(f"{name} ranges over {arr.min():.3g}..{arr.max():.3g}; model units are [-1, 1] (0..255 "
                         "pixels? convert uint8 images with galaxies.to_model)")
    if arr.size and arr.min() >= 0.0 and arr.max() <= 1.0 and arr.max() > 0.0:
        raise ValueError(f"{name} lies in [0, 1] ({arr.min():.3g}..{arr.max():.3g}); model units are [-1, 1]: "
                         "use 2 * x - 1")
    return arr


def pixel_images(name: str, x, *, channels: int = 3) -> np.ndarray:
    """Pixels as stored and plotted: ``uint8 (N, H, W, C)``, square, channels last."""
    arr = np.asarray(x)
    layout = f"uint8 (N, H, W, {channels}) pixels, channels last"
    if arr.ndim == 3 or (arr.ndim == 4 and arr.shape[-1] == 1):
        raise ValueError(f"{name} has shape {arr.shape}: grey images; expected {layout} (RGB). Stack the grey "
                         f"channel {channels} times: np.repeat(x.reshape(*x.shape[:3], 1), {channels}, axis=-1)")
    if arr.ndim != 4:
        raise ValueError(f"{name} must be {layout}, got shape {arr.shape}")
    if arr.shape[-1] != channels:
        if arr.shape[1] == channels:
            raise ValueError(f"{name} has shape {arr.shape}: channels first; expected {layout}: use "
                             "np.moveaxis(x, 1, -1)")
        raise ValueError(f"{name} has {arr.shape[-1]} channels (shape {arr.shape}); expected {layout}")
    if arr.shape[1] != arr.shape[2]:
        raise ValueError(f"{name} holds {arr.shape[1]}x{arr.shape[2]} images; the stamps must be square")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and np.nanmin(arr) >= 0 and np.nanmax(arr) <= 1:
            raise ValueError(f"{name} holds {arr.dtype} values in [0, 1]; expected {layout}: convert with "
                             "np.round(x * 255).astype(np.uint8)")
        if arr.size and np.issubdtype(arr.dtype, np.number) and np.nanmin(arr) >= 0 and np.nanmax(arr) <= 255 \
                and np.all(arr == np.round(arr)):
            raise ValueError(f"{name} holds {arr.dtype} values 0..255; expected {layout}: convert with "
                             "x.astype(np.uint8)")
        raise ValueError(f"{name} holds {arr.dtype} values (range {np.nanmin(arr) if arr.size else 0:.3g}.."
                         f"{np.nanmax(arr) if arr.size else 0:.3g}); expected {layout}")
    return arr


def fits_unet(score_fn, sample: tuple[int, ...]) -> None:
    """When ``score_fn`` is a U-Net (or wraps one, as :func:`fewstep.model_score` does),
    check that it can take images of shape ``sample`` ``(C, H, W)``."""
    model = getattr(score_fn, "model", score_fn)
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "mults"):
        return
    if len(sample) != 3:
        raise ValueError(f"the U-Net takes images (C, H, W); the samples would have shape {sample}")
    c, h, w = sample
    if c != config.image_channels:
        raise ValueError(f"the U-Net takes {config.image_channels}-channel images, the samples would have {c} "
                         f"(shape {sample})")
    factor = getattr(config, "patch", 1) * 2 ** (len(config.mults) - 1)
    if h % factor or w % factor:
        raise ValueError(f"the U-Net cannot take {h}x{w} images: height and width must be multiples of {factor} "
                         f"(patch {getattr(config, 'patch', 1)} x 2^{len(config.mults) - 1} levels of halving); "
                         f"use {h - h % factor or factor}x{w - w % factor or factor}, or crop/pad the images")
