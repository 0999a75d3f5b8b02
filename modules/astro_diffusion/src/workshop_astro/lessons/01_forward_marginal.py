# %% [markdown]
# # The forward process and its marginal
#
# A diffusion model learns to undo a process that slowly turns data into noise. In
# continuous time that process is a stochastic differential equation (SDE)
#
# $$ dx = f(x, t)\,dt + g(t)\,dW, \qquad 0 \le t \le T, $$
#
# where $dW$ is Brownian noise: over a step $dt$ it adds a Gaussian of variance $dt$.
# The **variance-preserving** (VP) SDE of Song et al. (2021) uses
#
# $$ f(x, t) = -\tfrac12 \beta(t)\, x, \qquad g(t) = \sqrt{\beta(t)}, \qquad
#    \beta(t) = \beta_\min + t\,(\beta_\max - \beta_\min) \quad (T = 1). $$
#
# Because $f$ is linear in $x$ and $g$ does not depend on $x$, the distribution of
# $x(t)$ given $x(0)$ is Gaussian **in closed form**. With the *integrated* rate
# $B(t) = \int_0^t \beta(s)\,ds = \beta_\min t + \tfrac12 (\beta_\max - \beta_\min) t^2$:
#
# $$ x(t) \mid x(0) \sim \mathcal N\big(\alpha(t)\, x(0),\ \sigma(t)^2 I\big), \qquad
#    \alpha(t) = e^{-B(t)/2}, \qquad \sigma(t) = \sqrt{1 - e^{-B(t)}}. $$
#
# This is what makes training cheap: we never simulate the SDE to get a noisy sample;
# we draw it in one line.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

from workshop import check
from workshop.hardware import current_preset
from workshop_astro.sde import VESDE, VPSDE, forward_simulate
from workshop_astro.toy import swiss_roll

preset = current_preset()
print("preset:", preset)

# %% [markdown]
# ## Exercise 1: the marginal of the VP SDE
#
# Write `vp_marginal(x0, t, beta_min, beta_max)` returning `(mean, std)`: the mean has
# the shape of `x0`; the std is one number. Use `jnp` functions so that it works under
# `jax.jit` and `jax.vmap`. Careful: the marginal needs the **integral** of $\beta$, not
# $\beta(t)$ itself.

# %%
def vp_marginal(x0, t, beta_min=0.1, beta_max=20.0):
    # BEGIN SOLUTION: compute B(t), then mean = exp(-B/2) * x0 and std = sqrt(1 - exp(-B))
    B = beta_min * t + 0.5 * (beta_max - beta_min) * t**2
    mean = jnp.exp(-0.5 * B) * x0
    std = jnp.sqrt(1.0 - jnp.exp(-B))
    return mean, std
    # END SOLUTION


# %%
check("astro.vp_marginal", vp_marginal)

# %% [markdown]
# ## The closed form against a simulation
#
# `workshop_astro.sde.forward_simulate` integrates the SDE with Euler–Maruyama in
# [Diffrax](https://docs.kidger.site/diffrax/) on a `VirtualBrownianTree`. Start many
# copies of the same point and compare their empirical mean and spread with your
# formula.

# %%
n_paths = {"tiny": 2000, "cpu": 20000}.get(preset, 50000)
sde = VPSDE()
x0 = jnp.full((n_paths, 2), 1.5)
ts = jnp.array([0.0, 0.05, 0.2, 0.5, 1.0])
paths = forward_simulate(sde, x0, jax.random.key(0), ts, dt=1e-2)
for t, xt in zip(ts, paths):
    mean, std = vp_marginal(x0[0], t)
    print(f"t={float(t):.2f}  simulated mean {float(xt[:, 0].mean()):+.3f} vs {float(mean[0]):+.3f}   "
          f"simulated std {float(xt[:, 0].std()):.3f} vs {float(std):.3f}")

# %% [markdown]
# The differences are Monte Carlo noise (of order $\sigma / \sqrt{n}$) plus the
# Euler–Maruyama error of the step `dt`.
#
# ## Exercise 2: noising a batch in one line
#
# Training draws one time per data point. Write `perturb(sde, x0, t, eps)` for a batch
# `x0` of shape `(B, ...)`, times `t` of shape `(B,)` and standard normal noise `eps`:
# return $x_t = \alpha(t)\,x_0 + \sigma(t)\,\varepsilon$ using `sde.marginal_mean_coeff(t)`
# and `sde.marginal_std(t)`. It must work for 2-D points `(B, 2)` and for images
# `(B, C, H, W)`, and for both the VP and the variance-exploding (VE) SDE.

# %%
def perturb(sde, x0, t, eps):
    # BEGIN SOLUTION: reshape alpha(t) and std(t) to (B, 1, ...) and combine x0 and eps
    expand = (slice(None),) + (None,) * (x0.ndim - 1)
    return sde.marginal_mean_coeff(t)[expand] * x0 + sde.marginal_std(t)[expand] * eps
    # END SOLUTION


# %%
check("astro.perturb", perturb)

# %% [markdown]
# ## VP and VE side by side
#
# The VE SDE has no drift: it adds noise of growing scale $\sigma(t)$ and never shrinks
# the data. Both end in pure noise: $\mathcal N(0, I)$ for VP, $\mathcal N(0, \sigma_\max^2 I)$
# for VE.

# %%
t_grid = jnp.linspace(0.0, 1.0, 200)
vp, ve = VPSDE(), VESDE()
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
axes[0].plot(t_grid, jax.vmap(vp.marginal_mean_coeff)(t_grid), label=r"$\alpha(t)$")
axes[0].plot(t_grid, jax.vmap(vp.marginal_std)(t_grid), label=r"$\sigma(t)$")
axes[0].set_title("VP SDE")
axes[1].semilogy(t_grid[1:], jax.vmap(ve.marginal_std)(t_grid[1:]), label=r"$\sigma(t)$")
axes[1].set_title("VE SDE")
for ax in axes:
    ax.set_xlabel("t")
    ax.legend()
plt.show()

# %%
data = swiss_roll(jax.random.key(1), 1000)
key_t, key_e = jax.random.split(jax.random.key(2))
fig, axes = plt.subplots(1, 4, figsize=(12, 3))
for ax, t in zip(axes, (0.0, 0.1, 0.3, 1.0)):
    xt = perturb(vp, data, jnp.full(len(data), t), jax.random.normal(key_e, data.shape))
    ax.scatter(xt[:, 0], xt[:, 1], s=1)
    ax.set_title(f"t = {t}")
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_aspect("equal")
plt.show()
