"""Checks for lesson 02, function transforms: jit, vmap, grad, jacobians, scan."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from workshop.checking import CheckFailed, assert_close, expect

from ._common import _allclose, _call, _function

__all__ = ["pairwise_sq_distances", "loss_and_grad", "jacobian", "ar1_trajectory"]


def pairwise_sq_distances(candidate: Callable) -> str:
    """``pairwise_sq_distances(xs, ys)``: the ``(n, m)`` matrix of ``|x_i - y_j|²``."""
    _function(candidate)
    kx, ky = jax.random.split(jax.random.key(2))
    xs, ys = jax.random.normal(kx, (5, 3)), jax.random.normal(ky, (4, 3))
    expected = jnp.sum((xs[:, None, :] - ys[None, :, :]) ** 2, axis=-1)
    got = _call(jax.jit(candidate), xs, ys, what="xs of shape (5, 3), ys of shape (4, 3), under jit")
    shape = getattr(got, "shape", None)
    expect(shape != (4, 5), "the result has shape (4, 5): rows and columns are swapped",
           hint="vmap over xs on the outside and over ys on the inside: "
                "jax.vmap(lambda x: jax.vmap(lambda y: sq_dist(x, y))(ys))(xs)")
    if shape == expected.shape and _allclose(got, jnp.sqrt(expected)):
        raise CheckFailed("these are the distances, not the squared distances",
                          hint="sum the squared differences and do not take the square root")
    diff = xs[:, None, :] - ys[None, :, :]
    mistakes = {
        "the squared differences were not summed over the coordinates": (diff**2, "for one pair, jnp.sum((x - y) ** 2)"),
        "the differences were summed before squaring": (jnp.sum(diff, axis=-1) ** 2,
                                                         "square each coordinate's difference, then sum"),
        "it is |x|² + |y|² + 2 x·y: the cross term has the wrong sign":
            (jnp.sum(xs**2, 1)[:, None] + jnp.sum(ys**2, 1)[None, :] + 2 * xs @ ys.T,
             "|x - y|² = |x|² + |y|² - 2 x·y"),
        "it is the sum of x - y, not of its square": (jnp.sum(diff, axis=-1), "square the differences: (x - y) ** 2"),
    }
    assert_close(got, expected, what="pairwise_sq_distances(xs, ys)", rtol=1e-4, atol=1e-5, mistakes=mistakes,
                 hint="for one pair, jnp.sum((x - y) ** 2); then two nested jax.vmap calls")
    return "correct (5, 3) x (4, 3) -> (5, 4) under jit"


def loss_and_grad(candidate: Callable) -> str:
    """``loss_and_grad(w, x, y)``: ``(mean((x @ w - y)²), its gradient in w)``."""
    _function(candidate)
    kx, kw, ky = jax.random.split(jax.random.key(3), 3)
    x = jax.random.normal(kx, (8, 3))
    w = jax.random.normal(kw, (3,))
    y = jax.random.normal(ky, (8,))
    r = x @ w - y
    loss, grad = jnp.mean(r**2), 2.0 * x.T @ r / x.shape[0]
    out = _call(jax.jit(candidate), w, x, y, what="w (3,), x (8, 3), y (8,), under jit")
    expect(isinstance(out, (tuple, list)) and len(out) == 2,
           "return the pair (loss, gradient)",
           hint="jax.value_and_grad(loss)(w, x, y) returns exactly this pair")
    got_loss, got_grad = out
    if getattr(got_grad, "shape", None) == x.shape:
        raise CheckFailed("the gradient has the shape of x, not of w",
                          hint="grad differentiates with respect to the first argument (argnums=0): "
                               "make w the first argument of the loss")
    if _allclose(got_loss, loss * x.shape[0]):
        raise CheckFailed("the loss is N times too large: you summed instead of averaging",
                          hint="the loss is the mean of the squared residuals: jnp.mean((x @ w - y) ** 2)")
    assert_close(got_loss, loss, what="the loss", hint="jnp.mean((x @ w - y) ** 2)")
    n = x.shape[0]
    mistakes = {
        "it is the gradient of the sum, N times too large": (n * grad, "average over the batch: jnp.mean, not jnp.sum"),
        "it is missing the factor 2 of the square": (grad / 2, "d/dw (x w - y)² = 2 xᵀ(x w - y): let jax.grad do it"),
        "it has the wrong sign (the residual is y - x w, but its derivative keeps the minus)":
            (-grad, "differentiate the loss itself with jax.value_and_grad(loss)(w, x, y)"),
    }
    assert_close(got_grad, grad, what="the gradient in w", rtol=1e-4, atol=1e-5, mistakes=mistakes,
                 hint="jax.value_and_grad(loss) differentiates the loss in its first argument, w")
    return "loss and gradient match 2 xᵀ(xw - y)/N under jit"


def _flow(x):
    return jnp.stack([x[0] * x[1] * jnp.sin(x[2]), x[0] ** 2 + jnp.exp(x[1])])


def _flow_jacobian(x):
    return jnp.array([
        [x[1] * jnp.sin(x[2]), x[0] * jnp.sin(x[2]), x[0] * x[1] * jnp.cos(x[2])],
        [2 * x[0], jnp.exp(x[1]), 0.0],
    ])


def jacobian(candidate: Callable) -> str:
    """``jacobian(f, x)``: the matrix ``J[i, j] = ∂f_i/∂x_j`` of ``f: R^n -> R^m`` at ``x``."""
    _function(candidate)
    x = jnp.array([0.5, -1.2, 2.0])
    got = _call(candidate, _flow, x, what="f(x) = (x0 x1 sin x2, x0² + exp x1) at x=(0.5, -1.2, 2)")
    if getattr(got, "shape", None) == (3, 2):
        raise CheckFailed("the Jacobian has shape (3, 2): it is transposed",
                          hint="rows are outputs, columns inputs: jax.jacfwd(f)(x) already has shape (2, 3)")
    assert_close(got, _flow_jacobian(x), what="the Jacobian of the flow", rtol=1e-4, atol=1e-5,
                 hint="jax.jacfwd(f)(x), or jax.jacrev(f)(x)")
    a = jax.random.normal(jax.random.key(4), (4, 2))
    jitted = _call(jax.jit(candidate, static_argnums=0), lambda v: a @ v, jnp.ones(2),
                   what="a linear map f(x) = A x under jit (its Jacobian is A)")
    assert_close(jitted, a, what="the Jacobian of x -> A x", hint="the Jacobian of a linear map is its matrix")
    return "matches the analytic Jacobian; works under jit"


def _ar1_reference(x0, a, noise):
    xs, x = [], x0
    for e in np.asarray(noise):
        x = a * x + e
        xs.append(x)
    return np.array(xs, dtype=np.float32)


def ar1_trajectory(candidate: Callable) -> str:
    """``ar1_trajectory(x0, a, noise)``: ``x_1 .. x_T`` of ``x_{t+1} = a x_t + noise_t`` with lax.scan."""
    _function(candidate)
    noise = jax.random.normal(jax.random.key(5), (12,))
    x0, a = jnp.float32(2.0), jnp.float32(0.8)
    expected = _ar1_reference(2.0, 0.8, noise)
    got = _call(jax.jit(candidate), x0, a, noise, what="x0=2, a=0.8 and 12 noise values, under jit")
    shape = getattr(got, "shape", None)
    if shape == ():
        raise CheckFailed("you returned one number: the final state only",
                          hint="lax.scan returns (final_carry, stacked_outputs); return the stacked outputs")
    if shape == (13,):
        raise CheckFailed("the trajectory has 13 entries: it includes x0",
                          hint="return x_1 .. x_T: one output per noise value, the new state")
    if shape == (12,) and _allclose(got, np.concatenate([[2.0], expected[:-1]])):
        raise CheckFailed("the trajectory is shifted by one step: it starts at x0",
                          hint="in the scan body, return (new_x, new_x): output the new state, not the old one")
    mistakes = {
        "the noise is never added": (_ar1_reference(2.0, 0.8, np.zeros(12)), "new = a * x + e: add the step's noise"),
        "a multiplies the noise too (a (x + e))": (_ar1_reference(2.0, 0.8, 0.8 * np.asarray(noise)),
                                                   "only the state is scaled: new = a * x + e"),
    }
    assert_close(got, expected, what="the AR(1) trajectory", rtol=1e-4, atol=1e-5, mistakes=mistakes,
                 hint="def step(x, e): new = a * x + e; return new, new  then  jax.lax.scan(step, x0, noise)")
    return "matches a Python loop over 12 steps, under jit"
