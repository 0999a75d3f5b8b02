"""Checks for lesson 04, trace time vs run time: control flow, retracing, NaNs."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from workshop.checking import assert_close, expect

from ._common import _call, _function

__all__ = ["piecewise", "newton_sqrt", "power_static", "safe_norm"]


def _piecewise_ref(x):
    return jnp.where(x > 1.0, x**2, 2.0 * x - 1.0)


def piecewise(candidate: Callable) -> str:
    """``piecewise(x)``: ``x²`` for ``x > 1`` and ``2x - 1`` otherwise, under jit, vmap and grad."""
    _function(candidate)
    where_hint = "choose between the branches with jnp.where(x > 1, x ** 2, 2 * x - 1) (or jax.lax.cond)"
    f = jax.jit(candidate)
    for x in (3.0, 0.5, -2.0):
        got = _call(f, jnp.float32(x), what=f"x={x} under jax.jit")
        mistakes = {
            "the two branches are swapped": (jnp.where(x > 1.0, 2.0 * x - 1.0, x**2),
                                             "x ** 2 is for x > 1, 2 x - 1 for the rest: jnp.where(cond, if_true, "
                                             "if_false)"),
        }
        assert_close(got, _piecewise_ref(x), what=f"piecewise({x})", hint=where_hint, mistakes=mistakes)
    xs = jnp.linspace(-3.0, 3.0, 13)
    got = _call(jax.vmap(candidate), xs, what="13 values under jax.vmap")
    assert_close(got, _piecewise_ref(xs), what="jax.vmap(piecewise)(xs)", hint=where_hint)
    for x, slope in ((2.0, 4.0), (-1.0, 2.0)):
        got = _call(jax.grad(candidate), jnp.float32(x), what=f"jax.grad at x={x}")
        assert_close(got, slope, what=f"the derivative at x={x}", hint=where_hint)
    return "right on both branches under jit, vmap and grad"


def newton_sqrt(candidate: Callable) -> str:
    """``newton_sqrt(a)``: ``√a`` by Newton iterations inside ``jax.lax.while_loop``, under jit."""
    _function(candidate)
    loop_hint = ("iterate with jax.lax.while_loop(cond_fun, body_fun, x0): cond_fun returns a traced bool, "
                 "body_fun one Newton step x -> (x + a / x) / 2")
    f = jax.jit(candidate)
    for a in (0.25, 2.0, 100.0, 12345.0):
        got = _call(f, jnp.float32(a), what=f"a={a} under jax.jit")
        assert_close(got, np.sqrt(np.float32(a)), what=f"newton_sqrt({a})", rtol=1e-5, atol=1e-6, hint=loop_hint)
    avals = jnp.array([0.5, 3.0, 50.0])
    got = _call(jax.vmap(candidate), avals, what="three values under jax.vmap")
    assert_close(got, jnp.sqrt(avals), what="jax.vmap(newton_sqrt)", rtol=1e-5, atol=1e-6, hint=loop_hint)
    jaxpr = str(jax.make_jaxpr(candidate)(jnp.float32(2.0)))
    expect("while" in jaxpr, "the computation contains no loop: this exercise practises jax.lax.while_loop",
           hint=loop_hint)
    return "converges to √a for a from 0.25 to 12345 under jit and vmap, with a while loop"


def _counted_power():
    traces = []

    def power(x, n):
        traces.append(n)  # a Python side effect: runs once per trace, never when the compiled code runs
        result = jnp.ones_like(x)
        for _ in range(n):
            result = result * x
        return result

    return power, traces


def power_static(candidate: Callable) -> str:
    """``jit_with_static_n(fn)``: ``jax.jit(fn)`` with its argument ``n`` static."""
    _function(candidate)
    static_hint = "return jax.jit(fn, static_argnames='n'): n decides the loop length, so it must be a Python int"
    power, traces = _counted_power()
    jitted = _call(candidate, power, what="a function power(x, n) that loops n times")
    expect(callable(jitted), f"expected a function back, got {type(jitted).__name__}", hint=static_hint)
    x = jnp.array([1.0, 2.0, 3.0])
    got = _call(jitted, x, 3, what="x=[1, 2, 3], n=3",
                hints=(("TracerIntegerConversionError", static_hint), ("ConcretizationTypeError", static_hint),
                       ("Non-hashable static", "x is an array and cannot be static; only n: " + static_hint)))
    assert_close(got, x**3, what="power(x, 3)", hint=static_hint)
    _call(jitted, x + 1.0, 3, what="new values of the same shape, n=3")
    expect(len(traces) == 1, f"power was traced {len(traces)} times for two calls with the same shapes and n",
           hint="wrap fn with jax.jit: a jitted function is traced once per new shape or static value")
    got = _call(jitted, x, 4, what="n=4")
    assert_close(got, x**4, what="power(x, 4)", hint=static_hint)
    expect(len(traces) == 2, "a new value of the static n should trigger exactly one new trace",
           hint=static_hint)
    return "n is static: one trace per value of n, none for new x values"


def safe_norm(candidate: Callable) -> str:
    """``safe_norm(x)``: ``|x|`` whose gradient is ``x/|x|``, and ``0`` (not NaN) at ``x = 0``."""
    _function(candidate)
    nan_hint = ("sqrt has an infinite derivative at 0, and jnp.where differentiates both branches (0 * inf = NaN): "
                "use the 'double where': s = jnp.sum(x**2); safe = jnp.where(s > 0, s, 1.0); "
                "return jnp.where(s > 0, jnp.sqrt(safe), 0.0)")
    for x in (jnp.array([3.0, 4.0]), jnp.array([-1.0, 2.0, 2.0]), jnp.zeros(3)):
        got = _call(jax.jit(candidate), x, what=f"x={np.asarray(x).tolist()} under jit")
        assert_close(got, jnp.linalg.norm(x), what=f"safe_norm({np.asarray(x).tolist()})", hint="sqrt(sum(x**2))")
    x = jnp.array([3.0, 4.0])
    g = _call(jax.grad(candidate), x, what="jax.grad at x=[3, 4]")
    assert_close(g, x / 5.0, what="the gradient at [3, 4]", hint="the gradient of |x| is x / |x|")
    g0 = np.asarray(_call(jax.grad(candidate), jnp.zeros(3), what="jax.grad at x=0"))
    expect(not np.isnan(g0).any(), f"the gradient at x = 0 is {g0.tolist()}: NaN", hint=nan_hint)
    assert_close(g0, np.zeros(3), what="the gradient at x = 0", hint=nan_hint)
    return "norm right, gradient x/|x| away from 0 and finite (0) at 0"
