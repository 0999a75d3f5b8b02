# %% [markdown]
# # Watching data diffuse
#
# The closed-form marginal tells us where a point ends up; a simulation shows how it
# gets there. The simplest SDE solver is **Euler–Maruyama**: over a step $dt$,
#
# $$ x_{t+dt} = x_t + f(x_t, t)\,dt + g(t)\,\sqrt{dt}\; z, \qquad z \sim \mathcal N(0, I). $$
#
# The noise is scaled by $\sqrt{dt}$, not $dt$: Brownian increments have variance $dt$.

# %%
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
from IPython.display import Image, display

from workshop import check
from workshop.hardware import current_preset
from workshop_astro import toy_figures
from workshop_astro.metrics import sliced_wasserstein
from workshop_astro.sde import VPSDE, forward_simulate
from workshop_astro.toy import moons

preset = current_preset()

# %% [markdown]
# ## Exercise: one Euler–Maruyama step
#
# Write `em_step(sde, x, t, dt, z)` for a batch `x`, using `sde.drift(x, t)` and
# `sde.diffusion(t)` (that is $g(t)$, already a square root of $\beta$ for the VP SDE).

# %%
def em_step(sde, x, t, dt, z):
    # BEGIN SOLUTION: x + drift * dt + g(t) * sqrt(dt) * z
    return x + sde.drift(x, t) * dt + sde.diffusion(t) * jnp.sqrt(dt) * z
    # END SOLUTION


# %%
check("astro.em_step", em_step)

# %% [markdown]
# ## A whole path with `jax.lax.scan`
#
# A Python loop over 1000 steps would dispatch 1000 small computations; `jax.lax.scan`
# compiles the loop once. We keep every tenth state for the animation.

# %%
sde = VPSDE()
n_points = {"tiny": 600, "cpu": 2000}.get(preset, 4000)
n_steps = 500
dt = sde.T / n_steps
x0 = moons(jax.random.key(0), n_points)


@jax.jit
def simulate(x0, key):
    def step(x, inputs):
        t, k = inputs
        x = em_step(sde, x, t, dt, jax.random.normal(k, x.shape))
        return x, x

    ts = jnp.arange(n_steps) * dt
    _, xs = jax.lax.scan(step, x0, (ts, jax.random.split(key, n_steps)))
    return xs


start = time.perf_counter()
xs = jax.block_until_ready(simulate(x0, jax.random.key(1)))
print(f"{n_steps} steps for {n_points} points in {time.perf_counter() - start:.2f} s (including compilation)")

# %% [markdown]
# The end state should be the closed-form marginal at $T$. Compare the simulated cloud
# with one drawn directly from $\mathcal N(\alpha(T) x_0, \sigma(T)^2 I)$ using the
# sliced Wasserstein distance (lesson 05 builds it); as a yardstick, two independent
# draws from the closed form are this far apart too.

# %%
def closed_form(t, key):
    mean, std = sde.marginal(x0, t)
    return mean + std * jax.random.normal(key, x0.shape)


k1, k2, k3 = jax.random.split(jax.random.key(2), 3)
for i in (49, 199, n_steps - 1):
    t = (i + 1) * dt
    sim_vs_exact = sliced_wasserstein(xs[i], closed_form(t, k1), k3)
    exact_vs_exact = sliced_wasserstein(closed_form(t, k2), closed_form(t, k1), k3)
    print(f"t={t:.2f}: simulated vs closed form {float(sim_vs_exact):.3f}; two closed-form draws {float(exact_vs_exact):.3f}")

# %% [markdown]
# ## The animation
#
# Time runs faster at the end of the GIF (frames are spaced quadratically in $t$), where
# little changes.

# %%
frame_idx = (jnp.linspace(0.0, 1.0, 24) ** 2 * (n_steps - 1)).astype(int)
frames = jnp.concatenate([x0[None], xs[frame_idx]])
frame_ts = jnp.concatenate([jnp.zeros(1), (frame_idx + 1) * dt])
gif = toy_figures.forward_animation(frames, frame_ts, Path(tempfile.mkdtemp()) / "moons_diffusing.gif", title="moons")
display(Image(filename=str(gif)))

# %% [markdown]
# Diffrax does the same with any solver and a Brownian path that can be queried at any
# time; `forward_simulate` wraps it. Same distribution, different random numbers:

# %%
xs_diffrax = forward_simulate(sde, x0, jax.random.key(3), jnp.array([0.0, 0.3]), dt=dt)
print("sliced Wasserstein, our scan vs diffrax at t=0.3:",
      float(sliced_wasserstein(xs[int(0.3 / dt) - 1], xs_diffrax[-1], k3)))
