"""Sample-quality metrics between two point clouds: sliced Wasserstein distance and MMD.

Both take arrays of shape ``(n, ...)`` (each sample is flattened) and are pure JAX, so
they run under ``jit``. Neither is meaningful alone: compare with the value between two
independent draws of the same distribution (:func:`reference_level`).

Example::

    >>> sw = sliced_wasserstein(samples, data, jax.random.key(0))
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = ["sliced_wasserstein", "mmd", "reference_level"]


def _flat(x: Array) -> Array:
    x = jnp.asarray(x)
    return x.reshape((x.shape[0], -1))


def sliced_wasserstein(
    x: Float[Array, "n ..."],
    y: Float[Array, "m ..."],
    key: PRNGKeyArray,
    n_projections: int = 256,
    p: int = 2,
) -> Float[Array, ""]:
    """The sliced ``p``-Wasserstein distance between the empirical distributions of ``x`` and ``y``.

    Projects both clouds on ``n_projections`` random unit directions; in 1-D the
    Wasserstein distance compares sorted values (quantiles). Returns
    ``(mean over directions of W_p^p)^(1/p)``. With ``n != m`` the quantiles are taken
    at ``min(n, m)`` common levels.
    """
    x, y = _flat(x), _flat(y)
    d = x.shape[1]
    dirs = jax.random.normal(key, (d, n_projections))
    dirs = dirs / jnp.linalg.norm(dirs, axis=0, keepdims=True)
    px, py = jnp.sort(x @ dirs, axis=0), jnp.sort(y @ dirs, axis=0)
    n, m = px.shape[0], py.shape[0]
    if n != m:
        k = min(n, m)
        levels = (jnp.arange(k) + 0.5) / k
        px = jnp.quantile(px, levels, axis=0)
        py = jnp.quantile(py, levels, axis=0)
    return jnp.mean(jnp.abs(px - py) ** p) ** (1.0 / p)


def mmd(
    x: Float[Array, "n ..."],
    y: Float[Array, "m ..."],
    bandwidths: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0),
) -> Float[Array, ""]:
    """Unbiased squared maximum mean discrepancy with a sum of Gaussian kernels.

    ``k(a, b) = sum_h exp(-|a - b|^2 / (2 h^2))``. Zero in expectation when ``x`` and
    ``y`` come from the same distribution (it can then be slightly negative).
    """
    x, y = _flat(x), _flat(y)

    def kernel(a, b):
        d2 = jnp.sum(a**2, 1)[:, None] + jnp.sum(b**2, 1)[None, :] - 2 * a @ b.T
        return sum(jnp.exp(-d2 / (2 * h**2)) for h in bandwidths)

    n, m = x.shape[0], y.shape[0]
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    sxx = (jnp.sum(kxx) - jnp.trace(kxx)) / (n * (n - 1))
    syy = (jnp.sum(kyy) - jnp.trace(kyy)) / (m * (m - 1))
    return sxx + syy - 2 * jnp.mean(kxy)


def reference_level(
    sample_fn: Callable[[PRNGKeyArray, int], Array],
    n: int,
    key: PRNGKeyArray,
    metric: Callable[..., Array] | None = None,
    repeats: int = 5,
) -> Float[Array, ""]:
    """The metric between two independent draws of ``n`` points, averaged over ``repeats``.

    The floor a perfect sampler reaches with ``n`` samples: report a sampler's metric as
    a multiple of it.
    """
    metric = metric or (lambda a, b, k: sliced_wasserstein(a, b, k))
    vals = []
    for k in jax.random.split(key, repeats):
        k1, k2, k3 = jax.random.split(k, 3)
        vals.append(metric(sample_fn(k1, n), sample_fn(k2, n), k3))
    return jnp.mean(jnp.stack(vals))
