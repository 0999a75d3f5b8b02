# %% [markdown]
# # Ecosystem tour: Equinox + Optax, Diffrax, Lineax
#
# JAX itself is arrays and transforms. The libraries the later modules use sit on top,
# all as pytrees and pure functions, so they compose with `jit`, `vmap` and `grad`:
#
# * **Equinox**: neural networks as pytrees (lesson 3);
# * **Optax**: optimisers as pairs of pure functions `init(params)` / `update(grads, state)`;
# * **Diffrax**: ODE and SDE solvers (differentiable: `jax.grad` goes through a whole
#   solve, which is how neural ODEs are trained);
# * **Lineax**: linear solvers that use the structure of the operator you declare.

# %%
import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import matplotlib.pyplot as plt
import numpy as np
import optax

from workshop import check
from workshop.hardware import current_preset

preset = current_preset()
n_steps = {"tiny": 300, "cpu": 2000, "gpu": 3000, "full": 5000}[preset]
print("preset:", preset, "| training steps:", n_steps)

# %% [markdown]
# ## Equinox + Optax: fit an MLP to a noisy sine
#
# An Equinox layer acts on **one** example; `jax.vmap(model)(x)` applies it to a batch.

# %%
key = jax.random.key(0)
k_data, k_noise, k_model = jax.random.split(key, 3)
x_train = jax.random.uniform(k_data, (128, 1), minval=-3.0, maxval=3.0)
y_train = jnp.sin(x_train) + 0.1 * jax.random.normal(k_noise, x_train.shape)
model = eqx.nn.MLP(in_size=1, out_size=1, width_size=32, depth=2, activation=jax.nn.tanh, key=k_model)

# %% [markdown]
# ## Exercise 1: the loss of a model over a batch
#
# Write `mlp_loss(model, x, y)` returning the mean squared error between the model's
# predictions for the batch `x` and the targets `y`. Calling `model(x)` on the whole
# batch fails (or silently does the wrong thing): vmap the model.

# %%
def mlp_loss(model, x, y):
    # BEGIN SOLUTION: vmap the model over the batch and return the mean squared error
    pred = jax.vmap(model)(x)
    return jnp.mean((pred - y) ** 2)
    # END SOLUTION


# %%
check("intro.mlp_loss", mlp_loss)

# %% [markdown]
# A training step: `eqx.filter_value_and_grad` differentiates in the model's arrays,
# Optax turns gradients into updates, `eqx.apply_updates` applies them. The whole step is
# compiled with `eqx.filter_jit`.

# %%
optimizer = optax.adam(1e-2)
opt_state = optimizer.init(eqx.filter(model, eqx.is_array))


@eqx.filter_jit
def train_step(model, opt_state, x, y):
    loss, grads = eqx.filter_value_and_grad(mlp_loss)(model, x, y)
    updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
    return eqx.apply_updates(model, updates), opt_state, loss


losses = []
for step in range(n_steps):
    model, opt_state, loss = train_step(model, opt_state, x_train, y_train)
    losses.append(float(loss))
print(f"loss: {losses[0]:.3f} at the start, {losses[-1]:.4f} after {n_steps} steps")

# %%
grid = jnp.linspace(-3, 3, 200)[:, None]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].semilogy(losses)
axes[0].set(xlabel="step", ylabel="training loss")
axes[1].scatter(np.asarray(x_train), np.asarray(y_train), s=8, label="data")
axes[1].plot(np.asarray(grid), np.asarray(jax.vmap(model)(grid)), color="k", label="MLP")
axes[1].legend()
plt.show()

# %% [markdown]
# ## Diffrax: solve an ODE
#
# The damped pendulum $\ddot\theta = -\sin\theta - 0.2\,\dot\theta$ as a first-order
# system. `diffrax.diffeqsolve` takes a term (the vector field), a solver, the time
# span, an initial step, the initial state, and where to save.

# %%
def pendulum(t, y, args):
    theta, omega = y
    return jnp.stack([omega, -jnp.sin(theta) - args * omega])


ts = jnp.linspace(0.0, 20.0, 200)
solution = diffrax.diffeqsolve(
    diffrax.ODETerm(pendulum), diffrax.Tsit5(), t0=0.0, t1=20.0, dt0=0.05,
    y0=jnp.array([2.5, 0.0]), args=0.2, saveat=diffrax.SaveAt(ts=ts),
    stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-6),
)
print("solver steps taken:", int(solution.stats["num_steps"]), "| final angle:", float(solution.ys[-1, 0]))
energy = 0.5 * solution.ys[:, 1] ** 2 - jnp.cos(solution.ys[:, 0])
print(f"energy: {float(energy[0]):.3f} at t=0, {float(energy[-1]):.3f} at t=20 (damping dissipates it)")

# %%
plt.figure(figsize=(6, 3))
plt.plot(np.asarray(ts), np.asarray(solution.ys[:, 0]), label="θ")
plt.plot(np.asarray(ts), np.asarray(solution.ys[:, 1]), label="ω")
plt.xlabel("t")
plt.legend()
plt.show()

# %% [markdown]
# ## Lineax: solve a linear system
#
# `lineax.linear_solve(operator, b, solver)` solves $A x = b$. The operator carries what
# you know about $A$ as *tags*: a symmetric positive definite matrix can use a Cholesky
# factorisation (twice as cheap as LU, and stable). The answer is in `.value` of the
# returned `Solution`.

# %% [markdown]
# ## Exercise 2: solve a symmetric positive definite system
#
# Write `solve_spd(A, b)` returning `x` with `A x = b` using `lx.MatrixLinearOperator`
# with the tag `lx.positive_semidefinite_tag` and the solver `lx.Cholesky()`.

# %%
def solve_spd(A, b):
    # BEGIN SOLUTION: wrap A in an operator tagged positive semidefinite, solve with Cholesky, return the solution's value
    operator = lx.MatrixLinearOperator(A, lx.positive_semidefinite_tag)
    return lx.linear_solve(operator, b, solver=lx.Cholesky()).value
    # END SOLUTION


# %%
check("intro.solve_spd", solve_spd)

# %% [markdown]
# A 1-D Poisson problem $-u'' = f$ on a grid is the textbook SPD system:

# %%
n = 50
laplacian = (2 * jnp.eye(n) - jnp.eye(n, k=1) - jnp.eye(n, k=-1)) * (n + 1) ** 2
xg = jnp.linspace(0, 1, n + 2)[1:-1]
u = solve_spd(laplacian, jnp.pi**2 * jnp.sin(jnp.pi * xg))
print(f"max error against the exact solution sin(pi x): {float(jnp.max(jnp.abs(u - jnp.sin(jnp.pi * xg)))):.1e}")
