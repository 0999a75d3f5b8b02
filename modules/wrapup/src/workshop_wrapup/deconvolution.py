"""Deconvolving a blurred, noisy image as a regularised linear inverse problem with Lineax.

The telescope applies a linear operator ``K`` (convolution with the PSF) and adds noise:
``y = K x + ε``. Dividing by the PSF's Fourier transform (the naive inverse) amplifies the
noise at the frequencies the PSF suppresses until it swamps the image. Tikhonov
regularisation asks instead for the ``x`` minimising ``‖K x - y‖² + λ ‖x‖²``, whose normal
equations ``(KᵀK + λ I) x = Kᵀ y`` have a symmetric positive definite operator.

We never build ``K`` as a matrix (a 64×64 image would need a 4096×4096 one): Lineax's
:class:`~lineax.FunctionLinearOperator` wraps the FFT convolution as a function, and
conjugate gradients (:class:`~lineax.CG`) needs only operator-vector products. For a
periodic convolution the answer is also the classical Wiener-style filter
``conj(K̂) ŷ / (|K̂|² + λ)``, which is how the tests check it.

Example::

    >>> import jax
    >>> from workshop_wrapup.deconvolution import make_blurred_scene, tikhonov_deconvolve
    >>> scene = make_blurred_scene(jax.random.key(0))
    >>> restored = tikhonov_deconvolve(scene.observed, scene.psf, 1e-2)
    >>> restored.image.shape, restored.converged
    ((64, 64), True)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float

from . import guards
from .sersic import SersicParams, convolve, gaussian_psf, sersic_image


def blur_operator(psf: Float[Array, "h w"]) -> lx.FunctionLinearOperator:
    """``K``: convolution with ``psf`` as a matrix-free Lineax operator on images."""
    structure = jax.ShapeDtypeStruct(psf.shape, psf.dtype)
    return lx.FunctionLinearOperator(lambda x: convolve(x, psf), structure)


def normal_operator(psf: Float[Array, "h w"], lam: float) -> lx.FunctionLinearOperator:
    """``KᵀK + λ I`` as a matrix-free operator tagged symmetric positive definite (so CG applies)."""
    K = blur_operator(psf)
    Kt = K.transpose()  # Lineax derives the adjoint of the function by JAX's linear transpose
    structure = jax.ShapeDtypeStruct(psf.shape, psf.dtype)
    return lx.FunctionLinearOperator(lambda x: Kt.mv(K.mv(x)) + lam * x, structure,
                                     tags=(lx.symmetric_tag, lx.positive_semidefinite_tag))


class Deconvolution(NamedTuple):
    """A restored image and how the solver got there.

    Arguments:
        image: the restored image (same dtype as the observation).
        cg_steps: conjugate-gradient iterations taken.
        converged: whether CG reached its tolerance.
    """

    image: Float[Array, "h w"]
    cg_steps: int
    converged: bool


def tikhonov_deconvolve(observed: Float[Array, "h w"], psf: Float[Array, "h w"], lam: float, *,
                        rtol: float = 1e-6, max_steps: int = 1000) -> Deconvolution:
    """The Tikhonov-regularised deconvolution of ``observed``, by CG on the normal equations.

    The solve runs in double precision: CG stops with a breakdown error when the curvature
    ``pᵀ A p`` along a search direction falls below about ``100 · ε · size`` times ``rᵀ r``,
    and in single precision on a 64×64 image that threshold (≈ 0.05) is above the smallest
    eigenvalue ``λ`` of ``KᵀK + λ I``. In float64 it is ≈ 1e-10.

    Arguments:
        observed: the blurred, noisy image ``y``.
        psf: the PSF, wrapped at pixel ``(0, 0)``.
        lam: the regularisation strength ``λ`` (larger: smoother, less noise).
        rtol: CG's relative tolerance.
        max_steps: at most this many CG iterations.

    Returns:
        A :class:`Deconvolution`.
    """
    guards.positive("lam", lam), guards.positive("rtol", rtol)
    max_steps = guards.count("max_steps", max_steps)
    guards.float_array("observed", observed, ndim=2, layout="(h, w)")
    if jnp.shape(psf) != jnp.shape(observed):
        raise ValueError(f"psf has shape {jnp.shape(psf)}, observed {jnp.shape(observed)}: they must be the same size")
    dtype = jnp.asarray(observed).dtype
    with jax.enable_x64(True):
        y = jnp.asarray(observed, jnp.float64)
        k = jnp.asarray(psf, jnp.float64)
        rhs = blur_operator(k).transpose().mv(y)
        solver = lx.CG(rtol=rtol, atol=rtol * 1e-2 * float(jnp.abs(rhs).max()), max_steps=max_steps)
        sol = lx.linear_solve(normal_operator(k, lam), rhs, solver, throw=False)
        converged = bool(sol.result == lx.RESULTS.successful)
        steps = int(sol.stats["num_steps"])
        image = jnp.asarray(sol.value, dtype)
    return Deconvolution(image=image, cg_steps=steps, converged=converged)


def fourier_tikhonov(observed: Float[Array, "h w"], psf: Float[Array, "h w"], lam: float) -> Float[Array, "h w"]:
    """The same solution in closed form, ``conj(K̂) ŷ / (|K̂|² + λ)``, valid for periodic convolution."""
    kf, yf = jnp.fft.fft2(psf), jnp.fft.fft2(observed)
    return jnp.real(jnp.fft.ifft2(jnp.conj(kf) * yf / (jnp.abs(kf) ** 2 + lam)))


def naive_deconvolve(observed: Float[Array, "h w"], psf: Float[Array, "h w"], floor: float = 1e-12) -> Float[Array, "h w"]:
    """Divide by the PSF in Fourier space (``λ = 0``): the inverse that noise ruins."""
    kf, yf = jnp.fft.fft2(psf), jnp.fft.fft2(observed)
    safe = jnp.where(jnp.abs(kf) < floor, floor, kf)
    return jnp.real(jnp.fft.ifft2(yf / safe))


class BlurredScene(NamedTuple):
    """A sharp scene, its PSF, and the blurred noisy observation of it."""

    truth: Float[Array, "h w"]
    psf: Float[Array, "h w"]
    observed: Float[Array, "h w"]
    noise_sigma: float


def make_blurred_scene(key: jax.Array, *, size: int = 64, psf_sigma: float = 2.0,
                       noise_sigma: float = 0.01) -> BlurredScene:
    """A galaxy with three stars, blurred by a Gaussian PSF and observed with noise.

    Arguments:
        key: a JAX PRNG key (star positions and the noise).
        size: image side in pixels.
        psf_sigma: PSF width in pixels.
        noise_sigma: per-pixel noise standard deviation.
    """
    kstars, kflux, knoise = jax.random.split(key, 3)
    c = (size - 1) / 2
    galaxy = sersic_image(SersicParams(1.0, size / 8, 1.5, 0.4, 0.8, c, c), (size, size))
    positions = jax.random.randint(kstars, (3, 2), 4, size - 4)
    fluxes = jax.random.uniform(kflux, (3,), minval=2.0, maxval=5.0)
    stars = jnp.zeros((size, size)).at[positions[:, 0], positions[:, 1]].add(fluxes)
    truth = galaxy + stars
    psf = gaussian_psf((size, size), psf_sigma)
    observed = convolve(truth, psf) + noise_sigma * jax.random.normal(knoise, truth.shape)
    return BlurredScene(truth=truth, psf=psf, observed=observed, noise_sigma=noise_sigma)


def rms_error(x: Float[Array, "h w"], truth: Float[Array, "h w"]) -> Float[Array, ""]:
    """Root-mean-square difference between a restoration and the truth."""
    return jnp.sqrt(jnp.mean((x - truth) ** 2))


def best_lambda(scene: BlurredScene, lams=(1e-4, 1e-3, 1e-2, 1e-1)) -> tuple[float, list[float]]:
    """The ``λ`` with the smallest error against the truth, and the error for each (a teaching aid:
    with real data the truth is unknown and one uses e.g. the discrepancy principle)."""
    errors = [float(rms_error(fourier_tikhonov(scene.observed, scene.psf, lam), scene.truth)) for lam in lams]
    return float(lams[int(jnp.argmin(jnp.asarray(errors)))]), errors
