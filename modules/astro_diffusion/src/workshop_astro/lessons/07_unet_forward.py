# %% [markdown]
# # A U-Net for galaxy images
#
# From here on the data are real: 32x32 RGB stamps of galaxies cut from the Hubble Deep
# Field (the image that ships with scikit-image), with a held-out strip of sky. The score
# network is a **U-Net**: convolutions at full resolution, then at 1/2, 1/4, ..., and back
# up, with skip connections carrying the fine detail across. Each residual block also
# receives the diffusion time $t$ through a **sinusoidal embedding**, so one network can
# denoise at every noise level.
#
# The network predicts the noise $\epsilon$ added to $x(0)$; the score is
# $-\epsilon / \sigma(t)$.
#
# On a CPU three choices matter (measured in this project): a transposed convolution is
# slow under `vmap`, so we go up by **nearest-neighbour upsampling and a 3x3
# convolution**; group normalisation is optional; and the blocks work **channels last**
# inside, on `(H, W, C)` maps, the layout of XLA's CPU convolution (fed `(C, H, W)`, XLA
# transposes around every convolution and its gradients: 9 % of a training step here).
# The network still takes and returns one `(C, H, W)` image.
#
# One more piece, the **input skip**: the output gets $w(t)\,x + b(t)$ added, two numbers
# per colour channel computed from the time embedding. At high noise the best noise
# prediction is nearly such an affine map of the input; without the skip, every
# convolution has to learn to pass the input through, and zero padding makes that hard
# for the outermost pixels: a short training run leaves noisy stamp borders.

# %%
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

from workshop import check
from workshop.data import fetch
from workshop.hardware import current_preset
from workshop_astro.evaluate import image_grid
from workshop_astro.galaxies import load_stamps
from workshop_astro.unet import PRESET_CONFIGS, count_params, init_unet

preset = current_preset()
data = load_stamps(fetch("astro", "hdf_stamps_32.npz"))
print(f"preset {preset}: {len(data.train)} training and {len(data.test)} held-out galaxies, shape {data.train.shape[1:]}")
plt.figure(figsize=(8, 4))
plt.imshow(image_grid(data.train[::23][:16]))
plt.axis("off");

# %% [markdown]
# ## Exercise 1: nearest-neighbour upsampling
#
# Write `upsample_nearest(x)` that takes one feature map `(C, H, W)` and returns
# `(C, 2H, 2W)` where every pixel becomes a 2x2 block.

# %%
def upsample_nearest(x):
    # BEGIN SOLUTION: repeat each pixel twice along axis 1 and twice along axis 2
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    # END SOLUTION


# %%
check("astro.upsample_nearest", upsample_nearest)

# %% [markdown]
# ## Exercise 2: sinusoidal time features
#
# The time $t \in [0, 1]$ enters as `dim` features: with `half = dim // 2` frequencies
# $\omega_k = \exp(-\log(10000)\, k / (\text{half} - 1))$, the features are
# $\sin(1000\, t\, \omega_k)$ followed by $\cos(1000\, t\, \omega_k)$.

# %%
def time_features(t, dim):
    # BEGIN SOLUTION: angles = 1000 * t * freqs; concatenate sines then cosines
    half = dim // 2
    freqs = jnp.exp(-jnp.log(10_000.0) * jnp.arange(half) / (half - 1))
    angles = 1000.0 * t * freqs
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)])
    # END SOLUTION


# %%
check("astro.time_features", time_features)

# %% [markdown]
# ## Exercise 3: conditioning a block on time
#
# A galaxy at $t = 0.05$ is nearly clean and at $t = 0.9$ nearly pure noise: the same
# block must do very different things, so **every** residual block hears the time. The
# blocks of this U-Net use FiLM: a linear map `proj` turns the time embedding into a
# `scale` and a `shift` per channel, which modulate the block's input *inside* the
# block, before its layers `inner`; the skip path carries the unmodulated `x`:
#
# $$ \text{out} = x + \text{inner}\big(x \odot (1 + \text{scale}) + \text{shift}\big), \qquad
#    (\text{scale}, \text{shift}) = \text{proj}(\text{embed}(t)). $$
#
# The `1 +` lets a freshly initialised block (scale near 0) start close to the identity.
# Write `time_conditioned_block(x, t, inner, proj, embed)` for one feature map `x` of
# shape `(C, H, W)`; `proj` returns `2C` numbers, the scales first.

# %%
def time_conditioned_block(x, t, inner, proj, embed):
    # BEGIN SOLUTION: scale, shift = split(proj(embed(t))); broadcast each over (H, W) with [:, None, None]
    scale, shift = jnp.split(proj(embed(t)), 2)
    return x + inner(x * (1 + scale[:, None, None]) + shift[:, None, None])
    # END SOLUTION


# %%
check("astro.time_conditioned_block", time_conditioned_block)

# %% [markdown]
# With your `time_features` as the embedding, a random `proj` and a 1x1 convolution as
# `inner`, the same galaxy stamp comes out of the block differently at each noise level:

# %%
k1, k2 = jax.random.split(jax.random.key(0))
n_ch, dim = data.train.shape[1], 32
w_t = 0.3 * jax.random.normal(k1, (2 * n_ch, dim))
w_in = 0.5 * jax.random.normal(k2, (n_ch, n_ch))
stamp = jnp.asarray(data.train[0])
outs = {t: time_conditioned_block(stamp, t, lambda h: jnp.tanh(jnp.einsum("dc,chw->dhw", w_in, h)),
                                  lambda e: w_t @ e, lambda t: time_features(t, dim))
        for t in (0.05, 0.5, 0.9)}
for t, out in outs.items():
    print(f"t = {t}: mean |out - x| = {float(jnp.mean(jnp.abs(out - stamp))):.3f}")

# %% [markdown]
# ## The forward pass
#
# The network works on ONE image and one time; `jax.vmap` makes it work on a batch.
# `init_unet` draws the initial weights with NumPy (fast); `UNet(config, key=...)` is the
# Equinox way and gives the same distributions.

# %%
config = PRESET_CONFIGS["tiny" if preset == "tiny" else "cpu"]
model = init_unet(config, seed=0)
print(config)
print(f"{count_params(model):,} parameters")
batched = eqx.filter_jit(jax.vmap(model))
x = jnp.asarray(data.train[:8])
t = jnp.linspace(0.1, 0.9, 8)
t0 = time.perf_counter()
eps_hat = batched(x, t).block_until_ready()
print(f"first call (compiles): {time.perf_counter() - t0:.1f} s; output {eps_hat.shape}")
t0 = time.perf_counter()
batched(x, t).block_until_ready()
print(f"second call: {1000 * (time.perf_counter() - t0):.1f} ms for 8 images")

# %% [markdown]
# A fresh network predicts small outputs everywhere (its last layers start near zero), so
# its first loss is close to 1 (the variance of $\epsilon$). Training is next.
