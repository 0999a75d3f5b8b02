"""What every intro check shares: the hints for JAX's classic errors and small helpers.

Each check runs the participant's function on several inputs, usually under the
transform the lesson is about (``jit``, ``vmap``, ``grad``), compares with a reference,
and, when the answer is wrong, recognises the typical mistake (a reused key, Python
control flow on a traced value, an in-place update, a missing ``vmap``, ...) and says
what to do instead.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from workshop.checking import CheckFailed, NotAttempted, call

# Error texts JAX raises for the classic mistakes, and what to do about each. The core's
# `call` already recognises boolean conversion of tracers and item assignment.
_ARRAY_HINT = ("inside jit/vmap/grad use jax.numpy (jnp), not numpy (np): NumPy cannot hold a traced value, "
               "and np.asarray(x) on one fails")
_INT_HINT = ("a traced value was used where Python needs a concrete int (range(n), a shape, an index): mark "
             "that argument static, jax.jit(f, static_argnames='n'), or loop with jax.lax.fori_loop")
_SCALAR_GRAD_HINT = ("jax.grad only differentiates functions with a scalar output; for a vector output use "
                     "jax.jacfwd / jax.jacrev, or jax.vmap the scalar function over a batch")
_READ_ONLY_HINT = ("JAX arrays are immutable (seen through NumPy they are read-only): write a new array with "
                   "x = x.at[i].set(v) instead of changing x in place")
_COMMON_HINTS: tuple[tuple[str, str], ...] = (
    ("read-only", _READ_ONLY_HINT),
    ("TracerArrayConversionError", _ARRAY_HINT),
    ("TracerIntegerConversionError", _INT_HINT),
    ("Gradient only defined for scalar-output", _SCALAR_GRAD_HINT),
)


def _call(fn: Callable, *args: Any, what: str = "", hints: tuple[tuple[str, str], ...] = ()) -> Any:
    """:func:`workshop.checking.call`, with the hint replaced when the error names a known mistake."""
    try:
        return call(fn, *args, what=what)
    except NotAttempted:
        raise
    except CheckFailed as exc:
        for needle, hint in (*hints, *_COMMON_HINTS):
            if needle in exc.message:
                exc.hint = hint
                break
        raise


def _function(candidate: Any) -> None:
    if not callable(candidate):
        raise CheckFailed(f"expected a function, got {type(candidate).__name__}",
                          hint='pass the function itself, without calling it: check("intro.…", my_function)')


def _allclose(a: Any, b: Any, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))
