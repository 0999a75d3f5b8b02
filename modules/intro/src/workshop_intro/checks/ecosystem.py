"""Checks for lesson 05, the ecosystem: Equinox + Optax, Lineax."""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from workshop.checking import CheckFailed, assert_close

from ._common import _call, _function

__all__ = ["mlp_loss", "solve_spd"]


def _mse(model, x, y):
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)


def mlp_loss(candidate: Callable) -> str:
    """``mlp_loss(model, x, y)``: the mean squared error of an Equinox model over a batch."""
    _function(candidate)
    vmap_hint = "Equinox layers act on one example: predict the batch with jax.vmap(model)(x)"
    kx, km = jax.random.split(jax.random.key(9))
    model = eqx.nn.MLP(2, 1, 16, 2, key=km)
    x = jax.random.normal(kx, (10, 2))
    y = jnp.sin(x[:, :1])
    got = _call(eqx.filter_jit(candidate), model, x, y, what="an MLP, x (10, 2), y (10, 1), under eqx.filter_jit",
                hints=(("dot_general", vmap_hint), ("shape", vmap_hint)))
    pred = jax.vmap(model)(x)
    mistakes = {
        "it is the sum of the squared errors, not their mean": (jnp.sum((pred - y) ** 2), "use jnp.mean, not jnp.sum"),
        "the errors are not squared": (jnp.mean(pred - y), "square the errors: jnp.mean((pred - y) ** 2)"),
        "it is the root mean square error": (jnp.sqrt(_mse(model, x, y)), "no square root: the mean squared error"),
    }
    assert_close(got, _mse(model, x, y), what="the loss", hint="jnp.mean((jax.vmap(model)(x) - y) ** 2)",
                 mistakes=mistakes)
    grads = _call(eqx.filter_jit(eqx.filter_grad(candidate)), model, x, y, what="eqx.filter_grad")
    expected = eqx.filter_jit(eqx.filter_grad(_mse))(model, x, y)
    assert_close(eqx.filter(grads, eqx.is_array), eqx.filter(expected, eqx.is_array), what="its gradient",
                 rtol=1e-4, atol=1e-5, hint="the loss must be a differentiable function of the model's arrays")
    return "loss and gradients match under eqx.filter_jit / eqx.filter_grad"


def solve_spd(candidate: Callable) -> str:
    """``solve_spd(A, b)``: ``x`` with ``A x = b`` for a symmetric positive definite ``A``, with Lineax."""
    _function(candidate)
    m = jax.random.normal(jax.random.key(10), (5, 5))
    a = m @ m.T + 5.0 * jnp.eye(5)
    b = jnp.arange(1.0, 6.0)
    got = _call(eqx.filter_jit(candidate), a, b, what="a 5x5 SPD matrix, under jit",
                hints=(("positive or negative definite",
                        "tell Lineax the matrix is SPD: lx.MatrixLinearOperator(A, lx.positive_semidefinite_tag)"),))
    if hasattr(got, "value") and hasattr(got, "result"):
        raise CheckFailed("you returned Lineax's Solution object",
                          hint="lx.linear_solve(...) returns a Solution; the answer is its .value")
    mistakes = {"it is A b: the matrix multiplies b instead of being solved for": (
        a @ b, "solve A x = b: lx.linear_solve(lx.MatrixLinearOperator(A, lx.positive_semidefinite_tag), b).value")}
    assert_close(got, np.linalg.solve(np.asarray(a, np.float64), np.asarray(b, np.float64)), what="x",
                 rtol=1e-4, atol=1e-5, hint="lx.linear_solve(operator, b, solver=lx.Cholesky()).value",
                 mistakes=mistakes)
    return "matches numpy.linalg.solve under jit"
