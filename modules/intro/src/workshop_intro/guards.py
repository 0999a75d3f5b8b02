"""Checks of the arguments of the module's public functions.

Each check raises before any JAX work starts, with a message naming the argument, the
value received and what is expected: ``TypeError`` for a value of the wrong kind,
``ValueError`` for one of the right kind outside what the function can use. Values being
traced (inside ``jax.jit``) pass unchecked: their values are not known yet.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["count", "positive", "float_array"]


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def count(name: str, value, *, minimum: int = 1) -> int:
    """``value`` as an ``int`` of at least ``minimum`` (steps, samples, repeats)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number (at least {minimum}), got {_shown(value)} "
                        f"({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def positive(name: str, value, *, zero: bool = False):
    """A finite number above 0 (at least 0 with ``zero=True``); JAX scalars pass unchecked."""
    if hasattr(value, "shape") and not isinstance(value, np.generic):
        return value  # a JAX value (possibly traced): checked where it is made
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {_shown(value)} ({type(value).__name__})")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise ValueError(f"{name} must be a finite number {'>= 0' if zero else '> 0'}, got {value}")
    return value


def float_array(name: str, x, *, ndim: int, layout: str):
    """A floating-point array with ``ndim`` axes (integers are refused: convert them first)."""
    dtype = getattr(x, "dtype", None)
    dtype = np.dtype(np.asarray(x).dtype if dtype is None else dtype)
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"{name} must hold floating-point values {layout}, got dtype {dtype} (convert with "
                        ".astype(float))")
    if np.ndim(x) != ndim:
        raise ValueError(f"{name} must be {layout}, got shape {tuple(np.shape(x))}")
    return x
