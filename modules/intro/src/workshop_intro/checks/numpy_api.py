"""Checks for lesson 01, JAX's NumPy API: what carries over and what does not."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from workshop.checking import assert_close, expect

from ._common import _call, _function

__all__ = ["set_diagonal", "two_normals"]


def set_diagonal(candidate: Callable) -> str:
    """``set_diagonal(a, value)``: a copy of the square matrix ``a`` with its diagonal set to ``value``."""
    _function(candidate)
    hint_index = "index the diagonal with two index arrays: i = jnp.arange(n); a.at[i, i].set(value)"
    a = jnp.arange(16.0).reshape(4, 4)
    expected = a.at[jnp.arange(4), jnp.arange(4)].set(7.0)
    got = _call(candidate, a, 7.0, what="a 4x4 matrix and value=7")
    i = jnp.arange(4)
    mistakes = {
        "whole rows were set, not the diagonal": (a.at[i].set(7.0), "a.at[i] selects rows; " + hint_index),
        "value was added to the diagonal, not put there": (a.at[i, i].add(7.0), "use .set(value), not .add(value)"),
        "the anti-diagonal was set": (a.at[i, 3 - i].set(7.0), "the diagonal is a[i, i]: " + hint_index),
        "only the diagonal was returned": (jnp.full(4, 7.0), "return the whole matrix: a.at[i, i].set(value)"),
    }
    assert_close(got, expected, what="set_diagonal(a, 7.0)", hint=hint_index, mistakes=mistakes)
    expect(bool(jnp.all(a == jnp.arange(16.0).reshape(4, 4))), "the input matrix changed",
           hint="return a new array: a.at[i, i].set(value) leaves a alone")

    # a NumPy input *can* be mutated in place: that is the mistake to catch
    a_np = np.arange(9.0).reshape(3, 3)
    before = a_np.copy()
    got = _call(candidate, a_np, -1.0, what="a 3x3 NumPy matrix and value=-1")
    expect(np.array_equal(a_np, before), "your function changed the NumPy array it was given",
           hint="never modify the input: convert with jnp.asarray(a) and use a.at[i, i].set(value), which "
                "returns a new array")
    assert_close(got, np.where(np.eye(3, dtype=bool), -1.0, before), what="set_diagonal on a NumPy matrix",
                 hint=hint_index)

    got = _call(jax.jit(candidate), a, 2.5, what="a 4x4 matrix under jax.jit")
    assert_close(got, a.at[jnp.arange(4), jnp.arange(4)].set(2.5), what="jax.jit(set_diagonal)(a, 2.5)",
                 hint=hint_index)
    return "correct on JAX and NumPy inputs and under jit; the input is left unchanged"


def two_normals(candidate: Callable) -> str:
    """``two_normals(key, n)``: two independent arrays of ``n`` standard normal draws from one key."""
    _function(candidate)
    split_hint = ("split the key: k1, k2 = jax.random.split(key), then draw x with k1 and y with k2; "
                  "the same key always gives the same numbers")
    n = 2000
    key = jax.random.key(0)
    out = _call(candidate, key, n, what="key=jax.random.key(0), n=2000")
    expect(isinstance(out, (tuple, list)) and len(out) == 2, "return a pair (x, y)",
           hint="return x, y")
    x, y = (np.asarray(v) for v in out)
    expect(x.shape == (n,) and y.shape == (n,), f"x and y should both have shape ({n},), got {x.shape} and {y.shape}",
           hint="jax.random.normal(k1, (n,))")
    expect(x.dtype == np.float32 and y.dtype == np.float32,
           f"expected float32 (JAX's default), got {x.dtype} and {y.dtype}",
           hint="draw with jax.random.normal, which gives float32 unless x64 is enabled")
    expect(not np.array_equal(x, y), "x and y are identical: the same key was used for both draws",
           hint=split_hint)
    corr = float(np.corrcoef(x, y)[0, 1])
    expect(abs(corr) < 0.15, f"x and y are strongly correlated (correlation {corr:.2f}); they should be independent",
           hint=split_hint)
    parent = np.asarray(jax.random.normal(key, (n,)))
    expect(not (np.array_equal(x, parent) or np.array_equal(y, parent)),
           "one sample was drawn with the key you were given itself: a key must be used only once",
           hint="after k1, k2 = jax.random.split(key), use only k1 and k2, never key itself")
    for name, v in (("x", x), ("y", y)):
        expect(abs(v.mean()) < 0.1 and 0.9 < v.std() < 1.1,
               f"{name} does not look standard normal (mean {v.mean():.2f}, std {v.std():.2f})",
               hint="use jax.random.normal(subkey, (n,)): mean 0, std 1")
    again = _call(candidate, key, n, what="the same key a second time")
    expect(np.array_equal(np.asarray(again[0]), x) and np.array_equal(np.asarray(again[1]), y),
           "the same key gave different numbers on a second call",
           hint="use only jax.random with the key you were given; np.random and random keep hidden global state")
    other = _call(candidate, jax.random.key(1), n, what="a different key")
    expect(not np.array_equal(np.asarray(other[0]), x), "a different key gave the same numbers",
           hint="derive every draw from the key argument")
    jitted = _call(jax.jit(candidate, static_argnums=1), key, n, what="under jax.jit")
    assert_close(jitted, (x, y), what="jax.jit(two_normals)(key, n)", hint=split_hint)
    return f"independent (correlation {corr:+.3f}), reproducible, standard normal, float32"
