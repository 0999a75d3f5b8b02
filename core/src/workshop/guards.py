"""Argument checks for the public functions of workshop modules.

Each check raises before any JAX work starts, with a message naming the argument, the
value received and what is expected: ``TypeError`` for a value of the wrong kind,
``ValueError`` for one of the right kind outside what the function can use. They return
the value converted (``count`` an ``int``, ``positive`` and ``fraction`` a ``float``), so
a caller writes ``steps = guards.count("steps", steps)`` instead of a check of its own.
Arrays that carry a ``shape`` (JAX values, possibly traced inside ``jax.jit``) pass the
scalar checks unchecked: their values are not known yet.

Modules keep their own ``guards.py`` for what only they know (image layouts, protein
sequences) and import these from here.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["shown", "count", "positive", "fraction", "float_array"]


def shown(value) -> str:
    """``repr(value)``, cut to 60 characters for a message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def count(name: str, value, *, minimum: int = 1) -> int:
    """``value`` as an ``int`` of at least ``minimum`` (steps, samples, batch sizes)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number (at least {minimum}), got {shown(value)} "
                        f"({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def positive(name: str, value, *, zero: bool = False):
    """``value`` as a finite ``float`` above 0 (at least 0 with ``zero=True``); an array
    (a JAX value, possibly traced) is returned unchecked."""
    if hasattr(value, "shape") and not isinstance(value, np.generic):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {shown(value)} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise ValueError(f"{name} must be a finite number {'>= 0' if zero else '> 0'}, got {value}")
    return value


def fraction(name: str, value, *, low: float = 0.0, high: float = 1.0) -> float:
    """``value`` as a ``float`` strictly between ``low`` and ``high`` (a probability, a level)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number between {low:g} and {high:g}, got {shown(value)}")
    value = float(value)
    if not low < value < high:
        raise ValueError(f"{name} must be strictly between {low:g} and {high:g}, got {value}")
    return value


def float_array(name: str, x, *, ndim: int | None = None, layout: str = "",
                integer_fix: str = "convert with .astype(float)"):
    """A floating-point array (bfloat16 included) with ``ndim`` axes when given; integer
    arrays are refused with ``integer_fix`` (they would round silently in JAX)."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        x = np.asarray(x)
        dtype = x.dtype
    where = f" {layout}" if layout else ""
    if not np.issubdtype(np.dtype(dtype), np.floating) and str(dtype) != "bfloat16":
        raise TypeError(f"{name} must hold floating-point values{where}, got dtype {dtype} ({integer_fix})")
    if ndim is not None and np.ndim(x) != ndim:
        raise ValueError(f"{name} must have {ndim} axes{where}, got shape {tuple(np.shape(x))}")
    return x
