# %% [markdown]
# # Reverse SDE vs probability-flow ODE
#
# Anderson (1982): the forward SDE $dx = f\,dt + g\,dW$ run backwards in time is again an
# SDE,
#
# $$ dx = \big[f(x, t) - g(t)^2\, \nabla_x \log p_t(x)\big]\,dt + g(t)\, d\bar W, $$
#
# with $t$ running from $T$ down to $0$ and $d\bar W$ fresh noise. Song et al. (2021)
# noticed that the deterministic **probability-flow ODE**
#
# $$ \frac{dx}{dt} = f(x, t) - \tfrac12\, g(t)^2\, \nabla_x \log p_t(x) $$
#
# moves the same marginals $p_t$: half the score pull, and no noise. Both need only the
# score. Here we use the exact mixture score, so any mismatch is the sampler's fault.

# %%
import functools

import jax
import jax.numpy as jnp

from workshop import check
from workshop.hardware import current_preset
from workshop_astro import toy_figures
from workshop_astro.metrics import reference_level, sliced_wasserstein
from workshop_astro.sde import VPSDE
from workshop_astro.toy import GaussianMixture

preset = current_preset()
sde, gm = VPSDE(), GaussianMixture.default()
score_fn = lambda x, t: gm.score(x, t, sde)  # one sample x of shape (2,), scalar t

# %% [markdown]
# ## Exercise 1: the reverse-SDE drift
#
# Write `reverse_sde_drift(sde, score_fn, x, t)` for ONE point `x`: $f(x,t) - g(t)^2 s(x,t)$.

# %%
def reverse_sde_drift(sde, score_fn, x, t):
    # BEGIN SOLUTION: sde.drift(x, t) - sde.diffusion(t)**2 * score_fn(x, t)
    return sde.drift(x, t) - sde.diffusion(t) ** 2 * score_fn(x, t)
    # END SOLUTION


# %%
check("astro.reverse_sde_drift", reverse_sde_drift)

# %% [markdown]
# ## Exercise 2: the probability-flow velocity
#
# Write `probability_flow_drift(sde, score_fn, x, t)`: $f(x,t) - \tfrac12 g(t)^2 s(x,t)$.

# %%
def probability_flow_drift(sde, score_fn, x, t):
    # BEGIN SOLUTION: the same with half the score term
    return sde.drift(x, t) - 0.5 * sde.diffusion(t) ** 2 * score_fn(x, t)
    # END SOLUTION


# %%
check("astro.probability_flow_drift", probability_flow_drift)

# %% [markdown]
# ## Both samplers with the same fixed steps
#
# Integrating from $T$ down to $t_\varepsilon$ with step $dt > 0$, one Euler step is
# $x \leftarrow x - \text{drift}\cdot dt\ (+\ g\sqrt{dt}\,z$ for the SDE$)$. Start both
# from the same noise and keep the paths.

# %%
n = {"tiny": 500, "cpu": 2000}.get(preset, 5000)
n_steps = 200
t_eps = 1e-3
ts = jnp.linspace(sde.T, t_eps, n_steps + 1)
x_T = jax.random.normal(jax.random.key(0), (n, 2))


@jax.jit
def euler_paths(x_T, key):
    rev = jax.vmap(reverse_sde_drift, in_axes=(None, None, 0, None))
    ode = jax.vmap(probability_flow_drift, in_axes=(None, None, 0, None))

    def step(carry, inputs):
        x_sde, x_ode = carry
        t, t_next, k = inputs
        dt = t - t_next
        z = jax.random.normal(k, x_sde.shape)
        x_sde = x_sde - rev(sde, score_fn, x_sde, t) * dt + sde.diffusion(t) * jnp.sqrt(dt) * z
        x_ode = x_ode - ode(sde, score_fn, x_ode, t) * dt
        return (x_sde, x_ode), (x_sde, x_ode)

    _, (paths_sde, paths_ode) = jax.lax.scan(step, (x_T, x_T), (ts[:-1], ts[1:], jax.random.split(key, n_steps)))
    return jnp.concatenate([x_T[None], paths_sde]), jnp.concatenate([x_T[None], paths_ode])


paths_sde, paths_ode = euler_paths(x_T, jax.random.key(1))
data = gm.sample(jax.random.key(2), n)
toy_figures.trajectories_figure(
    {f"reverse SDE (Euler-Maruyama, {n_steps} NFE)": paths_sde, f"probability-flow ODE (Euler, {n_steps} NFE)": paths_ode},
    background=data,
)

# %% [markdown]
# The SDE paths jitter and cross; the ODE paths are smooth and never cross (a flow
# map). Do both land on the data? Measure with the sliced Wasserstein distance, against
# the floor set by two independent draws of the mixture of the same size.

# %%
key_m = jax.random.key(3)
floor = reference_level(lambda k, m: gm.sample(k, m), n, jax.random.key(4))
print(f"two independent mixture draws: {float(floor):.4f}")
for name, paths in (("reverse SDE", paths_sde), ("probability-flow ODE", paths_ode)):
    print(f"{name:22s} {float(sliced_wasserstein(paths[-1], data, key_m)):.4f}")

# %% [markdown]
# ## How many steps does each need?
#
# The number of score evaluations (NFE) is the cost. The ODE is smooth, so a
# higher-order adaptive solver takes few large steps (next lesson); the SDE's noise
# limits Euler–Maruyama to order 1/2, so it needs many small steps.

# %%
@functools.partial(jax.jit, static_argnums=2)
def euler_endpoints(x_T, key, steps):
    tt = jnp.linspace(sde.T, t_eps, steps + 1)
    rev = jax.vmap(reverse_sde_drift, in_axes=(None, None, 0, None))
    ode = jax.vmap(probability_flow_drift, in_axes=(None, None, 0, None))

    def step(carry, inputs):
        x_sde, x_ode = carry
        t, t_next, k = inputs
        dt = t - t_next
        z = jax.random.normal(k, x_sde.shape)
        return (x_sde - rev(sde, score_fn, x_sde, t) * dt + sde.diffusion(t) * jnp.sqrt(dt) * z,
                x_ode - ode(sde, score_fn, x_ode, t) * dt), None

    (x_sde, x_ode), _ = jax.lax.scan(step, (x_T, x_T), (tt[:-1], tt[1:], jax.random.split(key, steps)))
    return x_sde, x_ode


for steps in (10, 30, 100):
    x_sde, x_ode = euler_endpoints(x_T, jax.random.key(5), steps)
    print(f"{steps:4d} Euler steps: SDE {float(sliced_wasserstein(x_sde, data, key_m)):.4f}, "
          f"ODE {float(sliced_wasserstein(x_ode, data, key_m)):.4f}")
