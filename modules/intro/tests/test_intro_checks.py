"""Every intro check passes on a correct answer, reports a stub as not attempted, and
recognises the typical mistakes it names, with the hint that fixes them."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from workshop import resolve
from workshop.checking import CheckFailed, NotAttempted
from workshop_intro import checks
from workshop_intro.plugin import CHECKS

# --- correct answers (the same code as the lessons' solutions) -------------------------------


def set_diagonal(a, value):
    a = jnp.asarray(a)
    i = jnp.arange(a.shape[0])
    return a.at[i, i].set(value)


def two_normals(key, n):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, (n,)), jax.random.normal(k2, (n,))


def pairwise_sq_distances(xs, ys):
    return jax.vmap(lambda x: jax.vmap(lambda y: jnp.sum((x - y) ** 2))(ys))(xs)


def loss_and_grad(w, x, y):
    return jax.value_and_grad(lambda w: jnp.mean((x @ w - y) ** 2))(w)


def jacobian(f, x):
    return jax.jacfwd(f)(x)


def ar1_trajectory(x0, a, noise):
    def step(x, e):
        new = a * x + e
        return new, new

    return jax.lax.scan(step, x0, noise)[1]


def sgd_step(params, grads, lr):
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)


def scale_weights(model, factor):
    params, static = eqx.partition(model, eqx.is_array)
    return eqx.combine(jax.tree.map(lambda p: factor * p, params), static)


def piecewise(x):
    return jnp.where(x > 1.0, x**2, 2.0 * x - 1.0)


def newton_sqrt(a):
    return jax.lax.while_loop(lambda x: jnp.abs(x * x - a) > 1e-6 * a, lambda x: 0.5 * (x + a / x), a)


def power_static(fn):
    return jax.jit(fn, static_argnames="n")


def safe_norm(x):
    s = jnp.sum(x**2)
    safe = jnp.where(s > 0, s, 1.0)
    return jnp.where(s > 0, jnp.sqrt(safe), 0.0)


def mlp_loss(model, x, y):
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)


def solve_spd(a, b):
    op = lx.MatrixLinearOperator(a, lx.positive_semidefinite_tag)
    return lx.linear_solve(op, b, solver=lx.Cholesky()).value


def mixture_score(x, weights, means, stds):
    def log_p(x):
        sq = jnp.sum((x - means) ** 2, axis=-1)
        return jax.nn.logsumexp(jnp.log(weights) - 0.5 * sq / stds**2 - x.shape[-1] * jnp.log(stds))

    return jax.grad(log_p)(x)


def langevin_step(key, x, score_fn, step_size):
    z = jax.random.normal(key, x.shape)
    return x + step_size * jax.vmap(score_fn)(x) + jnp.sqrt(2 * step_size) * z


CORRECT = {f.__name__: f for f in (
    set_diagonal, two_normals, pairwise_sq_distances, loss_and_grad, jacobian, ar1_trajectory, sgd_step,
    scale_weights, piecewise, newton_sqrt, power_static, safe_norm, mlp_loss, solve_spd, mixture_score,
    langevin_step)}

# --- typical mistakes, each with (a piece of) the hint its check must give --------------------


def _mutating_set_diagonal(a, value):
    for i in range(a.shape[0]):
        a[i, i] = value
    return a


def _numpy_mutating_set_diagonal(a, value):
    a = np.asarray(a)  # no copy for a NumPy input: the caller's array is changed
    np.fill_diagonal(a, value)
    return jnp.asarray(a)


def _numpy_copy(a, value):
    a = np.array(a)  # a copy: correct eagerly, but NumPy cannot hold the tracer jit passes in
    np.fill_diagonal(a, value)
    return a


def _same_key(key, n):
    return jax.random.normal(key, (n,)), jax.random.normal(key, (n,))


def _parent_key_reused(key, n):
    _, k2 = jax.random.split(key)
    return jax.random.normal(key, (n,)), jax.random.normal(k2, (n,))


def _global_numpy_random(key, n):
    return jnp.asarray(np.random.standard_normal(n), jnp.float32), jnp.asarray(np.random.standard_normal(n), jnp.float32)


def _swapped_vmaps(xs, ys):
    return jax.vmap(lambda y: jax.vmap(lambda x: jnp.sum((x - y) ** 2))(xs))(ys)


def _distances(xs, ys):
    return jnp.sqrt(pairwise_sq_distances(xs, ys))


def _grad_wrt_x(w, x, y):
    return jax.value_and_grad(lambda x, w: jnp.mean((x @ w - y) ** 2))(x, w)


def _summed_loss(w, x, y):
    return jax.value_and_grad(lambda w: jnp.sum((x @ w - y) ** 2))(w)


def _grad_only(w, x, y):
    return jax.grad(lambda w: jnp.mean((x @ w - y) ** 2))(w)


def _grad_of_vector(f, x):
    return jax.grad(f)(x)


def _transposed_jacobian(f, x):
    return jax.jacfwd(f)(x).T


def _final_only(x0, a, noise):
    return jax.lax.scan(lambda x, e: (a * x + e, None), x0, noise)[0]


def _old_state(x0, a, noise):
    return jax.lax.scan(lambda x, e: (a * x + e, x), x0, noise)[1]


def _mutating_sgd(params, grads, lr):
    params["encoder"]["w"] = params["encoder"]["w"] - lr * grads["encoder"]["w"]
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)


def _flattened_sgd(params, grads, lr):
    return [p - lr * g for p, g in zip(jax.tree.leaves(params), jax.tree.leaves(grads))]


def _ascent(params, grads, lr):
    return jax.tree.map(lambda p, g: p + lr * g, params, grads)


def _map_everything(model, factor):
    return jax.tree.map(lambda p: p * factor, model)


def _forgot_combine(model, factor):
    return jax.tree.map(lambda p: factor * p, eqx.filter(model, eqx.is_array))


def _python_if(x):
    if x > 1.0:
        return x**2
    return 2.0 * x - 1.0


def _python_while(a):
    x = a
    while jnp.abs(x * x - a) > 1e-6 * a:
        x = 0.5 * (x + a / x)
    return x


def _no_loop(a):
    return jnp.sqrt(a)


def _not_static(fn):
    return jax.jit(fn)


def _x_static(fn):
    return jax.jit(fn, static_argnums=0)


def _not_jitted(fn):
    return fn


def _naive_norm(x):
    return jnp.sqrt(jnp.sum(x**2))


def _single_where(x):
    s = jnp.sum(x**2)
    return jnp.where(s > 0, jnp.sqrt(s), 0.0)


def _no_vmap_loss(model, x, y):
    return jnp.mean((model(x) - y) ** 2)


def _returns_solution(a, b):
    return lx.linear_solve(lx.MatrixLinearOperator(a, lx.positive_semidefinite_tag), b, solver=lx.Cholesky())


def _untagged_cholesky(a, b):
    return lx.linear_solve(lx.MatrixLinearOperator(a), b, solver=lx.Cholesky()).value


def _grad_of_density(x, weights, means, stds):
    def p(x):
        sq = jnp.sum((x - means) ** 2, axis=-1)
        d = x.shape[-1]
        return jnp.sum(weights * jnp.exp(-0.5 * sq / stds**2) / (2 * jnp.pi * stds**2) ** (d / 2))

    return jax.grad(p)(x)


def _no_weights(x, weights, means, stds):
    return mixture_score(x, jnp.ones_like(weights), means, stds)


def _minus_score(x, weights, means, stds):
    return -mixture_score(x, weights, means, stds)


def _no_vmap_step(key, x, score_fn, step_size):
    return x + step_size * score_fn(x) + jnp.sqrt(2 * step_size) * jax.random.normal(key, x.shape)


def _small_noise(key, x, score_fn, step_size):
    return x + step_size * jax.vmap(score_fn)(x) + jnp.sqrt(step_size) * jax.random.normal(key, x.shape)


def _no_noise(key, x, score_fn, step_size):
    return x + step_size * jax.vmap(score_fn)(x)


def _no_drift(key, x, score_fn, step_size):
    return x + jnp.sqrt(2 * step_size) * jax.random.normal(jax.random.split(key)[0], x.shape)


def _split_first(key, x, score_fn, step_size):
    _, sub = jax.random.split(key)
    return langevin_step(sub, x, score_fn, step_size)


MISTAKES = {
    "set_diagonal": [(_mutating_set_diagonal, ".at["), (_numpy_mutating_set_diagonal, "immutable"),
                     (_numpy_copy, "use jax.numpy (jnp)")],
    "two_normals": [(_same_key, "split the key"), (_parent_key_reused, "never key itself"),
                    (_global_numpy_random, "hidden global state")],
    "pairwise_sq_distances": [(_swapped_vmaps, "vmap over xs on the outside"), (_distances, "square root")],
    "loss_and_grad": [(_grad_wrt_x, "argnums=0"), (_summed_loss, "mean"), (_grad_only, "value_and_grad")],
    "jacobian": [(_grad_of_vector, "jax.jacfwd"), (_transposed_jacobian, "rows are outputs")],
    "ar1_trajectory": [(_final_only, "stacked outputs"), (_old_state, "not the old one")],
    "sgd_step": [(_mutating_sgd, "build a new tree"), (_flattened_sgd, "keeps the nesting"), (_ascent, "subtracts")],
    "scale_weights": [(_map_everything, "eqx.partition"), (_forgot_combine, "eqx.combine")],
    "piecewise": [(_python_if, "jnp.where")],
    "newton_sqrt": [(_python_while, "while_loop"), (_no_loop, "while_loop")],
    "power_static": [(_not_static, "static_argnames"), (_x_static, "only n"), (_not_jitted, "wrap fn with jax.jit")],
    "safe_norm": [(_naive_norm, "double where"), (_single_where, "double where")],
    "mlp_loss": [(_no_vmap_loss, "jax.vmap(model)(x)")],
    "solve_spd": [(_returns_solution, ".value"), (_untagged_cholesky, "positive_semidefinite_tag")],
    "mixture_score": [(_grad_of_density, "log density"), (_no_weights, "log w_k"), (_minus_score, "uphill")],
    "langevin_step": [(_no_vmap_step, "jax.vmap(score_fn)(x)"), (_small_noise, "sqrt(2 * step_size)"),
                      (_no_noise, "jax.random.normal(key, x.shape)"), (_no_drift, "the drift is wrong")],
}


def _check(name):
    (entry,) = [c for c in CHECKS if c.name == name]
    return resolve(entry.ref)


def test_every_declared_check_has_a_function_a_solution_and_mistakes():
    names = [c.name for c in CHECKS]
    assert len(names) >= 12
    assert sorted(names) == sorted(CORRECT) == sorted(MISTAKES)
    for name in names:
        assert _check(name) is getattr(checks, name)


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_check_passes_on_correct_answer(name):
    verdict = _check(name)(CORRECT[name])
    assert isinstance(verdict, str) and verdict


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_check_reports_stub_as_not_attempted(name):
    def stub(*args, **kwargs):
        ...

    with pytest.raises(NotAttempted):
        _check(name)(stub)


CASES = [(name, fn, hint) for name, items in MISTAKES.items() for fn, hint in items]


@pytest.mark.parametrize("name,mistake,hint", CASES, ids=[f"{n}-{f.__name__}" for n, f, _ in CASES])
def test_check_catches_typical_mistake_with_its_hint(name, mistake, hint):
    with pytest.raises(CheckFailed) as info:
        _check(name)(mistake)
    assert not isinstance(info.value, NotAttempted)
    text = (info.value.hint or "") + " " + info.value.message
    assert hint in text, info.value.render()


def test_check_rejects_a_non_function():
    with pytest.raises(CheckFailed, match="expected a function"):
        checks.piecewise(3.0)


def test_langevin_step_accepts_noise_drawn_another_way():
    assert "statistics" in checks.langevin_step(_split_first)


def test_control_flow_hint_comes_from_the_tracer_error():
    # the core maps TracerBoolConversionError to a hint naming jnp.where / lax.cond / lax.while_loop
    with pytest.raises(CheckFailed) as info:
        checks.piecewise(_python_if)
    assert "TracerBoolConversionError" in info.value.message
    assert "lax.cond" in info.value.hint
