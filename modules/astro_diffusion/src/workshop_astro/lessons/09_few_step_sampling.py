# %% [markdown]
# # Sampling in a few steps
#
# The reverse SDE needs hundreds of score evaluations (NFE), the adaptive probability-flow
# ODE about a hundred. Written in the right variables, the probability-flow ODE is nearly
# linear, and a few large steps suffice. With $\hat x_0$ the denoised image the network
# implies at $(x_s, s)$, the **DDIM step** (first-order DPM-Solver++) from time $s$ to
# $t < s$ is
#
# $$ x_t = \alpha_t \hat x_0 + \sigma_t\, \frac{x_s - \alpha_s \hat x_0}{\sigma_s}. $$
#
# `workshop_astro.fewstep.dpm_solver_sample` adds a second-order correction from the
# previous step (DPM-Solver++(2M)) for the same cost: one evaluation per step.

# %%
import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

from workshop import check
from workshop.data import fetch
from workshop.hardware import current_preset
from workshop_astro.evaluate import image_grid
from workshop_astro.fewstep import dpm_solver_sample, model_score, time_grid
from workshop_astro.galaxies import load_stamps
from workshop_astro.sde import VPSDE
from workshop_astro.train import TrainConfig, train
from workshop_astro.unet import PRESET_CONFIGS

preset = current_preset()
sde = VPSDE()

# %% [markdown]
# ## Exercise 1: one DDIM step
#
# Write `ddim_step(x, x0_hat, alpha_s, std_s, alpha_t, std_t)`.

# %%
def ddim_step(x, x0_hat, alpha_s, std_s, alpha_t, std_t):
    # BEGIN SOLUTION: estimate the noise from x and x0_hat at s, recombine at t
    eps = (x - alpha_s * x0_hat) / std_s
    return alpha_t * x0_hat + std_t * eps
    # END SOLUTION


# %%
check("astro.ddim_step", ddim_step)

# %% [markdown]
# ## Your sampler against DPM-Solver++(2M)
#
# A quick model first (a few steps under `tiny`; a couple of minutes otherwise). It is
# trained with the plain noise-prediction loss of lesson 08 (`recipe="eps"`) on images in
# $[-1, 1]$, so the denoised estimate $\hat x_0$ can be clipped to the data's range. (The
# demo's EDM model works in per-channel standardised units instead: there the clip would
# be wrong, and the samples are mapped back with `ChannelStats.unstandardise`.)

# %%
data = load_stamps(fetch("astro", "hdf_stamps_32.npz"))
result = train(data.train, PRESET_CONFIGS["tiny" if preset == "tiny" else "cpu"], TrainConfig(batch_size=16, recipe="eps"),
               budget_s=None if preset == "tiny" else 120.0, max_steps=10 if preset == "tiny" else None, progress=False)
model = result.ema
score = model_score(model, sde)
n_steps = 10
ts = jnp.asarray(time_grid(sde, n_steps, spacing="logsnr"), jnp.float32)


@eqx.filter_jit
def ddim_sample(model, key, n):
    score = jax.vmap(model_score(model, sde), in_axes=(0, None))
    x = jax.random.normal(key, (n, 3, 32, 32))
    for i in range(n_steps):
        s, t = ts[i], ts[i + 1]
        a_s, sd_s, a_t, sd_t = sde.marginal_mean_coeff(s), sde.marginal_std(s), sde.marginal_mean_coeff(t), sde.marginal_std(t)
        x0_hat = jnp.clip((x + sd_s**2 * score(x, s)) / a_s, -1, 1)
        x = ddim_step(x, x0_hat, a_s, sd_s, a_t, sd_t)
    return x


key = jax.random.key(0)
mine = ddim_sample(model, key, 8)
ref, nfe = eqx.filter_jit(lambda m, k: dpm_solver_sample(sde, model_score(m, sde), k, (8, 3, 32, 32), n_steps=n_steps,
                                                          clip_denoised=1.0, prediction="data"))(model, key)
print(f"both use {n_steps} score evaluations (DPM-Solver++ reports nfe={int(nfe)})")
fig, ax = plt.subplots(1, 2, figsize=(10, 3))
ax[0].imshow(image_grid(mine, ncols=8)); ax[0].set_title("DDIM (yours)"); ax[0].axis("off")
ax[1].imshow(image_grid(ref, ncols=8)); ax[1].set_title("DPM-Solver++(2M)"); ax[1].axis("off");

# %% [markdown]
# ## Exercise 2: the sampler's last step
#
# The grid stops at $t_\varepsilon = 10^{-3}$, not at 0, and the last iterate $x(t_\varepsilon)$
# still carries noise of standard deviation $\sigma(t_\varepsilon)$ (printed below). It is small,
# but it is pure pixel-scale noise: it adds power at the smallest scales of the power
# spectrum measured in lesson 10 and speckles the faint sky around the galaxies. The
# sampler's output is therefore the **denoised estimate** at $t_\varepsilon$ (Tweedie), for
# one more network evaluation:
#
# $$ \hat x_0 = \frac{x + \sigma(t_\varepsilon)^2\, \nabla_x \log p_{t_\varepsilon}(x)}{\alpha(t_\varepsilon)} . $$
#
# Write `final_denoise(score_fn, sde, x, t_eps)` for ONE image `x`.

# %%
def final_denoise(score_fn, sde, x, t_eps):
    # BEGIN SOLUTION: alpha and std at t_eps; (x + std**2 * score_fn(x, t_eps)) / alpha
    alpha, std = sde.marginal_mean_coeff(t_eps), sde.marginal_std(t_eps)
    return (x + std**2 * score_fn(x, t_eps)) / alpha
    # END SOLUTION


# %%
check("astro.final_denoise", final_denoise)

# %%
t_last = ts[-1]
final = jax.vmap(lambda x: final_denoise(score, sde, x, t_last))(mine)
print(f"t_eps = {float(t_last):.0e}: noise std {float(sde.marginal_std(t_last)):.4f}; "
      f"the last step changes the pixels by {float(jnp.abs(final - mine).mean()):.4f} on average (one more evaluation)")

# %% [markdown]
# With a model trained for a few steps both show blobs; `workshop run astro` trains for
# minutes and evaluates 100 samples drawn this way.
