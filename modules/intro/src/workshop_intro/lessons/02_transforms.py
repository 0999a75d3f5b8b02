# %% [markdown]
# # Function transforms: jit, vmap, grad, jacobians, scan
#
# JAX's core idea: a **transform** takes a Python function and returns a new function.
#
# | transform | returns |
# |---|---|
# | `jax.jit(f)` | the same function, compiled by XLA |
# | `jax.vmap(f)` | `f` applied along a batch axis, without a Python loop |
# | `jax.grad(f)` | the gradient of a scalar `f` |
# | `jax.value_and_grad(f)` | `(f(x), grad f(x))` in one pass |
# | `jax.jacfwd(f)`, `jax.jacrev(f)` | the Jacobian matrix (forward / reverse mode) |
# | `jax.lax.scan(step, init, xs)` | a loop with a carried state, compiled once |
#
# Transforms compose: `jax.jit(jax.vmap(jax.grad(f)))` is an ordinary function too.
# Every timing below is measured now, on this machine.

# %%
import jax
import jax.numpy as jnp
import numpy as np

from workshop import check
from workshop.hardware import current_preset
from workshop_intro.timing import best_time, grad_vs_finite_differences, jit_speedup, polynomial_chain, vmap_vs_loop

preset = current_preset()
size = {"tiny": 20_000, "cpu": 1_000_000, "gpu": 10_000_000, "full": 50_000_000}[preset]
repeats = 2 if preset == "tiny" else 5
print("preset:", preset, "| devices:", jax.devices())

# %% [markdown]
# ## jit: compile once, run fast
#
# Without `jit`, JAX runs one operation at a time: each `*` or `+` below is its own
# kernel, reading and writing a whole temporary array. `jax.jit` traces the function
# once, hands the whole computation to the XLA compiler, which **fuses** the operations
# into one pass. Compilation costs time once; we measure it apart from the runs
# (and we wait for results with `block_until_ready`, since JAX dispatches asynchronously).

# %%
print(polynomial_chain.__doc__.splitlines()[0])
x = jnp.linspace(0.0, 1.0, size)
t = jit_speedup(polynomial_chain, x, repeats=repeats)
print(f"{size:,} elements: eager {t.eager_s * 1e3:.2f} ms | jitted {t.jit_s * 1e3:.2f} ms "
      f"-> {t.speedup:.1f}x | compile once: {t.compile_s * 1e3:.0f} ms "
      f"(pays for itself after {t.break_even_calls:.1f} calls)")

# %% [markdown]
# The first call of a `jax.jit` function pays the compile time; later calls with the same
# shapes and dtypes reuse the compiled code:

# %%
f = jax.jit(polynomial_chain)
first = best_time(f, x, repeats=1)
later = best_time(f, x, repeats=repeats)
print(f"first call {first * 1e3:.1f} ms (traces and compiles), later calls {later * 1e3:.2f} ms")

# %% [markdown]
# ## vmap: write for one example, run on a batch
#
# `jax.vmap(f)` turns a function of one example into a function of a batch. It is not a
# loop: it rewrites every operation to act on the batch axis, so a matrix-vector product
# becomes a matrix-matrix product.

# %%
def predict(x):
    """A tiny two-layer map of one input of shape (16,)."""
    w = jnp.linspace(-1.0, 1.0, 16 * 32).reshape(16, 32)
    return jnp.sum(jnp.tanh(jnp.tanh(x @ w) @ w.T))


xs = jax.random.normal(jax.random.key(0), ({"tiny": 50, "cpu": 500, "gpu": 2000, "full": 5000}[preset], 16))
vt = vmap_vs_loop(predict, xs, repeats=repeats)
print(f"{xs.shape[0]} examples: Python loop {vt.loop_s * 1e3:.2f} ms, vmap {vt.vmap_s * 1e3:.3f} ms "
      f"-> {vt.speedup:.0f}x; same answers (max difference {vt.max_abs_difference:.1e})")

# %% [markdown]
# `in_axes` says which arguments carry the batch (`None`: shared by all examples).

# %%
def scaled(x, s):
    return s * x


print(jax.vmap(scaled, in_axes=(0, None))(jnp.arange(3.0), 10.0))
print(jax.vmap(scaled, in_axes=(None, 0))(jnp.arange(3.0), jnp.array([1.0, 2.0])))

# %% [markdown]
# ## Exercise 1: pairwise squared distances with two vmaps
#
# Write `pairwise_sq_distances(xs, ys)` for `xs` of shape `(n, d)` and `ys` of shape
# `(m, d)`, returning the `(n, m)` matrix with entries $|x_i - y_j|^2$. Write the
# distance of **one** pair, then vmap it twice: the outer vmap over `xs`, the inner over
# `ys`. No broadcasting tricks needed.

# %%
def pairwise_sq_distances(xs, ys):
    # BEGIN SOLUTION: write the squared distance of one pair, then vmap it over ys (inside) and over xs (outside)
    def sq_dist(x, y):
        return jnp.sum((x - y) ** 2)

    return jax.vmap(lambda x: jax.vmap(lambda y: sq_dist(x, y))(ys))(xs)
    # END SOLUTION


# %%
check("intro.pairwise_sq_distances", pairwise_sq_distances)

# %% [markdown]
# ## grad: exact derivatives of Python functions
#
# `jax.grad(f)` differentiates a **scalar** function with respect to its first argument
# (`argnums` picks others) by reverse-mode automatic differentiation: exact to rounding,
# at the cost of a few evaluations of `f`, whatever the number of inputs. Finite
# differences need two evaluations **per input** and trade truncation against rounding:

# %%
gc = grad_vs_finite_differences(jnp.linspace(-1.5, 1.5, 100), repeats=repeats)
print(f"Rosenbrock in 100-D, float32: jax.grad relative error {gc.grad_error:.1e}")
for h, err in gc.fd_errors.items():
    print(f"  central differences, h={h:g}: relative error {err:.1e}")
print(f"time per gradient: grad {gc.grad_s * 1e6:.0f} us, finite differences {gc.fd_s * 1e6:.0f} us")

# %% [markdown]
# ## Exercise 2: a loss and its gradient in one pass
#
# Write `loss_and_grad(w, x, y)` returning `(loss, gradient)` for the least-squares loss
# $L(w) = \mathrm{mean}_i (x_i \cdot w - y_i)^2$, with `jax.value_and_grad`. The gradient
# is with respect to `w` (the first argument), so it has the shape of `w`.

# %%
def loss_and_grad(w, x, y):
    # BEGIN SOLUTION: define the loss as a function of w and return jax.value_and_grad of it, at w
    def loss(w):
        return jnp.mean((x @ w - y) ** 2)

    return jax.value_and_grad(loss)(w)
    # END SOLUTION


# %%
check("intro.loss_and_grad", loss_and_grad)

# %% [markdown]
# ## Jacobians: jacfwd and jacrev
#
# For $f: \mathbb R^n \to \mathbb R^m$ the Jacobian is the $m \times n$ matrix
# $J_{ij} = \partial f_i / \partial x_j$. `jax.jacfwd` builds it column by column
# (forward mode: cheap when $n$ is small), `jax.jacrev` row by row (reverse mode: cheap
# when $m$ is small). Both give the same matrix.

# %% [markdown]
# ## Exercise 3: the Jacobian of a map
#
# Write `jacobian(f, x)` returning the Jacobian of `f` at `x`, of shape `(m, n)`.
# (`jax.grad` will not do: it needs a scalar output.)

# %%
def jacobian(f, x):
    # BEGIN SOLUTION: return the (m, n) Jacobian of f at x with a forward-mode transform
    return jax.jacfwd(f)(x)
    # END SOLUTION


# %%
check("intro.jacobian", jacobian)

# %%
def polar(r_theta):
    r, theta = r_theta
    return jnp.stack([r * jnp.cos(theta), r * jnp.sin(theta)])


p = jnp.array([2.0, 0.3])
print("jacfwd:\n", jax.jacfwd(polar)(p))
print("jacrev:\n", jax.jacrev(polar)(p))
print("det J = r:", float(jnp.linalg.det(jax.jacfwd(polar)(p))))

# %% [markdown]
# ## lax.scan: loops with a carried state
#
# A Python `for` loop inside `jit` is unrolled: 1000 steps become 1000 copies of the
# body, and compilation gets slow. `jax.lax.scan(step, init, xs)` compiles the body
# **once**: `step(carry, x) -> (new_carry, output)` runs over the leading axis of `xs`,
# and scan returns `(final_carry, stacked_outputs)`.

# %%
def cumulative_sum(values):
    def step(total, v):
        total = total + v
        return total, total

    return jax.lax.scan(step, 0.0, values)


final, partial_sums = cumulative_sum(jnp.arange(1.0, 6.0))
print(final, partial_sums, "| NumPy:", np.cumsum(np.arange(1.0, 6.0)))

# %% [markdown]
# ## Exercise 4: an AR(1) trajectory with scan
#
# The AR(1) process $x_{t+1} = a\,x_t + \varepsilon_t$ is the simplest stochastic
# dynamics. Write `ar1_trajectory(x0, a, noise)` returning $x_1, \dots, x_T$ (one value
# per noise value, **not** including $x_0$) with `jax.lax.scan`.

# %%
def ar1_trajectory(x0, a, noise):
    # BEGIN SOLUTION: write step(x, e) -> (new state, output) and scan it over the noise from x0; return the outputs
    def step(x, e):
        new = a * x + e
        return new, new

    _, xs = jax.lax.scan(step, x0, noise)
    return xs
    # END SOLUTION


# %%
check("intro.ar1_trajectory", ar1_trajectory)

# %% [markdown]
# ## Composing transforms
#
# Transforms compose freely. The derivative of the final AR(1) state with respect to
# $a$, for a whole batch of noise sequences, compiled:

# %%
noise = jax.random.normal(jax.random.key(1), (8, 20))
d_final_d_a = jax.jit(jax.vmap(jax.grad(lambda a, e: ar1_trajectory(1.0, a, e)[-1]), in_axes=(None, 0)))
print(d_final_d_a(0.9, noise))
