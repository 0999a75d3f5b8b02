# %% [markdown]
# # Sampling with Diffrax
#
# [Diffrax](https://docs.kidger.site/diffrax/) solves differential equations in JAX with
# one entry point, `diffeqsolve`, over small composable pieces:
#
# * a **term**: `ODETerm(f)` for $dy = f(t, y)\,dt$; `ControlTerm(g, brownian)` for
#   $g\,dW$; `MultiTerm` adds them;
# * a **solver**: `Euler`, `Heun`, `Tsit5` (5th order, adaptive), ...;
# * a **step-size controller**: `ConstantStepSize()` or `PIDController(rtol, atol)`,
#   which shrinks or grows the step to keep the local error below the tolerances.
#
# It integrates backwards when `t1 < t0`, which is just what the probability-flow ODE
# needs (from $T$ down to $t_\varepsilon$).

# %%
import diffrax
import jax
import jax.numpy as jnp

from workshop import check
from workshop.hardware import current_preset
from workshop_astro.metrics import reference_level
from workshop_astro.metrics import sliced_wasserstein as library_sliced_wasserstein
from workshop_astro.sampling import probability_flow_drift as library_pf_drift
from workshop_astro.sampling import probability_flow_sample, reverse_sde_sample
from workshop_astro.sde import VPSDE
from workshop_astro.toy import GaussianMixture

preset = current_preset()
sde, gm = VPSDE(), GaussianMixture.default()
score_fn = lambda x, t: gm.score(x, t, sde)

# %% [markdown]
# ## Exercise 1: the probability-flow ODE in Diffrax
#
# Write `probability_flow_solve(sde, score_fn, x_T, t_eps)` for a batch `x_T` of shape
# `(B, 2)`. The ODE's state is the whole batch; the velocity is
# `jax.vmap` of `library_pf_drift(sde, score_fn, x, t)` (the function you wrote in
# lesson 04) over the batch. Use `Tsit5` with a `PIDController(rtol=1e-5, atol=1e-5)`,
# `t0=sde.T`, `t1=t_eps`, `dt0=None` (Diffrax picks the first step), and return the
# state at `t_eps`.

# %%
def probability_flow_solve(sde, score_fn, x_T, t_eps):
    # BEGIN SOLUTION: an ODETerm with the vmapped velocity, Tsit5, a PIDController; return sol.ys[-1]
    batched = jax.vmap(library_pf_drift, in_axes=(None, None, 0, None))
    term = diffrax.ODETerm(lambda t, y, args: batched(sde, score_fn, y, t))
    sol = diffrax.diffeqsolve(
        term, diffrax.Tsit5(), t0=sde.T, t1=t_eps, dt0=None, y0=x_T,
        stepsize_controller=diffrax.PIDController(rtol=1e-5, atol=1e-5),
    )
    return sol.ys[-1]
    # END SOLUTION


# %%
check("astro.probability_flow_solve", probability_flow_solve)

# %% [markdown]
# ## Exercise 2: a metric for samples
#
# To say how close samples are to data we need a distance between point clouds. In 1-D
# the Wasserstein-2 distance between two equal-size samples matches sorted values:
# $W_2^2 = \frac1n \sum_i (x_{(i)} - y_{(i)})^2$. The **sliced** Wasserstein distance
# projects both clouds on many random directions and averages.
#
# Write `sliced_wasserstein(x, y, directions)` for clouds `x`, `y` of shape `(n, d)` and
# unit directions as columns of `directions` `(d, P)`: project, sort each projection
# along the points, and return the square root of the mean squared difference.

# %%
def sliced_wasserstein(x, y, directions):
    # BEGIN SOLUTION: project with x @ directions, sort along axis 0, sqrt(mean squared difference)
    px = jnp.sort(x @ directions, axis=0)
    py = jnp.sort(y @ directions, axis=0)
    return jnp.sqrt(jnp.mean((px - py) ** 2))
    # END SOLUTION


# %%
check("astro.sliced_wasserstein", sliced_wasserstein)

# %% [markdown]
# ## Tolerance, cost and quality
#
# The library's `probability_flow_sample` is the same solve, returning the number of
# score evaluations (NFE) with the samples. Tsit5 costs 6 evaluations per step. Looser
# tolerances mean fewer steps; how much quality do they cost? A metric is only
# meaningful next to the floor set by two independent draws of the data.

# %%
n = {"tiny": 1000, "cpu": 4000}.get(preset, 10000)
data = gm.sample(jax.random.key(0), n)
key_m = jax.random.key(1)
floor = reference_level(lambda k, m: gm.sample(k, m), n, jax.random.key(2))
dirs = jax.random.normal(key_m, (2, 256))
dirs = dirs / jnp.linalg.norm(dirs, axis=0)
print(f"floor (two mixture draws): {float(floor):.4f}")
# The tolerances may be traced values: one compilation serves every tolerance.
ode_sample = jax.jit(lambda key, tol: probability_flow_sample(sde, score_fn, key, (n, 2), rtol=tol, atol=tol))
for tol in (1e-1, 1e-2, 1e-3, 1e-5):
    x, nfe = ode_sample(jax.random.key(3), tol)
    print(f"ODE rtol=atol={tol:g}: NFE {int(nfe):4d}, sliced W {float(sliced_wasserstein(x, data, dirs)):.4f}")

# %% [markdown]
# The reverse SDE with Euler–Maruyama (`reverse_sde_sample`, a `MultiTerm` of an
# `ODETerm` and a `ControlTerm` on a Brownian path, fixed steps):

# %%
sde_sample = jax.jit(lambda key, steps: reverse_sde_sample(sde, score_fn, key, (n, 2), n_steps=steps), static_argnums=1)
for steps in (10, 200):
    x, nfe = sde_sample(jax.random.key(4), steps)
    print(f"reverse SDE {steps:4d} steps: NFE {int(nfe):4d}, sliced W {float(sliced_wasserstein(x, data, dirs)):.4f}")

# %% [markdown]
# Your metric agrees with the library's (which also handles unequal sizes):

# %%
print(float(sliced_wasserstein(x, data, dirs)), float(library_sliced_wasserstein(x, data, key_m)))

# %% [markdown]
# Both samplers also return the states at chosen times with `save_ts=...` (Diffrax's
# `SaveAt(ts=...)`): that is how lesson 04's and the demo's trajectory figures are made.
