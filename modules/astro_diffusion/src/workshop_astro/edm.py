"""EDM preconditioning (Karras et al. 2022, "Elucidating the design space of diffusion models").

The VP SDE of :mod:`workshop_astro.sde` gives ``x(t) = alpha(t) x(0) + std(t) eps``. Divide
by ``alpha(t)``: ``y = x / alpha = x(0) + sigma eps`` with ``sigma(t) = std(t) / alpha(t)``.
In ``y`` every linear SDE is the same variance-exploding process indexed by ``sigma``, and
its probability-flow ODE is ``dy / dsigma = (y - D(y, sigma)) / sigma`` with ``D`` the
denoiser ``E[x(0) | y]``; the score is ``grad log p_t(x) = (alpha D - x) / std**2``.

EDM trains ``D`` through a network ``F`` wrapped so that its input and target both have
unit variance at every noise level (``sigma_data`` is the data's standard deviation):

* ``D(y, sigma) = c_skip y + c_out F(c_in y, c_noise)``,
* ``c_skip = sd**2 / (sigma**2 + sd**2)``, ``c_out = sigma sd / sqrt(sigma**2 + sd**2)``,
  ``c_in = 1 / sqrt(sigma**2 + sd**2)``, ``c_noise = log(sigma) / 4``;
* noise levels drawn log-normally, ``log sigma ~ N(p_mean, p_std**2)`` (the middle levels,
  where the loss can still be lowered, get the steps; EDM's ``N(-1.2, 1.2**2)`` here, the
  galaxy training moves it up, see :class:`~workshop_astro.train.TrainConfig`);
* loss weight ``lambda(sigma) = 1 / c_out**2``, so that the effective target of ``F`` has
  unit variance (the loss is an unweighted MSE on ``F``).

:class:`EDMDenoiser` also answers the noise-prediction interface ``model(x, t) -> eps`` of
the VP SDE, so the score-based samplers, likelihoods and posterior samplers of this module
take it unchanged.

Example::

    >>> den = EDMDenoiser(UNet(UNetConfig(channels=8, mults=(1, 2)), key=jax.random.key(0)))
    >>> den.denoise(jnp.zeros((3, 32, 32)), 1.0).shape
    (3, 32, 32)
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .sde import SDE, VPSDE

__all__ = ["EDMDenoiser", "edm_coefficients", "edm_loss", "sigma_from_t"]


def edm_coefficients(sigma: ArrayLike, sigma_data: float) -> tuple[Array, Array, Array, Array]:
    """``(c_skip, c_out, c_in, c_noise)`` at noise level ``sigma``."""
    sigma = jnp.asarray(sigma, jnp.float32)
    s2 = sigma**2 + sigma_data**2
    return sigma_data**2 / s2, sigma * sigma_data / jnp.sqrt(s2), 1.0 / jnp.sqrt(s2), jnp.log(sigma) / 4.0


def sigma_from_t(sde: SDE, t: ArrayLike) -> tuple[Array, Array]:
    """``(alpha(t), sigma(t) = std(t) / alpha(t))``: the VE noise level of the SDE at time ``t``."""
    alpha = sde.marginal_mean_coeff(t)
    return alpha, sde.marginal_std(t) / alpha


class EDMDenoiser(eqx.Module):
    """``D(y, sigma) = c_skip y + c_out F(c_in y, c_noise)`` around a network ``F = net``.

    Arguments:
        net: any ``net(x, t)`` on ONE image (here a :class:`~workshop_astro.unet.UNet`),
            called with ``t = c_noise``.
        sigma_data: the data's standard deviation (1 for standardised images).
        sde: the SDE whose time ``t`` :meth:`__call__` accepts (default VP).
    """

    net: eqx.Module
    sigma_data: float = eqx.field(static=True, default=1.0)
    sde: SDE = eqx.field(default_factory=VPSDE)

    @property
    def config(self):
        return self.net.config

    def denoise(self, y: Float[Array, "c h w"], sigma: ArrayLike, coords: Array | None = None) -> Float[Array, "c h w"]:
        """The denoised image ``D(y, sigma)`` for ONE noisy image ``y = x(0) + sigma n``.

        ``coords``: for a crop of a stamp, the positions of its pixels in the stamp, passed
        to a network that reads them (``UNetConfig.coords``); ``None`` for whole stamps.
        """
        c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, self.sigma_data)
        out = self.net(c_in * y, c_noise) if coords is None else self.net(c_in * y, c_noise, coords)
        return c_skip * y + c_out * out

    def __call__(self, x: Float[Array, "c h w"], t: ArrayLike) -> Float[Array, "c h w"]:
        """The noise prediction ``eps(x, t)`` of the SDE (so the score is ``-eps / std(t)``)."""
        alpha, sigma = sigma_from_t(self.sde, t)
        y = x / alpha
        return (y - self.denoise(y, sigma)) / sigma


def edm_loss(
    denoiser: EDMDenoiser,
    y0: Float[Array, "b c h w"],
    key: PRNGKeyArray,
    p_mean: float = -1.2,
    p_std: float = 1.2,
    coords: Float[Array, "b 2 h w"] | None = None,
) -> Float[Array, ""]:
    """EDM's weighted denoising loss ``E[lambda(sigma) |D(y0 + sigma n, sigma) - y0|^2]`` on a batch.

    ``log sigma`` is drawn from ``N(p_mean, p_std**2)`` by stratified quantiles (one per
    slice of the batch), which lowers the variance of the estimate. ``coords``: when
    ``y0`` holds crops, where each crop's pixels lie in its stamp (see
    :meth:`EDMDenoiser.denoise`).
    """
    b = y0.shape[0]
    ks, kn = jax.random.split(key)
    u = (jnp.arange(b) + jax.random.uniform(ks, (b,))) / b
    sigma = jnp.exp(p_mean + p_std * jax.scipy.special.ndtri(jnp.clip(u, 1e-6, 1 - 1e-6)))
    n = jax.random.normal(kn, y0.shape, y0.dtype)
    sd = denoiser.sigma_data
    weight = (sigma**2 + sd**2) / (sigma * sd) ** 2
    s = sigma[:, None, None, None]
    if coords is None:
        d = jax.vmap(denoiser.denoise)(y0 + s * n, sigma)
    else:
        d = jax.vmap(denoiser.denoise)(y0 + s * n, sigma, coords)
    return jnp.mean(weight[:, None, None, None] * (d - y0) ** 2)
