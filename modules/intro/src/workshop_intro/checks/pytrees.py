"""Checks for lesson 03, pytrees: parameters as nested containers, Equinox modules."""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from workshop.checking import CheckFailed, assert_close, expect

from ._common import _allclose, _call, _function

__all__ = ["sgd_step", "scale_weights"]


def _params():
    k1, k2, k3 = jax.random.split(jax.random.key(6), 3)
    return {"encoder": {"w": jax.random.normal(k1, (3, 2)), "b": jnp.zeros(2)},
            "head": (jax.random.normal(k2, (2,)), jax.random.normal(k3, ()))}


def sgd_step(candidate: Callable) -> str:
    """``sgd_step(params, grads, lr)``: ``p - lr * g`` on every leaf, same structure."""
    _function(candidate)
    params = _params()
    # a different gradient in every entry, so that a leaf paired with another leaf's gradient shows
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(16), len(leaves))
    grads = jax.tree.unflatten(treedef, [jax.random.normal(k, jnp.shape(p)) for k, p in zip(keys, leaves)])
    before = jax.tree.map(np.asarray, params)
    expected = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
    got = _call(candidate, params, grads, 0.1, what="a nested dict/tuple of parameters and lr=0.1")
    same = jax.tree.structure(params) == jax.tree.structure(before) and all(
        np.array_equal(np.asarray(a), b) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(before)))
    expect(same, "your function changed the params it was given",
           hint="build a new tree: return jax.tree.map(lambda p, g: p - lr * g, params, grads)")
    expect(jax.tree.structure(got) == jax.tree.structure(expected),
           f"the result has structure {jax.tree.structure(got)}, expected {jax.tree.structure(expected)}",
           hint="jax.tree.map keeps the nesting (dicts, tuples) of its first tree; do not flatten to a list")
    ascent = jax.tree.map(lambda p, g: p + 0.1 * g, params, grads)
    if all(_allclose(a, b) for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ascent))):
        raise CheckFailed("the parameters moved up the gradient",
                          hint="gradient descent subtracts: p - lr * g")
    mistakes = {
        "it returns only the step lr * g, not the new parameters":
            (jax.tree.map(lambda g: 0.1 * g, grads), "the new value is the old one minus the step: p - lr * g"),
        "the parameters did not move": (params, "subtract lr * g from every leaf: jax.tree.map(lambda p, g: "
                                                "p - lr * g, params, grads)"),
        "the learning rate is missing": (jax.tree.map(lambda p, g: p - g, params, grads), "scale the step: p - lr * g"),
    }
    assert_close(got, expected, what="the updated parameters", hint="p - lr * g for every leaf", mistakes=mistakes)
    jitted = _call(jax.jit(candidate), params, grads, 0.1, what="under jit")
    assert_close(jitted, expected, what="jax.jit(sgd_step)", hint="p - lr * g for every leaf")
    return "every leaf updated, structure kept, input unchanged, works under jit"


class _Probe(eqx.Module):
    """A model with the usual non-array fields: a function and a string."""

    linear: eqx.nn.Linear
    activation: Callable
    label: str


def scale_weights(candidate: Callable) -> str:
    """``scale_weights(model, factor)``: every array of an Equinox model times ``factor``; the rest unchanged."""
    _function(candidate)
    partition_hint = ("split the model into arrays and the rest: params, static = eqx.partition(model, eqx.is_array); "
                      "scale params with jax.tree.map; put it back together with eqx.combine(params, static)")
    probe = _Probe(eqx.nn.Linear(3, 2, key=jax.random.key(7)), jax.nn.relu, "probe")
    got = _call(candidate, probe, 2.0, what="a model with a Linear layer, an activation function and a string label",
                hints=(("unsupported operand", partition_hint), ("can't multiply sequence", partition_hint),
                       ("TypeError", partition_hint)))
    expect(isinstance(got, _Probe), f"expected the same kind of model back, got {type(got).__name__}",
           hint="return eqx.combine(scaled_params, static): a model, not just its arrays")
    expect(got.activation is jax.nn.relu and got.label == "probe",
           f"the non-array fields changed: activation={got.activation!r}, label={got.label!r}",
           hint="only arrays should be scaled; 2 * 'probe' is 'probeprobe' in Python: " + partition_hint)
    assert_close(got.linear.weight, 2.0 * probe.linear.weight, what="the scaled weight", hint=partition_hint)
    assert_close(got.linear.bias, 2.0 * probe.linear.bias, what="the scaled bias", hint=partition_hint)
    mlp = eqx.nn.MLP(2, 1, 8, 2, key=jax.random.key(8))
    got = _call(candidate, mlp, 0.5, what="an eqx.nn.MLP")
    for g, e in zip(jax.tree.leaves(eqx.filter(got, eqx.is_array)), jax.tree.leaves(eqx.filter(mlp, eqx.is_array))):
        assert_close(g, 0.5 * e, what="a scaled MLP parameter", hint=partition_hint)
    x = jnp.ones(2)
    expect(bool(jnp.isfinite(got(x)).all()), "the scaled MLP cannot be called", hint=partition_hint)
    return "arrays scaled; activation and label untouched; the scaled MLP runs"
