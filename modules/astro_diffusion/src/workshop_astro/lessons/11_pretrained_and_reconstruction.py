# %% [markdown]
# # Generating with a pretrained model, and reconstructing observations
#
# A 64x64 U-Net was trained on Hubble Deep Field stamps by a committed recipe
# (`datasets/astro_pretrain_64.py`) and ships with the module in bfloat16, with its
# sha256 in the data registry. We sample from it with the few-step solver, then use it as
# a **prior** to reconstruct a blurred, noisy, partly masked observation.
#
# The key quantity is Tweedie's denoised estimate: for $x_t = \alpha x_0 + \sigma \epsilon$,
#
# $$ \mathbb E[x_0 \mid x_t] = \frac{x_t + \sigma^2 \nabla \log p_t(x_t)}{\alpha}. $$
#
# Posterior sampling adds to the prior score the gradient of the likelihood of the
# observation given that estimate (see `workshop_astro.reconstruct`).

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from workshop import check
from workshop.data import fetch
from workshop.hardware import current_preset
from workshop_astro.demos import sample_galaxies
from workshop_astro.evaluate import image_grid
from workshop_astro.fewstep import model_score
from workshop_astro.galaxies import to_image
from workshop_astro.pretrained import PRETRAINED_NAME, load_pretrained, pretrain_stamps, pretrained_stats
from workshop_astro.reconstruct import Degradation, mean_power_spectrum, posterior_sample, richardson_lucy, wiener
from workshop_astro.sde import VPSDE

preset = current_preset()
sde = VPSDE()
model, header = load_pretrained(fetch("astro", PRETRAINED_NAME))
print("pretrained:", header["config"], "|", header["info"].get("steps"), "training steps")
# It was trained with the EDM recipe on images standardised per channel: its samples come
# out in those units, and `stats` maps them back to [-1, 1] (None for a model trained there).
stats = pretrained_stats(header)

# %% [markdown]
# ## Exercise 1: Tweedie's denoiser
# Write `tweedie_denoise(x, score, alpha, std)`.

# %%
def tweedie_denoise(x, score, alpha, std):
    # BEGIN SOLUTION: (x + std^2 * score) / alpha
    return (x + std**2 * score) / alpha
    # END SOLUTION


# %%
check("astro.tweedie_denoise", tweedie_denoise)

# %% [markdown]
# ## Generating

# %%
n, steps = (4, 4) if preset == "tiny" else (16, 20)
images, nfe = sample_galaxies(model, sde, jax.random.key(0), n, steps, 64, batch=n)
if stats is not None:
    images = stats.unstandardise(images)
plt.figure(figsize=(6, 6))
plt.imshow(image_grid(images, ncols=4))
plt.title(f"{n} generated galaxies, {nfe} score evaluations")
plt.axis("off");

# %% [markdown]
# ## Exercise 2: PSNR
# Write `psnr(estimate, truth)` in dB for images in $[-1, 1]$ (data range 2).

# %%
def psnr(estimate, truth):
    # BEGIN SOLUTION: 10 log10(range^2 / mse)
    mse = np.mean((np.asarray(estimate) - np.asarray(truth)) ** 2)
    return 10 * np.log10(4.0 / mse)
    # END SOLUTION


# %%
check("astro.psnr", psnr)

# %% [markdown]
# ## Reconstructing a held-out galaxy
# Blur (FWHM 3 px), noise (std 0.1) and 25 % of the pixels lost; posterior samples vs
# Richardson–Lucy and Wiener deconvolution.

# %%
train64, test64, _ = pretrain_stamps()  # the model's own training stamps and held-out strip
truth = jnp.asarray(test64[0])
deg = Degradation.make(truth.shape, fwhm=3.0, noise_std=0.1, missing=0.25, seed=0)
y = deg.observe(truth, jax.random.key(1))
n_samples, n_steps = (2, 60) if preset == "tiny" else (8, 100)
# Called outside jit, posterior_sample compiles one step and loops in Python: on a CPU a
# U-Net inside lax.scan runs ~30x slower (see its docstring).
# `stats`: the prior works in standardised units; the sampler maps the observation and its
# noise into them and the samples back.
samples, nfe = posterior_sample(sde, model_score(model, sde), deg, y, jax.random.key(2), n_samples=n_samples,
                                n_steps=n_steps, stats=stats)
mean = np.asarray(samples).mean(0)
rl = np.asarray(richardson_lucy(y, deg))
wi = wiener(y, deg, mean_power_spectrum(train64))
panels = [("observation", y), ("posterior mean", mean), ("Richardson-Lucy", rl), ("Wiener", wi), ("truth", truth)]
fig, axes = plt.subplots(1, 5, figsize=(14, 3))
for ax, (name, img) in zip(axes, panels):
    ax.imshow(to_image(np.asarray(img)[None])[0])
    extra = "" if name in ("observation", "truth") else f"\n{psnr(img, truth):.1f} dB"
    ax.set_title(name + extra)
    ax.axis("off")
