# %% [markdown]
# # Exact likelihood through the probability-flow ODE
#
# The probability-flow ODE $dx/dt = v(x, t)$ is a deterministic, invertible map from data
# to noise, so densities transform by the change of variables. In continuous time
# (Chen et al. 2018) the log-density along a path changes by the **divergence** of the
# velocity:
#
# $$ \frac{d}{dt}\log p_t(x(t)) = -\nabla\cdot v(x(t), t)
#   \quad\Longrightarrow\quad
#   \log p_0(x) = \log p_T(x(T)) + \int_0^T \nabla\cdot v(x(t), t)\,dt. $$
#
# Solve the ODE *forward* from the data point, accumulating the divergence, and read the
# prior density at the end: an exact likelihood, up to the solver's tolerance.

# %%
import jax
import jax.numpy as jnp

from workshop import check
from workshop.hardware import current_preset
from workshop_astro.likelihood import log_likelihood
from workshop_astro.sde import VPSDE
from workshop_astro.toy import GaussianMixture

preset = current_preset()
sde, gm = VPSDE(), GaussianMixture.default()
score_fn = lambda x, t: gm.score(x, t, sde)

# %% [markdown]
# ## Exercise 1: the exact divergence
#
# Write `divergence(fn, x)` for a function `fn` from `(d,)` to `(d,)`: the trace of its
# Jacobian at `x`. `jax.jacfwd(fn)(x)` is the `(d, d)` Jacobian (d forward-mode passes:
# cheap for d = 2, too costly for images).

# %%
def divergence(fn, x):
    # BEGIN SOLUTION: the trace of jax.jacfwd(fn)(x)
    return jnp.trace(jax.jacfwd(fn)(x))
    # END SOLUTION


# %%
check("astro.divergence", divergence)

# %% [markdown]
# ## Exercise 2: Hutchinson's estimator
#
# For a random $z$ with $\mathbb E[z z^\top] = I$ (random signs, say),
# $\mathbb E[z^\top J z] = \operatorname{tr} J$. One Jacobian-vector product
# `jax.jvp(fn, (x,), (z,))` gives $Jz$ without forming $J$. Write
# `hutchinson_divergence(fn, x, z)` returning $z^\top J z$.

# %%
def hutchinson_divergence(fn, x, z):
    # BEGIN SOLUTION: Jz from jax.jvp, then the dot product with z
    _, jz = jax.jvp(fn, (x,), (z,))
    return jnp.sum(z * jz)
    # END SOLUTION


# %%
check("astro.hutchinson_divergence", hutchinson_divergence)

# %% [markdown]
# ## The likelihood against the true density
#
# `workshop_astro.likelihood.log_likelihood` integrates the augmented ODE
# $(x, \delta)$ with Tsit5 and returns $\log p(x)$ and the NFE for one point; `vmap` it
# over points. With the exact mixture score, it should reproduce the mixture's
# density. The ODE stops at $t_\varepsilon = 10^{-3}$, so the exact reference is the
# (barely) noised density $p_{t_\varepsilon}$, known in closed form too.

# %%
n_points = {"tiny": 8, "cpu": 32}.get(preset, 128)
pts = gm.sample(jax.random.key(0), n_points)
ll = jax.jit(jax.vmap(lambda x: log_likelihood(sde, score_fn, x, rtol=1e-5, atol=1e-5)))
logp, nfe = ll(pts)
exact = gm.marginal_log_prob(pts, 1e-3, sde)
for a, b, k in zip(logp[:8], exact[:8], nfe[:8]):
    print(f"ODE log p {float(a):8.4f}   exact {float(b):8.4f}   |difference| {abs(float(a - b)):.1e}   NFE {int(k)}")
print(f"largest relative error over {n_points} points: {float(jnp.max(jnp.abs((logp - exact) / exact))):.1e}")

# %% [markdown]
# The remaining differences (about $10^{-3}$) do not come from the solver: they come from
# using $\mathcal N(0, I)$ as the density at $T$, where the true $p_T$ still carries a
# trace of the data ($\alpha(T) \approx 0.007$). Passing the exact $p_T$ as
# `prior_logp=` brings them down to the solver's tolerance (the tests do this).
#
# ## Hutchinson: unbiased, but noisy
#
# One probe per solve gives an unbiased but noisy log-likelihood; averaging many
# solves recovers the exact value. In 2-D the exact trace is cheaper; in image space
# (lesson 07 onwards) Hutchinson is the only option.

# %%
n_probes = {"tiny": 32, "cpu": 128}.get(preset, 512)
x = pts[0]
hutch = jax.jit(jax.vmap(lambda k: log_likelihood(sde, score_fn, x, divergence="hutchinson", key=k)[0]))
est = hutch(jax.random.split(jax.random.key(1), n_probes))
print(f"exact trace {float(logp[0]):.4f}; Hutchinson over {n_probes} probes {float(est.mean()):.4f} "
      f"± {float(est.std() / n_probes**0.5):.4f} (one probe: std {float(est.std()):.3f})")

# %% [markdown]
# ## Likelihood compares models
#
# The mean log-likelihood of held-out data ranks score models: the exact score against
# the score of the single Gaussian with the data's mean and covariance (whose
# probability flow produces exactly that Gaussian).

# %%
data = gm.sample(jax.random.key(2), 4096)
mu, cov = data.mean(0), jnp.cov(data.T)


def gaussian_fit_score(x, t):
    alpha, std = sde.marginal_mean_coeff(t), sde.marginal_std(t)
    c = alpha**2 * cov + std**2 * jnp.eye(2)
    return -jnp.linalg.solve(c, x - alpha * mu)


ll_gauss = jax.jit(jax.vmap(lambda x: log_likelihood(sde, gaussian_fit_score, x)[0]))(pts)
print(f"mean log-likelihood: mixture score {float(logp.mean()):.3f}, Gaussian fit {float(ll_gauss.mean()):.3f}, "
      f"true density {float(gm.log_prob(pts).mean()):.3f}")
