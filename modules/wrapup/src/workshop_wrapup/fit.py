"""Fitting a Sérsic profile to a galaxy image by nonlinear least squares with Optimistix.

The fit minimises the chi-square ``Σ ((model - data) / σ)²`` over seven parameters with
:class:`optimistix.LevenbergMarquardt`, which needs only the residual vector: Optimistix
builds the Jacobian with JAX's autodiff. Parameters with a range (positive radius, index
between 0.3 and 8, ellipticity below 0.9) are fitted in unconstrained coordinates, so the
solver can never step outside them.

Example::

    >>> import jax
    >>> from workshop_wrapup.sersic import make_galaxy
    >>> galaxy = make_galaxy(jax.random.key(0))
    >>> result = fit_sersic(galaxy.image, galaxy.psf, galaxy.noise_sigma)
    >>> abs(float(result.params.n) - float(galaxy.truth.n)) < 0.2
    True
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optimistix as optx
from jaxtyping import Array, Float

from . import guards
from .sersic import SersicParams, observed_model

N_MIN, N_MAX, E_MAX = 0.3, 8.0, 0.9


def to_unconstrained(p: SersicParams) -> Float[Array, "7"]:
    """Map physical parameters to the free coordinates the optimiser walks in."""
    def logit(u):
        return jnp.log(u) - jnp.log1p(-u)

    return jnp.stack([
        jnp.log(p.amplitude), jnp.log(p.r_eff),
        logit((p.n - N_MIN) / (N_MAX - N_MIN)), logit(p.ellipticity / E_MAX),
        jnp.asarray(p.angle, jnp.float32), jnp.asarray(p.x0, jnp.float32), jnp.asarray(p.y0, jnp.float32),
    ])


def to_physical(u: Float[Array, "7"]) -> SersicParams:
    """Inverse of :func:`to_unconstrained`."""
    return SersicParams(
        amplitude=jnp.exp(u[0]), r_eff=jnp.exp(u[1]),
        n=N_MIN + (N_MAX - N_MIN) * jax.nn.sigmoid(u[2]), ellipticity=E_MAX * jax.nn.sigmoid(u[3]),
        angle=u[4], x0=u[5], y0=u[6],
    )


def moment_guess(image: Float[Array, "h w"]) -> SersicParams:
    """A starting point from the image's first and second moments (centre, size, shape, angle).

    The index starts at 2, between a disc and an elliptical; the amplitude is the mean
    brightness near the half-light ellipse of that guess.
    """
    h, w = image.shape
    ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
    weight = jnp.clip(image, 0.0, None)
    total = weight.sum()
    x0, y0 = (weight * xs).sum() / total, (weight * ys).sum() / total
    dx, dy = xs - x0, ys - y0
    qxx, qyy, qxy = (weight * dx * dx).sum() / total, (weight * dy * dy).sum() / total, (weight * dx * dy).sum() / total
    # Eigen-decomposition of the 2×2 second-moment matrix: axis lengths and orientation.
    mean, diff = (qxx + qyy) / 2, jnp.sqrt(((qxx - qyy) / 2) ** 2 + qxy**2)
    a2, b2 = mean + diff, jnp.maximum(mean - diff, 1e-3)
    angle = 0.5 * jnp.arctan2(2 * qxy, qxx - qyy)
    ellipticity = jnp.clip(1.0 - jnp.sqrt(b2 / a2), 0.05, 0.8)
    r_eff = jnp.sqrt(a2)  # for n ≈ 1-2 the half-light radius is close to the rms radius
    ring = jnp.abs(jnp.sqrt(dx**2 + dy**2) - r_eff) < 1.0
    amplitude = jnp.maximum(jnp.sum(jnp.where(ring, image, 0.0)) / jnp.maximum(ring.sum(), 1), 1e-3)
    return SersicParams(amplitude, r_eff, jnp.asarray(2.0), ellipticity, angle, x0, y0)


class FitResult(NamedTuple):
    """What :func:`fit_sersic` found.

    Arguments:
        params: the best-fit parameters (angle folded into ``[0, π)``).
        chi2: the chi-square at the optimum.
        dof: degrees of freedom (pixels minus parameters).
        steps: optimiser steps taken.
        start: the moment-based starting point.
    """

    params: SersicParams
    chi2: Float[Array, ""]
    dof: int
    steps: Array
    start: SersicParams


def residuals(u: Float[Array, "7"], args) -> Float[Array, " pixels"]:
    """Normalised residuals ``(model - data) / σ`` for free coordinates ``u``."""
    image, psf, sigma = args
    return ((observed_model(to_physical(u), psf) - image) / sigma).ravel()


def fit_sersic(image: Float[Array, "h w"], psf: Float[Array, "h w"], noise_sigma: float,
               start: SersicParams | None = None) -> FitResult:
    """Fit a PSF-convolved Sérsic profile to ``image`` with Levenberg-Marquardt.

    Arguments:
        image: the observed image.
        psf: the PSF, wrapped at pixel ``(0, 0)`` (see :func:`workshop_wrapup.sersic.gaussian_psf`).
        noise_sigma: per-pixel noise standard deviation.
        start: a starting point (default: :func:`moment_guess`).

    Returns:
        A :class:`FitResult`.

    Raises ``ValueError``/``TypeError`` (before compiling) for a noise level that is not
    positive, an image that is not a float ``(h, w)`` array, or a PSF of another size.
    """
    guards.positive("noise_sigma", noise_sigma)
    guards.float_array("image", image, ndim=2, layout="(h, w)")
    if jnp.shape(psf) != jnp.shape(image):
        raise ValueError(f"psf has shape {jnp.shape(psf)}, image {jnp.shape(image)}: the PSF must be an image of "
                         "the same size, wrapped at pixel (0, 0) (sersic.gaussian_psf(image.shape, sigma))")
    return _fit_sersic(image, psf, noise_sigma, start)


@jax.jit
def _fit_sersic(image, psf, noise_sigma, start):
    start = moment_guess(image) if start is None else start
    solver = optx.LevenbergMarquardt(rtol=1e-6, atol=1e-6)
    sol = optx.least_squares(residuals, solver, to_unconstrained(start), args=(image, psf, noise_sigma),
                             max_steps=200, throw=False)
    best = to_physical(sol.value)
    best = best._replace(angle=jnp.mod(best.angle, jnp.pi))
    chi2 = jnp.sum(residuals(sol.value, (image, psf, noise_sigma)) ** 2)
    return FitResult(params=best, chi2=chi2, dof=image.size - 7, steps=sol.stats["num_steps"], start=start)


def angle_difference(a, b):
    """The smallest difference between two position angles (defined modulo π)."""
    d = jnp.mod(jnp.asarray(a) - jnp.asarray(b), jnp.pi)
    return jnp.minimum(d, jnp.pi - d)
