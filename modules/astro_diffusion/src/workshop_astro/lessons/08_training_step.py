# %% [markdown]
# # Training to a time budget
#
# Training minimises the **noise-prediction loss**, which is denoising score matching with
# the weighting $\lambda(t) = \sigma(t)^2$:
#
# $$ \mathcal L = \mathbb E_{t, x_0, \epsilon} \big\| \epsilon_\theta(\alpha(t) x_0 + \sigma(t) \epsilon,\ t) - \epsilon \big\|^2 . $$
#
# This is the loss of the exercise below. For the galaxies, `train` uses by default the
# same objective written in other variables, the ones that train fastest for a given
# compute (Karras et al. 2022, "EDM"). Divide $x_t = \alpha(t) x_0 + \sigma(t)\epsilon$ by
# $\alpha(t)$: $y = x_0 + \varsigma\, \epsilon$ with $\varsigma(t) = \sigma(t)/\alpha(t)$. Every
# linear SDE (VP or VE) becomes the same variance-exploding process indexed by $\varsigma$,
# and its probability-flow ODE is $dy/d\varsigma = (y - D(y, \varsigma))/\varsigma$, where the
# **denoiser** $D = \mathbb E[x_0 \mid y]$ is the score in disguise (Tweedie):
#
# $$ \nabla_x \log p_t(x) = \frac{\alpha(t) D(y, \varsigma) - x}{\sigma(t)^2}, \qquad
#    \epsilon_\theta = \frac{y - D(y, \varsigma)}{\varsigma}. $$
#
# EDM changes *how the network is asked*, not what is learned:
#
# * **preconditioning**: $D = c_\text{skip} y + c_\text{out} F_\theta(c_\text{in} y, c_\text{noise})$
#   with $c_\text{in} = 1/\sqrt{\varsigma^2 + \sigma_d^2}$, $c_\text{skip} = \sigma_d^2/(\varsigma^2 + \sigma_d^2)$,
#   $c_\text{out} = \varsigma\sigma_d/\sqrt{\varsigma^2 + \sigma_d^2}$, $c_\text{noise} = \tfrac14 \log \varsigma$:
#   the network's input and its target have unit variance at every noise level;
# * **noise levels** drawn log-normally, $\log \varsigma \sim \mathcal N(P_\text{mean}, P_\text{std}^2)$:
#   the steps go where the loss can still be lowered, not to nearly clean or pure-noise
#   images. EDM's $\mathcal N(-1.2, 1.2^2)$ was tuned for $\sigma_d = 0.5$ and long runs; in
#   five minutes on these stamps it leaves the high noise levels, where the layout of a
#   stamp (one galaxy, in the centre) is decided, nearly untrained, and the samples are
#   scattered clumps. `TrainConfig` draws $\mathcal N(0, 1.8^2)$, measured at equal time in
#   the module's README;
# * **weighting** $\lambda(\varsigma) = 1/c_\text{out}^2$: DSM with this weight is an unweighted
#   MSE on $F_\theta$;
# * **data standardised per channel** (mean 0, standard deviation $\sigma_d = 1$): the stamps
#   are mostly dark sky (mean -0.84, std 0.23 in $[-1, 1]$), so without it the galaxies and
#   their colours are a faint signal under the noise.
#
# The trained `EDMDenoiser` still answers $\epsilon_\theta(x, t)$ for the VP SDE, so the
# score, the samplers and the likelihood of the earlier lessons take it unchanged; the
# demo samples it with DPM-Solver++(2M) directly on the $\varsigma$ grid. Measured at
# equal time on the galaxy demo, the table in the module's README compares this recipe
# with the plain noise-prediction loss (`TrainConfig(recipe="eps")`).
#
# `workshop_astro.train.train` wraps one compiled step (batch drawn from the data with
# `fold_in(key, step)`, a random symmetry of the square per image, Adam with clipping, an
# EMA of the weights) in a loop that:
#
# * measures the step time after compilation and **plans** the number of steps (and the
#   warm-up + cosine learning-rate schedule) to fit the budget;
# * saves a checkpoint atomically, also on Ctrl-C, and **resumes exactly**;
# * shards the batch over every visible device (`jax.sharding`).

# %%
import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from workshop import check
from workshop.data import fetch
from workshop.hardware import current_preset
from workshop_astro.galaxies import channel_stats, load_stamps
from workshop_astro.sde import VPSDE
from workshop_astro.train import TrainConfig, train
from workshop_astro.unet import PRESET_CONFIGS

preset = current_preset()
data = load_stamps(fetch("astro", "hdf_stamps_32.npz"))
stats = channel_stats(data.train)  # per-channel mean and std, to standardise the images
sde = VPSDE()

# %% [markdown]
# ## Exercise 1: scaling the data
#
# The stamps are mostly dark sky, and each colour channel sits at its own level with its
# own spread (printed below). Unit-variance noise would drown the faint galaxies and the
# colour differences between them. So the images are **standardised per channel**: one
# mean and one standard deviation per channel, taken over all images and all pixels
# (axes `N, H, W` of `(N, C, H, W)`), never per image (that would erase how bright a
# galaxy is) nor over all channels together (that would keep the colour imbalance).
#
# Write `standardise(images)` returning `(z, mean, std)` with `mean` and `std` of shape
# `(C,)`, and its inverse `unstandardise(z, mean, std)`. The model then lives in
# standardised units: its samples are *not* images until `unstandardise` maps them back.

# %%
print("per-channel mean", data.train.mean(axis=(0, 2, 3)).round(3), " std", data.train.std(axis=(0, 2, 3)).round(3))


def standardise(images):
    # BEGIN SOLUTION: reduce over axis=(0, 2, 3); broadcast the (C,) statistics with [:, None, None]
    mean = images.mean(axis=(0, 2, 3))
    std = images.std(axis=(0, 2, 3))
    return (images - mean[:, None, None]) / std[:, None, None], mean, std
    # END SOLUTION


def unstandardise(z, mean, std):
    # BEGIN SOLUTION: undo the steps in reverse order: times std, then plus mean
    return z * std[:, None, None] + mean[:, None, None]
    # END SOLUTION


# %%
check("astro.standardise", standardise)
check("astro.unstandardise", unstandardise)

# %%
z, mean, std = standardise(data.train)
print("standardised: per-channel mean", z.mean(axis=(0, 2, 3)).round(3), " std", z.std(axis=(0, 2, 3)).round(3))
print("round trip max error", float(np.abs(unstandardise(z, mean, std) - data.train).max()))

# %% [markdown]
# ## Exercise 2: the loss on a batch
#
# Write `eps_matching_loss(model, sde, x0, t, eps)` for a batch `x0` of shape
# `(B, C, H, W)`, times `t` of shape `(B,)` and noise `eps` like `x0`. `model(x, t)` takes
# ONE image: use `jax.vmap`. `sde.marginal_mean_coeff(t)` and `sde.marginal_std(t)` take
# one time too.

# %%
def eps_matching_loss(model, sde, x0, t, eps):
    # BEGIN SOLUTION: x_t = alpha x0 + std eps (per sample), predict, mean squared error against eps
    alpha = jax.vmap(sde.marginal_mean_coeff)(t)[:, None, None, None]
    std = jax.vmap(sde.marginal_std)(t)[:, None, None, None]
    xt = alpha * x0 + std * eps
    return jnp.mean((jax.vmap(model)(xt, t) - eps) ** 2)
    # END SOLUTION


# %%
check("astro.eps_matching_loss", eps_matching_loss)

# %% [markdown]
# ## Exercise 3: the EMA of the weights
#
# The weights after the last step of a short run carry that step's noise, and a galaxy
# sampled from them shows it. Samplers use instead an **exponential moving average** of
# the weights, updated after every optimiser step with the new weights `params`:
#
# $$ \text{ema} \leftarrow d\, \text{ema} + (1 - d)\, \text{params}, \qquad d = 0.995 . $$
#
# The old average keeps the large weight $d$. A model is a pytree (an Equinox module),
# and not every leaf is an array: an activation function, a flag or a size can be leaves
# too. Average the floating-point arrays and keep every other leaf as it is.
#
# Write `ema_update(ema, params, decay)` with `jax.tree_util.tree_map`.

# %%
def ema_update(ema, params, decay):
    # BEGIN SOLUTION: tree_map over (ema, params); average where eqx.is_inexact_array(p), else keep e
    return jax.tree_util.tree_map(lambda e, p: decay * e + (1 - decay) * p if eqx.is_inexact_array(p) else e,
                                  ema, params)
    # END SOLUTION


# %%
check("astro.ema_update", ema_update)

# %% [markdown]
# ## A budgeted run
#
# Under the `tiny` preset this is a handful of steps; on a laptop CPU give it a few
# minutes (`budget_s`) and watch the progress bar's steps/s and ETA.

# %%
budget = {"tiny": None, "cpu": 120.0}.get(preset, 600.0)
result = train(stats.standardise(data.train), PRESET_CONFIGS["tiny" if preset == "tiny" else "cpu"], TrainConfig(batch_size=16),
               sde=sde, budget_s=budget, max_steps=15 if preset == "tiny" else None,
               checkpoint="galaxy_lesson_checkpoint.eqx")
print(f"{result.steps_done} steps ({result.stopped}), {result.step_time_s:.3f} s/step, "
      f"{result.images_per_s:.0f} images/s; planned {result.plan.total_steps}")

# %%
plt.plot(result.losses)
plt.yscale("log")
plt.xlabel("step")
plt.ylabel("EDM-weighted denoising loss");

# %% [markdown]
# Run the cell again: the checkpoint is found and training resumes where it stopped (with
# nothing left to do if the plan was completed). Delete `galaxy_lesson_checkpoint.eqx` to
# start afresh.
