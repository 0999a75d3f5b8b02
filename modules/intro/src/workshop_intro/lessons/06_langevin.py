# %% [markdown]
# # Warm-up: Langevin dynamics with an exact score
#
# Score-based generative models (the astro module) sample a distribution $p$ using only
# its **score** $\nabla_x \log p(x)$: a vector field pointing uphill in probability.
# Here we know $p$ exactly, a mixture of two Gaussians in 2-D, so we get the score with
# `jax.grad` of the log density, and study the sampler on its own:
#
# $$ x_{k+1} = x_k + \varepsilon\, \nabla \log p(x_k) + \sqrt{2\varepsilon}\, z_k, \qquad z_k \sim \mathcal N(0, I). $$
#
# For small $\varepsilon$ and many steps, the particles are distributed as $p$, in
# principle. In practice we will see it go wrong, and fix it with the idea diffusion
# models are built on: annealing over noise levels.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from workshop import check
from workshop.hardware import current_preset
from workshop_intro import langevin as lv
from workshop_intro.figures import langevin_figure, plot_score_field

preset = current_preset()
n_particles, n_steps = {"tiny": (400, 420), "cpu": (2000, 1050), "gpu": (10_000, 2100), "full": (50_000, 4200)}[preset]
print("preset:", preset, "| particles:", n_particles, "| steps:", n_steps)
mix = lv.default_mixture()
print("weights:", mix.weights, "| means:", mix.means.tolist(), "| stds:", mix.stds)

# %% [markdown]
# ## Exercise 1: the score of a Gaussian mixture
#
# For weights $w_k$, means $m_k$ and standard deviations $s_k$ in $d$ dimensions,
#
# $$ \log p(x) = \log \sum_k w_k\, \mathcal N(x; m_k, s_k^2 I) =
#    \operatorname{logsumexp}_k \Big[\log w_k - \frac{|x - m_k|^2}{2 s_k^2} - d \log s_k\Big] + \text{const}. $$
#
# Write `mixture_score(x, weights, means, stds)` for **one** point `x` of shape `(d,)`:
# write the log density with `jax.nn.logsumexp` (never `log(sum(exp(...)))`: it
# underflows far from the modes) and return its `jax.grad`.

# %%
def mixture_score(x, weights, means, stds):
    # BEGIN SOLUTION: write log p(x) with jax.nn.logsumexp over the components and return its gradient at x
    def log_p(x):
        sq = jnp.sum((x - means) ** 2, axis=-1)
        return jax.nn.logsumexp(jnp.log(weights) - 0.5 * sq / stds**2 - x.shape[-1] * jnp.log(stds))

    return jax.grad(log_p)(x)
    # END SOLUTION


# %%
check("intro.mixture_score", mixture_score)

# %%
def score_fn(x):
    return mixture_score(x, mix.weights, mix.means, mix.stds)


fig, ax = plt.subplots(figsize=(5, 5))
plot_score_field(ax, mix)
plt.show()

# %% [markdown]
# ## Exercise 2: one Langevin step
#
# Write `langevin_step(key, x, score_fn, step_size)` for a **batch** of particles `x` of
# shape `(n, d)`: `score_fn` takes one point, so vmap it; draw the noise with
# `jax.random.normal(key, x.shape)`; its standard deviation is $\sqrt{2\varepsilon}$.

# %%
def langevin_step(key, x, score_fn, step_size):
    # BEGIN SOLUTION: move x by step_size times the score (vmapped over the batch) plus noise of std sqrt(2 * step_size)
    noise = jax.random.normal(key, x.shape)
    return x + step_size * jax.vmap(score_fn)(x) + jnp.sqrt(2.0 * step_size) * noise
    # END SOLUTION


# %%
check("intro.langevin_step", langevin_step)

# %% [markdown]
# ## Plain Langevin
#
# Start the particles uniformly on the square $[-8, 8]^2$ and run `n_steps` steps with
# `lax.scan` (one fresh key per step, from `jax.random.split`):

# %%
@jax.jit
def run_langevin(key, x0):
    def body(x, k):
        return langevin_step(k, x, score_fn, 0.1), None

    x, _ = jax.lax.scan(body, x0, jax.random.split(key, n_steps))
    return x


key = jax.random.key(0)
k_init, k_plain, k_annealed, k_exact = jax.random.split(key, 4)
x0 = lv.initial_particles(k_init, n_particles)
plain = run_langevin(k_plain, x0)
exact = lv.sample(mix, k_exact, 20_000)
w_plain = lv.mode_weights(mix, plain)
print("true weights:   ", np.round(np.asarray(mix.weights), 3))
print("plain Langevin: ", np.round(np.asarray(w_plain), 3))
print("starting points:", np.round(np.asarray(lv.mode_weights(mix, x0)), 3), "<- the share of each basin at the start")
print(f"sliced W2 to exact samples: {float(lv.sliced_wasserstein(plain, exact)):.2f}")

# %% [markdown]
# ## What went wrong
#
# Each mode looks fine, but the **weights** are those of the starting points, not of
# $p$. Two reasons:
#
# 1. **The score is blind to the weights.** Near a mode the score is that mode's own
#    Gaussian score, whatever its weight: the weights enter only through the
#    responsibilities, which are 0 or 1 away from the boundary between the basins.
# 2. **Low-density regions are never crossed.** Between the modes $p$ is tiny; a particle
#    would need an enormous excursion against the score to cross, which takes
#    (exponentially) long. (With a *learned* score it is worse: the score is also
#    inaccurate exactly there, where there was no data to learn from.)
#
# Measured: the score of our mixture and of the same mixture with **equal** weights,
# near each mode:

# %%
equal = lv.GaussianMixture(jnp.full(2, 0.5), mix.means, mix.stds)
for point in ([-3.5, -3.0], [4.5, 3.0]):
    p = jnp.array(point)
    print(f"at {point}: score {np.round(np.asarray(score_fn(p)), 4)} | "
          f"with equal weights {np.round(np.asarray(lv.score(equal, p)), 4)}")

# %% [markdown]
# ## Annealing over noise levels
#
# Add Gaussian noise of scale $\sigma$ to samples of $p$: the result is distributed as
# $p_\sigma = p * \mathcal N(0, \sigma^2 I)$, for our mixture the same mixture with
# standard deviations $\sqrt{s_k^2 + \sigma^2}$. For large $\sigma$ the modes overlap,
# there is no low-density region, and Langevin spreads the particles in proportion to
# the weights. **Annealed Langevin** runs a few steps at each $\sigma$ of a decreasing
# ladder, down to $\sigma = 0$ (the target itself), with a step size proportional to the
# variance at that level; the split made at large $\sigma$ carries down. Same total
# number of steps as plain Langevin, same starting points:

# %%
sigmas = lv.default_sigmas()
print("noise levels:", np.round(np.asarray(sigmas), 2))
annealed = jax.jit(lv.annealed_langevin, static_argnums=4)(mix, k_annealed, x0, sigmas, n_steps // len(sigmas), 0.1)
comparison = lv.summarize(mix, x0, plain, annealed, lv.sample(mix, k_init, n_particles), exact)
print("true weights:     ", np.round(np.asarray(mix.weights), 3))
print("plain Langevin:   ", np.round(np.asarray(comparison.plain_weights), 3))
print("annealed Langevin:", np.round(np.asarray(comparison.annealed_weights), 3))
print(f"sliced W2 to exact samples: plain {float(comparison.plain_distance):.2f}, "
      f"annealed {float(comparison.annealed_distance):.2f}, "
      f"an exact sample of the same size {float(comparison.exact_distance):.2f} (the metric's noise floor)")

# %% [markdown]
# The whole comparison in one figure (`workshop run intro` writes the same figure):

# %%
langevin_figure(mix, comparison)
plt.show()

# %% [markdown]
# ## Where this leads
#
# Annealed Langevin with the exact score of $p_\sigma$ is the sampler of *noise
# conditional score networks*; replace the exact score by a network $s_\theta(x, \sigma)$
# trained to denoise, and the ladder of $\sigma$ by a continuous time $t$, and you have
# the score-based diffusion models of the astro module.
