"""Measured comparisons of JAX's transforms on the participant's own hardware.

JAX dispatches work asynchronously: a call returns as soon as the work is *queued*.
Every timing here therefore waits with :func:`jax.block_until_ready`, and the
compilation of a jitted function is measured apart from its runs (``lower`` +
``compile`` ahead of time), so that a speed-up never hides, or counts, compile time.

Example::

    >>> x = jnp.linspace(0.0, 1.0, 100_000)
    >>> r = jit_speedup(polynomial_chain, x, repeats=5)
    >>> r.speedup > 1, r.compile_s > 0
    (True, True)
"""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from . import guards


def best_time(fn: Callable[..., Any], *args: Any, repeats: int = 5) -> float:
    """The fastest of ``repeats`` calls of ``fn(*args)`` in seconds, waiting for the result each time.

    The minimum is the least noisy estimate on a shared machine: noise only adds time.
    """
    repeats = guards.count("repeats", repeats)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return min(times)


class JitTiming(NamedTuple):
    """Seconds per call without and with ``jax.jit``, and the one-off compile time."""

    eager_s: float
    compile_s: float
    jit_s: float

    @property
    def speedup(self) -> float:
        return self.eager_s / self.jit_s

    @property
    def break_even_calls(self) -> float:
        """Calls after which compiling has paid for itself (``inf`` if jit is not faster)."""
        saved = self.eager_s - self.jit_s
        return self.compile_s / saved if saved > 0 else float("inf")


def jit_speedup(fn: Callable[..., Any], *args: Any, repeats: int = 5) -> JitTiming:
    """Time ``fn`` op by op (eager) and compiled, with the compile time measured apart.

    Arguments:
        fn: a pure function of arrays.
        *args: its inputs.
        repeats: calls timed for each variant (the best is kept).
    """
    eager_s = best_time(fn, *args, repeats=repeats)
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    jit_s = best_time(compiled, *args, repeats=repeats)
    return JitTiming(eager_s=eager_s, compile_s=compile_s, jit_s=jit_s)


POLYNOMIAL_ROUNDS = 30  # default length of :func:`polynomial_chain`


def polynomial_chain(x: jax.Array, n_rounds: int = POLYNOMIAL_ROUNDS) -> jax.Array:
    """Many cheap element-wise operations (``x <- x(1 - x)/2 + 1/4``, ``n_rounds`` times).

    Eagerly, each operation is its own kernel that reads and writes a whole temporary
    array; under jit, XLA fuses them into one pass over ``x``: memory traffic and Python
    dispatch are what jit saves here.
    """
    for _ in range(n_rounds):
        x = 0.5 * x * (1.0 - x) + 0.25
    return x


class VmapTiming(NamedTuple):
    """Seconds for a Python loop over examples vs one vmapped (and jitted) call."""

    loop_s: float
    vmap_s: float
    max_abs_difference: float

    @property
    def speedup(self) -> float:
        return self.loop_s / self.vmap_s


def vmap_vs_loop(fn: Callable[[jax.Array], jax.Array], xs: jax.Array, repeats: int = 3) -> VmapTiming:
    """Apply a per-example ``fn`` to every row of ``xs``: a Python loop (each call jitted,
    so only the looping differs) against ``jax.jit(jax.vmap(fn))``; results must agree."""
    one = jax.jit(fn)
    batched = jax.jit(jax.vmap(fn))

    def loop(xs):
        return jnp.stack([one(x) for x in xs])

    looped, vmapped = loop(xs), batched(xs)  # warm up: compile both outside the timings
    diff = float(jnp.max(jnp.abs(looped - vmapped)))
    return VmapTiming(loop_s=best_time(loop, xs, repeats=repeats), vmap_s=best_time(batched, xs, repeats=repeats),
                      max_abs_difference=diff)


def finite_difference_grad(f: Callable[[jax.Array], jax.Array], x: jax.Array, h: float) -> jax.Array:
    """Central differences ``(f(x + h e_i) - f(x - h e_i)) / 2h``: ``2 n`` evaluations of ``f``."""
    h = guards.positive("h", h)
    guards.float_array("x", x, ndim=1, layout="(n,) (a point; integers would make x + h e_i round)")
    eye = jnp.eye(x.shape[0], dtype=x.dtype)
    f_batch = jax.vmap(f)
    return (f_batch(x + h * eye) - f_batch(x - h * eye)) / (2 * h)


def rosenbrock(x: jax.Array) -> jax.Array:
    """The n-dimensional Rosenbrock function, a classic curved valley."""
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_grad(x: jax.Array) -> jax.Array:
    """Its gradient written out by hand, the reference for both methods."""
    g = jnp.zeros_like(x)
    inner = x[1:] - x[:-1] ** 2
    g = g.at[:-1].add(-400.0 * x[:-1] * inner - 2.0 * (1.0 - x[:-1]))
    return g.at[1:].add(200.0 * inner)


class GradComparison(NamedTuple):
    """Relative error against the hand-written gradient and seconds per gradient."""

    grad_error: float
    fd_errors: dict[float, float]
    grad_s: float
    fd_s: float


def grad_vs_finite_differences(x: jax.Array, steps: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4),
                               repeats: int = 3) -> GradComparison:
    """``jax.grad`` against central differences of :func:`rosenbrock` at ``x`` (float32).

    Finite differences trade truncation error (large ``h``) against round-off (small
    ``h``) and cost ``2 n`` evaluations; ``grad`` is exact to round-off at the cost of
    about one.
    """
    exact = rosenbrock_grad(x)
    norm = float(jnp.linalg.norm(exact))
    g = jax.jit(jax.grad(rosenbrock))
    fd = jax.jit(finite_difference_grad, static_argnums=(0,))
    grad_error = float(jnp.linalg.norm(g(x) - exact)) / norm
    fd_errors = {h: float(jnp.linalg.norm(fd(rosenbrock, x, h) - exact)) / norm for h in steps}
    best_h = min(fd_errors, key=fd_errors.get)
    return GradComparison(grad_error=grad_error, fd_errors=fd_errors,
                          grad_s=best_time(g, x, repeats=repeats),
                          fd_s=best_time(lambda y: fd(rosenbrock, y, best_h), x, repeats=repeats))

