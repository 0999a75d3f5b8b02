# %% [markdown]
# # The score and denoising score matching
#
# To run the forward process backwards we need, at every time $t$, the **score**
# $\nabla_x \log p_t(x)$ of the noised data: a vector field pointing to where the data
# is denser. For a Gaussian it is simple:
#
# $$ \nabla_x \log \mathcal N(x;\ m,\ \sigma^2 I) = -\frac{x - m}{\sigma^2}. $$

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

from workshop import check
from workshop.hardware import current_preset
from workshop_astro import toy_figures
from workshop_astro.sde import VPSDE
from workshop_astro.toy import GaussianMixture
from workshop_astro.toy_train import train_toy

preset = current_preset()

# %% [markdown]
# ## Exercise 1: the score of a Gaussian
#
# Write `gaussian_score(x, mean, std)` for arrays `x`, `mean` of any (equal) shape and a
# scalar `std`.

# %%
def gaussian_score(x, mean, std):
    # BEGIN SOLUTION: -(x - mean) / std**2
    return -(x - mean) / std**2
    # END SOLUTION


# %%
check("astro.gaussian_score", gaussian_score)

# %% [markdown]
# ## A mixture whose score we know at every time
#
# If the data is a mixture of Gaussians $\sum_k w_k \mathcal N(\mu_k, \Sigma_k)$, the VP
# marginal at time $t$ is again a mixture,
# $\sum_k w_k \mathcal N(\alpha \mu_k,\ \alpha^2 \Sigma_k + \sigma^2 I)$, so its score is
# exact: the responsibility-weighted pull of each component. That is our ground truth.

# %%
sde, gm = VPSDE(), GaussianMixture.default()
exact = jax.jit(lambda x, t: gm.score(x, t, sde))
x = jnp.array([0.2, -0.4])
print("exact score at t=0.1:", exact(x, 0.1))
print("jax.grad of the exact log-density:", jax.grad(lambda y: gm.marginal_log_prob(y, 0.1, sde))(x))

# %%
toy_figures.score_field_figure({"exact score": exact}, (0.01, 0.1, 0.4))

# %% [markdown]
# ## Denoising score matching
#
# For real data $p_t$ is unknown, but the score of the *conditional* $p(x_t \mid x_0)$
# is the Gaussian score above: with $x_t = \alpha x_0 + \sigma\varepsilon$ it is
# $-\varepsilon / \sigma$. Vincent (2011) showed that regressing a model on it,
#
# $$ \mathcal L = \mathbb E_{t, x_0, \varepsilon}\Big[\lambda(t)\,
#    \big\| s_\theta(x_t, t) + \varepsilon / \sigma(t) \big\|^2\Big], $$
#
# has the same minimiser as regressing on the true score $\nabla \log p_t$. With the
# weighting $\lambda(t) = \sigma(t)^2$ every time contributes on the same scale.
#
# ## Exercise 2: the DSM loss
#
# Write `dsm_loss(model, sde, x0, t, eps)`: `model(x, t)` scores ONE sample (use
# `jax.vmap(model)(x_t, t)` for the batch), `x0` and `eps` have shape `(B, 2)`, `t` shape
# `(B,)`. Return the mean over the batch and the dimensions of
# $\sigma(t)^2 (s_\theta(x_t, t) + \varepsilon/\sigma(t))^2$.

# %%
def dsm_loss(model, sde, x0, t, eps):
    # BEGIN SOLUTION: noise x0 to x_t, score it with vmap, weight the squared error by std^2, average
    std = sde.marginal_std(t)[:, None]
    xt = sde.marginal_mean_coeff(t)[:, None] * x0 + std * eps
    score = jax.vmap(model)(xt, t)
    return jnp.mean(std**2 * (score + eps / std) ** 2)
    # END SOLUTION


# %%
check("astro.dsm_loss", dsm_loss)

# %% [markdown]
# Even the exact score does not reach zero loss: the conditional target
# $-\varepsilon/\sigma$ is noisy around $\nabla \log p_t$. Only the *differences*
# between models are meaningful.

# %%
key = jax.random.key(0)
x0 = gm.sample(key, 4096)
t = jax.random.uniform(jax.random.key(1), (4096,), minval=1e-3, maxval=1.0)
eps = jax.random.normal(jax.random.key(2), x0.shape)
for name, model in {"exact score": lambda x, t: gm.score(x, t, sde),
                    "score of N(0, I)": lambda x, t: -x,
                    "zero": lambda x, t: jnp.zeros_like(x)}.items():
    print(f"{name:18s} DSM loss {float(dsm_loss(model, sde, x0, t, eps)):.4f}")

# %% [markdown]
# ## Training a small score model
#
# `workshop_astro.toy_train.train_toy` minimises the same loss (with stratified times)
# for a time-conditioned MLP with Optax's Adam. Under the `tiny` preset it trains only
# briefly; the learned field already points the right way at larger $t$.

# %%
steps = {"tiny": 200, "cpu": 2000}.get(preset, 5000)
result = train_toy(lambda k, n: gm.sample(k, n), sde, jax.random.key(3), n_steps=steps, chunk=100)
print(f"loss: first 100 steps {float(result.losses[:100].mean()):.3f}, last 100 {float(result.losses[-100:].mean()):.3f}")
learned = jax.jit(lambda x, t: jax.vmap(result.ema_model, in_axes=(0, None))(x, t))
toy_figures.score_field_figure({"exact": exact, "learned": learned}, (0.05, 0.2, 0.5))

# %%
pts = gm.sample(jax.random.key(4), 2000)
for t in (0.05, 0.2, 0.5):
    noisy = sde.marginal(pts, t)[0] + sde.marginal_std(t) * jax.random.normal(jax.random.key(5), pts.shape)
    err = jnp.mean(jnp.sum((learned(noisy, t) - exact(noisy, t)) ** 2, -1))
    ref = jnp.mean(jnp.sum(exact(noisy, t) ** 2, -1))
    print(f"t={t}: relative squared error of the learned score {float(err / ref):.3f}")
