"""The Sérsic profile: the surface brightness of a galaxy, and synthetic images of one.

A Sérsic profile is ``I(r) = I_e exp(-b_n [(r / R_e)^(1/n) - 1])``: ``R_e`` is the
half-light radius, ``I_e`` the brightness at ``R_e``, ``n`` the index (``n = 1`` an
exponential disc, ``n = 4`` a de Vaucouleurs elliptical). ``b_n`` is fixed by ``n`` so
that half the light falls inside ``R_e``. Ellipses come from a rotated, squashed radius.

Example::

    >>> import jax
    >>> truth = SersicParams.default()
    >>> galaxy = make_galaxy(jax.random.key(0), truth, size=48)
    >>> galaxy.image.shape
    (48, 48)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from . import guards

PARAM_NAMES = ("amplitude", "r_eff", "n", "ellipticity", "angle", "x0", "y0")


class SersicParams(NamedTuple):
    """The seven numbers of an elliptical Sérsic galaxy (a pytree: it flows through jit and grad).

    Arguments:
        amplitude: ``I_e``, the surface brightness at the half-light radius.
        r_eff: ``R_e``, the half-light radius along the major axis, in pixels.
        n: the Sérsic index.
        ellipticity: ``1 - b/a`` (0 is round).
        angle: position angle of the major axis in radians, counter-clockwise from +x.
        x0, y0: the centre in pixels (``x`` is the column, ``y`` the row).
    """

    amplitude: Float[Array, ""] | float
    r_eff: Float[Array, ""] | float
    n: Float[Array, ""] | float
    ellipticity: Float[Array, ""] | float
    angle: Float[Array, ""] | float
    x0: Float[Array, ""] | float
    y0: Float[Array, ""] | float

    @classmethod
    def default(cls, size: int = 48) -> "SersicParams":
        """A typical galaxy slightly off the centre of a ``size``-pixel stamp."""
        c = (size - 1) / 2
        return cls(amplitude=2.0, r_eff=size / 8, n=1.8, ellipticity=0.35, angle=0.6, x0=c + 1.3, y0=c - 0.7)

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in zip(PARAM_NAMES, self)}


def sersic_b(n: Float[Array, ""]) -> Float[Array, ""]:
    """``b_n`` such that ``R_e`` encloses half the light (Ciotti & Bertin 1999 expansion, good for n > 0.36)."""
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n**2)


def elliptical_radius(params: SersicParams, shape: tuple[int, int]) -> Float[Array, "h w"]:
    """The radius along the major axis of the ellipse through each pixel."""
    ys, xs = jnp.meshgrid(jnp.arange(shape[0], dtype=jnp.float32), jnp.arange(shape[1], dtype=jnp.float32), indexing="ij")
    dx, dy = xs - params.x0, ys - params.y0
    c, s = jnp.cos(params.angle), jnp.sin(params.angle)
    major = dx * c + dy * s
    minor = -dx * s + dy * c
    q = 1.0 - params.ellipticity
    # The small floor keeps the gradient of r^(1/n) finite at the exact centre.
    return jnp.sqrt(major**2 + (minor / q) ** 2 + 1e-6)


def sersic_image(params: SersicParams, shape: tuple[int, int]) -> Float[Array, "h w"]:
    """The Sérsic surface brightness sampled at pixel centres (no PSF)."""
    r = elliptical_radius(params, shape)
    n = params.n
    return params.amplitude * jnp.exp(-sersic_b(n) * ((r / params.r_eff) ** (1.0 / n) - 1.0))


def gaussian_psf(shape: tuple[int, int], sigma: float) -> Float[Array, "h w"]:
    """A normalised circular Gaussian PSF centred at pixel ``(0, 0)`` (wrapped), ready for FFT convolution."""
    guards.positive("sigma", sigma)
    shape = tuple(guards.count(f"shape[{k}]", n) for k, n in enumerate(shape))
    ky = jnp.fft.fftfreq(shape[0]) * shape[0]
    kx = jnp.fft.fftfreq(shape[1]) * shape[1]
    yy, xx = jnp.meshgrid(ky, kx, indexing="ij")
    psf = jnp.exp(-0.5 * (xx**2 + yy**2) / sigma**2)
    return psf / psf.sum()


def convolve(image: Float[Array, "h w"], psf: Float[Array, "h w"]) -> Float[Array, "h w"]:
    """Circular convolution of ``image`` with a wrapped ``psf`` (same shape) by FFT."""
    return jnp.fft.irfft2(jnp.fft.rfft2(image) * jnp.fft.rfft2(psf), s=image.shape)


def observed_model(params: SersicParams, psf: Float[Array, "h w"]) -> Float[Array, "h w"]:
    """What a telescope sees of a noiseless Sérsic galaxy: the profile blurred by the PSF."""
    return convolve(sersic_image(params, psf.shape), psf)


class Galaxy(NamedTuple):
    """A synthetic observation with everything needed to fit it and to judge the fit.

    Arguments:
        image: the noisy observed image.
        psf: the PSF used to make it (wrapped at pixel ``(0, 0)``).
        noise_sigma: the per-pixel Gaussian noise level.
        truth: the parameters the image was made with.
    """

    image: Float[Array, "h w"]
    psf: Float[Array, "h w"]
    noise_sigma: float
    truth: SersicParams


def make_galaxy(key: jax.Array, truth: SersicParams | None = None, *, size: int = 48,
                psf_sigma: float = 1.5, noise_sigma: float = 0.05) -> Galaxy:
    """A synthetic galaxy image with known parameters, PSF blur and Gaussian noise.

    Arguments:
        key: a JAX PRNG key for the noise.
        truth: the parameters (default :meth:`SersicParams.default`).
        size: the image is ``size × size`` pixels.
        psf_sigma: width of the Gaussian PSF in pixels.
        noise_sigma: standard deviation of the pixel noise.

    Returns:
        A :class:`Galaxy`.
    """
    size = guards.count("size", size, minimum=8)
    guards.positive("psf_sigma", psf_sigma), guards.positive("noise_sigma", noise_sigma)
    truth = SersicParams.default(size) if truth is None else truth
    truth = SersicParams(*(jnp.asarray(v, jnp.float32) for v in truth))
    psf = gaussian_psf((size, size), psf_sigma)
    clean = observed_model(truth, psf)
    noisy = clean + noise_sigma * jax.random.normal(key, clean.shape)
    return Galaxy(image=noisy, psf=psf, noise_sigma=noise_sigma, truth=truth)
