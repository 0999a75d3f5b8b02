"""Checks for the intro exercises.

Each check runs the participant's function on several inputs, usually under the
transform the lesson is about (``jit``, ``vmap``, ``grad``), compares with a reference,
and, when the answer is wrong, recognises the typical mistake (a reused key, Python
control flow on a traced value, an in-place update, a missing ``vmap``, ...) and says
what to do instead.
"""

from __future__ import annotations

from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from workshop.checking import CheckFailed, NotAttempted, assert_close, call, expect

from . import langevin as lv

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


# --- lesson 01: the NumPy API ---------------------------------------------------------------


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


# --- lesson 02: transforms ------------------------------------------------------------------


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


# --- lesson 03: pytrees ---------------------------------------------------------------------


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


# --- lesson 04: trace time vs run time ------------------------------------------------------


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


# --- lesson 05: ecosystem -------------------------------------------------------------------


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


# --- lesson 06: Langevin --------------------------------------------------------------------


def _mixtures():
    yield lv.default_mixture()
    yield lv.GaussianMixture(jnp.array([0.5, 0.3, 0.2]), jnp.array([[0.0, 0.0], [2.0, 1.0], [-1.0, 2.5]]),
                             jnp.array([0.8, 1.2, 0.6]))


def _batched_score(log_terms: Callable) -> Callable:
    """Scores at a batch of points of ``logsumexp_k log_terms(x, w, m, s)_k``, jitted once for every call."""

    def score(x, weights, means, stds):
        return jax.grad(lambda y: jax.nn.logsumexp(log_terms(y, weights, means, stds)))(x)

    return jax.jit(jax.vmap(score, in_axes=(0, None, None, None)))


def _sq_dist(x, m):
    return jnp.sum((x - m) ** 2, -1)


# The score of the log density written with a typical mistake, and the hint that fixes it.
_SCORE_MISTAKES = {
    "the -d log s_k normalisation term is missing": (
        _batched_score(lambda x, w, m, s: jnp.log(w) - 0.5 * _sq_dist(x, m) / s**2),
        "each component's log density has -d log s_k (its normalisation): without it wide components weigh too much"),
    "s_k is used where the variance s_k² belongs": (
        _batched_score(lambda x, w, m, s: jnp.log(w) - 0.5 * _sq_dist(x, m) / s - x.shape[-1] * jnp.log(s)),
        "the exponent is -|x - m_k|² / (2 s_k²): divide by the variance, the std squared"),
    "the 1/2 in the exponent is missing": (
        _batched_score(lambda x, w, m, s: jnp.log(w) - _sq_dist(x, m) / s**2 - x.shape[-1] * jnp.log(s)),
        "the exponent is -|x - m_k|² / (2 s_k²)"),
}
_analytic_scores = jax.jit(jax.vmap(lv.analytic_score, in_axes=(None, 0)))
_mixture_scores = jax.jit(jax.vmap(lv.score, in_axes=(None, 0)))
_densities = jax.jit(jax.vmap(lambda mix, x: jnp.exp(lv.log_density(mix, x)), in_axes=(None, 0)))


def mixture_score(candidate: Callable) -> str:
    """``mixture_score(x, weights, means, stds)``: ``∇ log p(x)`` of an isotropic Gaussian mixture at one point.

    Tested on points drawn from two mixtures (one with unequal weights and stds, so that a
    missing weight, a missing ``d log s_k`` or a variance in place of a std changes the
    answer) and on points far from every mode, where a log-density written as
    ``log(sum(exp(...)))`` underflows to ``log 0`` and its gradient to NaN.
    """
    _function(candidate)
    grad_hint = ("write log p(x) = logsumexp_k [log w_k - |x - m_k|² / (2 s_k²) - d log s_k] (+ a constant) "
                 "and return jax.grad of it")
    far = jnp.array([[30.0, -25.0], [-40.0, 12.0], [60.0, 60.0]])
    for mix in _mixtures():
        xs = jnp.concatenate([lv.sample(mix, jax.random.key(11), 6), far])
        f = jax.jit(jax.vmap(candidate, in_axes=(0, None, None, None)))
        got = _call(f, xs, mix.weights, mix.means, mix.stds, what=f"6 points near the modes and 3 far from them, "
                    f"{mix.weights.shape[0]} components, under jit(vmap)")
        expected = _analytic_scores(mix, xs)
        if getattr(got, "shape", None) == expected.shape and not _allclose(got, expected, rtol=1e-3, atol=1e-4):
            got_np = np.asarray(got)
            if not np.isfinite(got_np[-3:]).all() and np.isfinite(got_np[:-3]).all():
                raise CheckFailed("the score is NaN or infinite far from the modes (e.g. at x = (30, -25)), right near them: "
                                  "exp(-|x - m|² / 2s²) underflows to 0 there and log(0) is -inf",
                                  hint="compute log Σ_k exp(a_k) with jax.nn.logsumexp(a), which subtracts the largest "
                                       "a_k first and never underflows")
            dens = _densities(mix, xs)[:, None]
            uniform = lv.GaussianMixture(jnp.full_like(mix.weights, 1.0 / mix.weights.shape[0]), mix.means, mix.stds)
            if _allclose(got[:-3], (dens * expected)[:-3], rtol=1e-3, atol=1e-6):
                raise CheckFailed("this is the gradient of the density p(x), not of log p(x)",
                                  hint="the score is ∇ log p = ∇p / p: differentiate the log density "
                                       "(jax.nn.logsumexp over the components)")
            if _allclose(got, -expected, rtol=1e-3, atol=1e-4):
                raise CheckFailed("the score has the wrong sign",
                                  hint="the score points uphill, towards the modes: grad of +log p")
            if _allclose(got, _analytic_scores(uniform, xs), rtol=1e-3, atol=1e-4):
                raise CheckFailed("the mixture weights are missing",
                                  hint="each component's term inside the logsumexp starts with log w_k")
        mistakes = {name: (lambda v=v: v(xs, mix.weights, mix.means, mix.stds), hint)
                    for name, (v, hint) in _SCORE_MISTAKES.items()}
        assert_close(got, expected, what="the score", rtol=1e-3, atol=1e-4, hint=grad_hint, mistakes=mistakes)
    return "matches the closed-form score on two mixtures, near the modes and far from them, under jit and vmap"


def _raise_batch(x):
    raise TypeError(f"score_fn takes one point of shape (d,), got shape {x.shape}")


def langevin_step(candidate: Callable) -> str:
    """``langevin_step(key, x, score_fn, step_size)``: ``x + ε score(x) + √(2ε) z`` for a batch of particles.

    Run with two keys on the same particles (a step that ignores its key gives the same
    particles twice) and with two step sizes; the noise is judged by its statistics
    (independent of the score, N(0, 1) in units of √(2ε), different for every particle)
    and the drift by the regression of the update on the score, which names a missing,
    reversed or unscaled drift.
    """
    _function(candidate)
    step_hint = "x + step_size * jax.vmap(score_fn)(x) + jnp.sqrt(2 * step_size) * jax.random.normal(key, x.shape)"
    mix = lv.default_mixture()
    x = lv.sample(mix, jax.random.key(12), 4000)

    def score_fn(y):
        if y.ndim != 1:
            _raise_batch(y)
        return lv.score(mix, y)

    scores = _mixture_scores(mix, x)
    s = np.asarray(scores)
    step = jax.jit(candidate, static_argnums=2)
    exact, previous = 0, None
    for key_seed, eps in ((13, 0.05), (14, 0.05), (15, 0.2)):
        key = jax.random.key(key_seed)
        got = _call(step, key, x, score_fn, eps,
                    what=f"4000 particles of shape (4000, 2), step_size={eps}, under jit",
                    hints=(("score_fn takes one point", "score_fn takes one point: apply it to the batch with "
                                                        "jax.vmap(score_fn)(x)"),))
        expect(getattr(got, "shape", None) == x.shape, f"expected particles of shape {x.shape}, got "
               f"{getattr(got, 'shape', type(got).__name__)}", hint=step_hint)
        if previous is not None and eps == previous[0]:
            expect(not _allclose(got, previous[1], rtol=0, atol=0),
                   "two different keys gave exactly the same particles: the step ignores its key",
                   hint="draw the noise from the key argument: jax.random.normal(key, x.shape), not from a key made "
                        "inside the function")
        previous = (eps, got)
        drift = x + eps * scores
        if _allclose(got, drift + jnp.sqrt(2 * eps) * jax.random.normal(key, x.shape)):
            exact += 1
            continue
        # drawn differently: judge the update by its statistics. z should be N(0, 1) and
        # uncorrelated with the score; a missing or wrong drift shows up as a correlation.
        z = np.asarray((got - drift) / jnp.sqrt(2 * eps))
        std = float(z.std())
        beta = float(np.sum(z * s) / np.sum(s * s))
        coef = 1.0 + beta * np.sqrt(2 * eps) / eps  # the multiple of ε score(x) actually added
        if std < 1e-3:
            raise CheckFailed("there is no noise: this is gradient ascent, not Langevin dynamics",
                              hint="add jnp.sqrt(2 * step_size) * jax.random.normal(key, x.shape)")
        if np.allclose(z[0], z[1:], atol=1e-5):
            raise CheckFailed("every particle got the same noise vector",
                              hint="draw one noise vector per particle: jax.random.normal(key, x.shape)")
        if abs(beta) >= 0.05:
            for value, name, fix in (
                    (0.0, "the drift ε score(x) is missing", "add step_size * jax.vmap(score_fn)(x)"),
                    (-1.0, "the drift goes down the score (x - ε score(x))",
                     "Langevin moves uphill, towards high density: x + step_size * score"),
                    (2.0, "the drift is twice ε score(x)", "the drift is step_size * score, without a factor 2"),
                    (1.0 / eps, "the score is not multiplied by step_size", "the drift is step_size * score(x)")):
                if abs(coef - value) < 0.1 * max(1.0, abs(value)):
                    raise CheckFailed(f"the drift is wrong: {name} (measured {coef:+.2f} ε score(x) at "
                                      f"step_size={eps})", hint=fix)
        noise_scale = std * np.sqrt(2 * eps)  # the measured std of the noise term
        for value, name, fix in (
                (np.sqrt(eps), "the noise std is √ε, not √(2ε)", "the noise std is sqrt(2 * step_size)"),
                (2 * eps, "the noise std is 2ε, not √(2ε): the square root is missing",
                 "the noise std is sqrt(2 * step_size)"),
                (eps, "the noise std is ε, not √(2ε)", "the noise std is sqrt(2 * step_size)"),
                (1.0, "the noise is not scaled by √(2ε)", "multiply the normal draws by sqrt(2 * step_size)")):
            if abs(std - 1.0) >= 0.03 and abs(noise_scale - value) < 0.03 * value:
                raise CheckFailed(f"{name} (measured {noise_scale:.3f} at step_size={eps})", hint=fix)
        expect(abs(beta) < 0.05, f"the drift is wrong: what is left after removing x + ε score(x) still depends on the "
               f"score (regression slope {beta:+.3f}, expected 0)", hint=step_hint)
        expect(abs(std - 1.0) < 0.03 and float(np.abs(z.mean(axis=0)).max()) < 0.05,
               f"the noise should be N(0, 2ε): measured std {std:.3f} in units of √(2ε)", hint=step_hint)
    if exact == 3:
        return "exactly x + ε score(x) + √(2ε) z for two keys and two step sizes"
    return ("drift ε score(x) and noise of std √(2ε) for two keys and two step sizes (noise drawn differently, "
            "but its statistics are right)")
