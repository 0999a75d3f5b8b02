# %% [markdown]
# # Uncertainty: the posterior of a galaxy's parameters with NumPyro
#
# The least-squares fit of the previous lesson gives one answer. How sure are we of
# each number, and which of them trade off against each other? Bayesian inference
# answers with the **posterior**: the distribution of the parameters given the image.
# **NumPyro** writes the model as a plain Python function of `numpyro.sample`
# statements and samples the posterior with NUTS (the No-U-Turn Sampler, Hamiltonian
# Monte Carlo that tunes its own path length), using JAX's gradients and `jit`.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import numpyro
import numpyro.distributions as dist

from workshop import check
from workshop.hardware import current_preset
from workshop_wrapup.fit import fit_sersic
from workshop_wrapup.inference import sersic_priors
from workshop_wrapup.sersic import PARAM_NAMES, SersicParams, make_galaxy, observed_model

preset = current_preset()
size = {"tiny": 24, "cpu": 48, "gpu": 64, "full": 64}[preset]
warmup, samples = {"tiny": (100, 100), "cpu": (300, 400), "gpu": (500, 1000), "full": (1000, 2000)}[preset]
galaxy = make_galaxy(jax.random.key(0), size=size, noise_sigma=0.1)

# %% [markdown]
# ## The priors
#
# What we believe before seeing the image: the brightness is positive and could be off
# by orders of magnitude (log-normal), the radius is anywhere from half a pixel to the
# stamp size (log-uniform), the index and ellipticity are bounded, the centre is near
# the middle.

# %%
PRIORS = sersic_priors(galaxy.image.shape)
for name in PARAM_NAMES:
    d = PRIORS[name]
    print(f"{name:12s} {type(d).__name__}(" + ", ".join(f"{a}={float(getattr(d, a)):.3g}" for a in d.arg_constraints) + ")")

# %% [markdown]
# ## Exercise 6: the model
#
# Write `model(image, psf, sigma)`:
#
# 1. build the priors for the image the model is given, `priors = sersic_priors(psf.shape)`
#    (the radius and centre priors depend on the stamp size, so `PRIORS` above fits only
#    this lesson's galaxy), then sample each parameter: `numpyro.sample(name, priors[name])`
#    for every `name` in `PARAM_NAMES` (in that order), and collect them in a `SersicParams`;
# 2. compute the expected image `observed_model(params, psf)`;
# 3. declare the pixels observed with Gaussian noise:
#    `numpyro.sample("image", dist.Normal(expected, sigma).to_event(2), obs=image)`.
#    (`.to_event(2)` says the two image axes form one observation.)

# %%
def model(image, psf, sigma):
    # BEGIN SOLUTION: priors = sersic_priors(psf.shape); sample the 7 parameters from them into SersicParams, then numpyro.sample("image", dist.Normal(observed_model(params, psf), sigma).to_event(2), obs=image)
    priors = sersic_priors(psf.shape)
    params = SersicParams(*(numpyro.sample(name, priors[name]) for name in PARAM_NAMES))
    expected = observed_model(params, psf)
    numpyro.sample("image", dist.Normal(expected, sigma).to_event(2), obs=image)
    # END SOLUTION


# %%
check("wrapup.sersic_model", model)

# %% [markdown]
# ## Sampling with NUTS
#
# We start the chain at the least-squares fit (`init_to_value`), which saves a long
# search, and keep the run short for the workshop. `dense_mass=True` lets the warm-up
# learn the correlations between parameters, so each sample needs fewer gradient steps.

# %%
from numpyro.infer import MCMC, NUTS, init_to_value

fit = fit_sersic(galaxy.image, galaxy.psf, galaxy.noise_sigma)
start = init_to_value(values={k: jnp.asarray(v) for k, v in zip(PARAM_NAMES, fit.params)})
mcmc = MCMC(NUTS(model, init_strategy=start, dense_mass=True), num_warmup=warmup, num_samples=samples, progress_bar=False)
mcmc.run(jax.random.key(1), galaxy.image, galaxy.psf, galaxy.noise_sigma)
post = {k: np.asarray(v) for k, v in mcmc.get_samples().items()}
truth = galaxy.truth.as_dict()
for name in PARAM_NAMES:
    lo, hi = np.quantile(post[name], [0.005, 0.995])
    print(f"{name:12s} {post[name].mean():8.4f} ± {post[name].std():.4f}  99% [{lo:.4f}, {hi:.4f}]  truth {truth[name]:.4f}"
          f"  {'inside' if lo <= truth[name] <= hi else 'outside'}")

# %% [markdown]
# ## Uncertainty plots
#
# Each panel is a marginal posterior, the truth in black. The last panel shows a
# correlation: a slightly larger, slightly fainter galaxy fits the image almost as
# well, so `r_eff` and `amplitude` are anti-correlated, an uncertainty that a single
# best-fit number hides.

# %%
fig, axes = plt.subplots(2, 4, figsize=(13, 6))
for ax, name in zip(axes.ravel(), PARAM_NAMES):
    ax.hist(post[name], bins=25, density=True, color="#7a9cc6")
    ax.axvline(truth[name], color="k", lw=2)
    ax.set_title(f"{name}: {post[name].mean():.3f} ± {post[name].std():.3f}", fontsize=9)
axes[1, 3].scatter(post["r_eff"], post["amplitude"], s=4)
axes[1, 3].plot(truth["r_eff"], truth["amplitude"], "k*", ms=12)
axes[1, 3].set_xlabel("r_eff")
axes[1, 3].set_ylabel("amplitude")
plt.tight_layout()
plt.show()
print("correlation of r_eff and amplitude:", round(float(np.corrcoef(post["r_eff"], post["amplitude"])[0, 1]), 2))

# %% [markdown]
# ## Where to go next
#
# * the JAX scaling book, *How to Scale Your Model*: https://jax-ml.github.io/scaling-book/
# * JAX's tutorials on distributed arrays, `shard_map` and multi-process environments:
#   https://docs.jax.dev/en/latest/
# * the Equinox awesome list: https://docs.kidger.site/equinox/awesome-list/
# * awesome-jax: https://github.com/lockwo/awesome-jax
# * Optimistix https://docs.kidger.site/optimistix/, Lineax https://docs.kidger.site/lineax/,
#   NumPyro https://num.pyro.ai/
