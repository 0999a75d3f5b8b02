"""2-D toy data: a swiss roll, two moons, and a Gaussian mixture with an exact score.

The swiss roll and the moons are scaled to roughly unit variance per coordinate, the
scale the VP SDE's ``N(0, I)`` prior expects.

The Gaussian mixture is the toy's ground truth. Under any linear SDE, ``x(t)`` given
``x(0)`` is ``N(alpha(t) x(0), std(t)^2 I)``, so if ``x(0)`` follows
``sum_k w_k N(mu_k, Sigma_k)`` then ``x(t)`` follows the mixture
``sum_k w_k N(alpha mu_k, alpha^2 Sigma_k + std^2 I)``: its density and its score are
known in closed form at every time. That lets every sampler and likelihood be checked
against the exact answer.

Example::

    >>> from workshop_astro.sde import VPSDE
    >>> gm = GaussianMixture.default()
    >>> x = gm.sample(jax.random.key(0), 1000)          # (1000, 2)
    >>> s = gm.score(x[0], 0.3, VPSDE())                # (2,), exact
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from . import guards
from .sde import SDE

__all__ = ["swiss_roll", "moons", "GaussianMixture", "DATASETS", "sample_dataset"]


def swiss_roll(key: PRNGKeyArray, n: int, noise: float = 0.05) -> Float[Array, "n 2"]:
    """``n`` points of a 2-D swiss roll (a spiral), about unit variance per coordinate."""
    n, noise = guards.count("n", n), guards.positive("noise", noise, zero=True)
    k1, k2 = jax.random.split(key)
    u = jax.random.uniform(k1, (n,))
    angle = 1.5 * jnp.pi * (1.0 + 2.0 * u)
    x = jnp.stack([angle * jnp.cos(angle), angle * jnp.sin(angle)], axis=-1) / 7.0
    return x + noise * jax.random.normal(k2, (n, 2))


def moons(key: PRNGKeyArray, n: int, noise: float = 0.05) -> Float[Array, "n 2"]:
    """``n`` points of two interleaved half circles, centred, about unit variance."""
    n, noise = guards.count("n", n), guards.positive("noise", noise, zero=True)
    k1, k2, k3 = jax.random.split(key, 3)
    angle = jnp.pi * jax.random.uniform(k1, (n,))
    upper = jax.random.bernoulli(k2, 0.5, (n,))
    x_up = jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)
    x_low = jnp.stack([1.0 - jnp.cos(angle), 0.5 - jnp.sin(angle)], axis=-1)
    x = jnp.where(upper[:, None], x_up, x_low)
    x = (x - jnp.array([0.5, 0.25])) / jnp.array([0.87, 0.5])
    return x + noise * jax.random.normal(k3, (n, 2))


class GaussianMixture(eqx.Module):
    """A mixture of Gaussians in ``d`` dimensions with closed-form marginals under a linear SDE.

    Arguments:
        means: ``(K, d)`` component means.
        covs: ``(K, d, d)`` component covariances (symmetric positive definite).
        weights: ``(K,)`` mixture weights (normalised here).

    All density and score methods accept one point ``x`` of shape ``(d,)`` or a batch
    ``(..., d)``.
    """

    means: Float[Array, "K d"]
    covs: Float[Array, "K d d"]
    weights: Float[Array, " K"]

    def __init__(self, means: ArrayLike, covs: ArrayLike, weights: ArrayLike | None = None):
        self.means = jnp.asarray(means, dtype=float)
        self.covs = jnp.asarray(covs, dtype=float)
        k = self.means.shape[0]
        w = jnp.ones(k) if weights is None else jnp.asarray(weights, dtype=float)
        self.weights = w / jnp.sum(w)

    @classmethod
    def default(cls) -> "GaussianMixture":
        """The toy's ground truth: three unequal, anisotropic components of about unit spread."""
        means = [[-1.2, -0.6], [1.2, -0.6], [0.0, 1.1]]
        covs = [
            [[0.10, 0.06], [0.06, 0.10]],
            [[0.08, -0.04], [-0.04, 0.12]],
            [[0.20, 0.0], [0.0, 0.03]],
        ]
        return cls(means, covs, [0.3, 0.3, 0.4])

    @property
    def dim(self) -> int:
        return self.means.shape[-1]

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        """``n`` independent draws."""
        kc, kz = jax.random.split(key)
        comp = jax.random.choice(kc, self.weights.shape[0], (n,), p=self.weights)
        chol = jnp.linalg.cholesky(self.covs)
        z = jax.random.normal(kz, (n, self.dim))
        return self.means[comp] + jnp.einsum("nij,nj->ni", chol[comp], z)

    def _components_at(self, t: ArrayLike | None, sde: SDE | None):
        if sde is None:
            return self.means, self.covs
        alpha, std = sde.marginal_mean_coeff(t), sde.marginal_std(t)
        return alpha * self.means, alpha**2 * self.covs + std**2 * jnp.eye(self.dim)

    def _log_component_densities(self, x, means, covs):
        # log w_k + log N(x; mu_k, C_k) for every component: shape (..., K)
        diff = x[..., None, :] - means  # (..., K, d)
        prec = jnp.linalg.inv(covs)
        maha = jnp.einsum("...ki,kij,...kj->...k", diff, prec, diff)
        _, logdet = jnp.linalg.slogdet(covs)
        return jnp.log(self.weights) - 0.5 * (maha + logdet + self.dim * math.log(2 * math.pi))

    def log_prob(self, x: Float[Array, "... d"]) -> Float[Array, "..."]:
        """Log-density of the data distribution (``t = 0``)."""
        return jax.nn.logsumexp(self._log_component_densities(x, self.means, self.covs), axis=-1)

    def marginal_log_prob(self, x: Float[Array, "... d"], t: ArrayLike, sde: SDE) -> Float[Array, "..."]:
        """Log-density of ``x(t)`` under ``sde`` started from this mixture (exact)."""
        means, covs = self._components_at(t, sde)
        return jax.nn.logsumexp(self._log_component_densities(x, means, covs), axis=-1)

    def score(self, x: Float[Array, "... d"], t: ArrayLike, sde: SDE) -> Float[Array, "... d"]:
        """The exact score ``grad_x log p_t(x)`` under ``sde``, in closed form.

        ``sum_k r_k(x) C_k^{-1} (alpha mu_k - x)`` with the responsibilities
        ``r_k = w_k N_k(x) / p_t(x)`` and ``C_k = alpha^2 Sigma_k + std^2 I``.
        """
        means, covs = self._components_at(t, sde)
        logc = self._log_component_densities(x, means, covs)
        resp = jax.nn.softmax(logc, axis=-1)  # (..., K)
        prec = jnp.linalg.inv(covs)
        pulls = jnp.einsum("kij,...kj->...ki", prec, means - x[..., None, :])
        return jnp.sum(resp[..., None] * pulls, axis=-2)


def sample_dataset(name: str, key: PRNGKeyArray, n: int) -> Float[Array, "n 2"]:
    """``n`` points of the toy dataset ``name`` (one of :data:`DATASETS`)."""
    n = guards.count("n", n)
    if name == "mixture":
        return GaussianMixture.default().sample(key, n)
    if name == "swiss_roll":
        return swiss_roll(key, n)
    if name == "moons":
        return moons(key, n)
    raise ValueError(f"unknown toy dataset {name!r}; choose one of {DATASETS}")


DATASETS = ("mixture", "swiss_roll", "moons")
