"""Checks for lessons 03-04: a Sérsic galaxy fitted with Optimistix, a deconvolution with
Lineax, and the galaxy's posterior with NumPyro.

They compare the participant's function with the reference code of this package.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from workshop.checking import CheckFailed, NotAttempted, assert_close, call, describe, expect

from ..sersic import PARAM_NAMES, SersicParams, make_galaxy

__all__ = ["sersic_residuals", "fit_galaxy", "normal_operator", "sersic_model"]


def _sersic_args(seed: int = 3, size: int = 32):
    truth = SersicParams(1.5, 4.5, 1.2, 0.3, 2.2, 16.8, 14.9)
    galaxy = make_galaxy(jax.random.key(seed), truth, size=size, noise_sigma=0.04)
    return galaxy


def sersic_residuals(candidate) -> str:
    """``residuals(u, args)`` returns ``(model - data) / σ`` for free coordinates ``u``."""
    from ..fit import residuals, to_physical, to_unconstrained
    from ..sersic import observed_model, sersic_image

    galaxy = _sersic_args()
    args = (galaxy.image, galaxy.psf, galaxy.noise_sigma)
    u0 = to_unconstrained(galaxy.truth)
    for i, shift in enumerate((0.0, 0.1, -0.2)):
        u = u0 + shift * jnp.linspace(-1.0, 1.0, 7)
        got = call(candidate, u, args, what=f"parameters number {i + 1}")
        got = jnp.asarray(got)
        want = residuals(u, args)
        expect(got.size == want.size, f"expected {want.size} residuals (one per pixel), got an array of shape {got.shape}",
               hint="return (model - image) / sigma for every pixel, e.g. flattened with .ravel()")
        got = got.ravel()
        if not np.allclose(got, want, rtol=1e-3, atol=1e-3) and np.allclose(-got, want, rtol=1e-3, atol=1e-3):
            got = -got  # data - model is as good as model - data for least squares
        ratio = float(jnp.std(got) / jnp.maximum(jnp.std(want), 1e-12))
        if abs(ratio - galaxy.noise_sigma) < 0.2 * galaxy.noise_sigma:
            raise CheckFailed("the residuals are not divided by the noise level sigma",
                              hint="divide (model - image) by sigma so that each pixel counts by its noise")
        image, psf, sigma = args
        params = to_physical(u)
        mistakes = {
            "they are divided by the variance sigma², not by sigma":
                (lambda: ((observed_model(params, psf) - image) / sigma**2).ravel(),
                 "divide by sigma, the standard deviation of the noise, not by sigma ** 2"),
            "the model has no PSF blur": (lambda: ((sersic_image(params, psf.shape) - image) / sigma).ravel(),
                                          "the telescope blurs the galaxy: use observed_model(params, psf), "
                                          "not sersic_image"),
            "u was used as physical parameters without to_physical":
                (lambda: ((observed_model(SersicParams(*u), psf) - image) / sigma).ravel(),
                 "u are free coordinates: params = to_physical(u) before building the model"),
        }
        assert_close(got, want, what=f"the residuals for parameters number {i + 1}", rtol=1e-3, atol=1e-3,
                     hint="params = to_physical(u); model = observed_model(params, psf) (that includes the PSF); "
                          "return ((model - image) / sigma).ravel()", mistakes=mistakes)
    return "checked on 3 parameter vectors"


def fit_galaxy(candidate) -> str:
    """``fit_galaxy(image, psf, sigma)`` returns the best-fit :class:`SersicParams` (physical units)."""
    from ..fit import angle_difference

    galaxy = _sersic_args(seed=5)
    got = call(candidate, galaxy.image, galaxy.psf, galaxy.noise_sigma, what="a 32×32 synthetic galaxy")
    try:
        values = [float(v) for v in got]
    except Exception:
        raise CheckFailed(f"expected SersicParams (7 numbers), got {describe(got)}",
                          hint="return to_physical(solution.value)") from None
    expect(len(values) == 7, f"expected 7 parameters, got {len(values)}", hint="return to_physical(solution.value)")
    p, t = SersicParams(*values), galaxy.truth
    if abs(p.n - 2.0) < 1e-6:
        raise CheckFailed(
            "the index is still exactly the starting value 2: the fit did not move",
            hint="call optx.least_squares(residuals, optx.LevenbergMarquardt(rtol=1e-6, atol=1e-6), "
                 "to_unconstrained(start), args=(image, psf, sigma), max_steps=200)")
    errors = {
        "amplitude": abs(p.amplitude / float(t.amplitude) - 1), "r_eff": abs(p.r_eff / float(t.r_eff) - 1),
        "n": abs(p.n / float(t.n) - 1), "ellipticity": abs(p.ellipticity - float(t.ellipticity)),
        "angle": float(angle_difference(p.angle, t.angle)),
        "x0": abs(p.x0 - float(t.x0)), "y0": abs(p.y0 - float(t.y0)),
    }
    limits = {"amplitude": 0.1, "r_eff": 0.1, "n": 0.1, "ellipticity": 0.05, "angle": 0.1, "x0": 0.2, "y0": 0.2}
    bad = [k for k in PARAM_NAMES if not errors[k] <= limits[k]]
    if bad and all(np.isfinite(values)):
        from ..fit import to_physical

        q = to_physical(jnp.asarray(values, jnp.float32))
        if abs(float(q.r_eff) / float(t.r_eff) - 1) < 0.1 and abs(float(q.x0) - float(t.x0)) < 0.5:
            raise CheckFailed("you returned the free (unconstrained) coordinates of the fit, not the physical "
                              "parameters: passed through to_physical they would be right",
                              hint="return to_physical(solution.value)")
    if bad:
        shown = ", ".join(f"{k} = {getattr(p, k):.3f} (truth {float(getattr(t, k)):.3f})" for k in bad)
        raise CheckFailed(f"the fit misses the true parameters: {shown}",
                          hint="return the physical parameters, to_physical(solution.value), not the free coordinates; "
                               "start from moment_guess(image)")
    return "recovered all 7 parameters of a synthetic galaxy"


def _asymmetric_psf(shape: tuple[int, int]) -> jax.Array:
    """A normalised PSF with a tail to one side: its transpose (correlation) differs from itself."""
    from ..sersic import gaussian_psf

    tail = jnp.roll(gaussian_psf(shape, 1.0), (2, 3), axis=(0, 1))
    psf = 0.6 * gaussian_psf(shape, 1.5) + 0.4 * tail
    return psf / jnp.sum(psf)


def normal_operator(candidate) -> str:
    """``normal_operator(psf, lam)`` returns ``KᵀK + λI`` as a Lineax operator tagged for CG.

    The PSF has a tail to one side, so ``K`` is not symmetric: ``K K + λI`` (a missing
    transpose) gives other numbers than ``KᵀK + λI``. Two values of ``λ`` and two images.
    """
    import lineax as lx

    psf = _asymmetric_psf((24, 24))
    kf = jnp.fft.fft2(psf)

    def apply(factor, lam, x):
        return jnp.real(jnp.fft.ifft2(factor * jnp.fft.fft2(x))) + lam * x

    for lam, seed in ((0.05, 1), (0.3, 2)):
        op = call(candidate, psf, lam, what=f"a 24×24 PSF and lam={lam}")
        expect(isinstance(op, lx.AbstractLinearOperator), f"expected a Lineax operator, got {describe(op)}",
               hint="lx.FunctionLinearOperator(fn, jax.ShapeDtypeStruct(psf.shape, psf.dtype), tags=...)")
        x = jax.random.normal(jax.random.key(seed), psf.shape)
        want = apply(jnp.abs(kf) ** 2, lam, x)
        try:
            got = op.mv(x)
        except Exception as exc:
            raise CheckFailed(f"operator.mv(image) raised {type(exc).__name__}: {str(exc)[:200]}",
                              hint="the operator acts on images of the PSF's shape") from None
        mistakes = {
            "it applies K twice (K K): the transpose is missing":
                (apply(kf**2, lam, x), "the normal operator is Kᵀ K: K = blur_operator(psf), then K.transpose().mv"),
            "it applies the transpose twice (Kᵀ Kᵀ)":
                (apply(jnp.conj(kf) ** 2, lam, x), "apply K once and its transpose once: K.transpose().mv(K.mv(x))"),
            "lam * x is missing": (apply(jnp.abs(kf) ** 2, 0.0, x), "add lam * x to Kᵀ K x"),
            "it is K + lam I, not Kᵀ K + lam I": (apply(kf, lam, x), "apply K, then its transpose, then add lam * x"),
            "lam is added twice": (apply(jnp.abs(kf) ** 2, 2 * lam, x), "add lam * x once"),
            "it is Kᵀ K - lam I: the sign of lam is flipped":
                (apply(jnp.abs(kf) ** 2, -lam, x), "Tikhonov adds lam * x"),
        }
        assert_close(got, want, what=f"operator.mv(x) with lam={lam}", rtol=1e-4, atol=1e-5,
                     hint="apply K (convolve with the PSF), then its transpose, then add lam * x", mistakes=mistakes)
    expect(lx.is_symmetric(op) and lx.is_positive_semidefinite(op),
           "the operator is right but not tagged symmetric and positive semidefinite, so lx.CG refuses it",
           hint="pass tags=(lx.symmetric_tag, lx.positive_semidefinite_tag)")
    return "operator matches K^T K + lam I for a PSF that is not symmetric, on random images, and is tagged for CG"


def _model_variant(prior_size: int | None = None, scale: str = "sigma", psf: bool = True):
    """The reference Sérsic model with one typical mistake in it, to recognise that mistake by its numbers."""
    import numpyro
    import numpyro.distributions as dist

    from ..inference import sersic_priors
    from ..sersic import observed_model, sersic_image

    def model(image, psf_, sigma):
        shape = psf_.shape if prior_size is None else (prior_size, prior_size)
        priors = sersic_priors(shape)
        params = SersicParams(*(numpyro.sample(name, priors[name]) for name in PARAM_NAMES))
        mean = observed_model(params, psf_) if psf else sersic_image(params, psf_.shape)
        spread = {"sigma": sigma, "variance": sigma**2, "sqrt": jnp.sqrt(sigma)}[scale]
        numpyro.sample("image", dist.Normal(mean, spread).to_event(2), obs=image)

    return model


#: The stamp sizes the lessons use at the presets: priors fixed to one of them are the usual mistake.
_LESSON_SIZES = (16, 24, 32, 48, 64, 96, 128)


def sersic_model(candidate) -> str:
    """``model(image, psf, sigma)`` samples the 7 parameters from priors sized for the image and observes ``"image"``.

    The log density is compared with the reference at three parameter points on two stamp
    sizes (24 and 32 pixels): the radius and centre priors depend on the stamp, so priors
    built once for another image (the lesson's galaxy) give other numbers, and so do a
    variance in place of the standard deviation and a model without the PSF.
    """
    from numpyro import handlers
    from numpyro.infer.util import log_density

    from ..inference import sersic_model as reference

    if not callable(candidate):
        raise CheckFailed(f"expected a function, got {describe(candidate)}", hint='check("wrapup.sersic_model", model)')
    for size, seed in ((24, 7), (32, 8)):
        galaxy = _sersic_args(seed=seed, size=size)
        args = (galaxy.image, galaxy.psf, galaxy.noise_sigma)
        try:
            tr = handlers.trace(handlers.seed(candidate, 0)).get_trace(*args)
        except Exception as exc:
            text = str(exc).strip().splitlines()
            raise CheckFailed(f"running your model on a {size}×{size} image raised {type(exc).__name__}: "
                              f"{text[0][:300] if text else ''}",
                              hint="every random quantity is numpyro.sample(name, distribution)") from None
        sites = {k: v for k, v in tr.items() if v["type"] == "sample"}
        if not sites:
            raise NotAttempted("your model has no numpyro.sample statements yet")
        latent = sorted(k for k, v in sites.items() if not v["is_observed"])
        missing = [k for k in PARAM_NAMES if k not in latent]
        expect(not missing, f"these parameters are not sampled: {missing} (your latent sites: {latent})",
               hint="numpyro.sample(name, priors[name]) for each name in PARAM_NAMES")
        expect("image" in sites and sites["image"]["is_observed"],
               "there is no observed site called 'image'",
               hint="numpyro.sample('image', dist.Normal(mean_image, sigma).to_event(2), obs=image)")
        extra = [k for k in latent if k not in PARAM_NAMES]
        expect(not extra, f"unexpected latent sites {extra}", hint="only the 7 parameters are unknown; the image is observed")
        for i, shift in enumerate((0.0, 0.05, -0.1)):
            point = {k: jnp.asarray(float(v) * (1 + shift)) for k, v in zip(PARAM_NAMES, galaxy.truth)}
            try:
                got, _ = log_density(candidate, args, {}, point)
            except Exception as exc:
                raise CheckFailed(f"evaluating your model's log density raised {type(exc).__name__}: "
                                  f"{str(exc)[:200]}") from None

            def density(variant, point=point, args=args):
                return lambda: log_density(variant, args, {}, point)[0]

            want = density(reference)()
            mistakes = {
                "the Normal's scale is the variance sigma², not the standard deviation sigma":
                    (density(_model_variant(scale="variance")),
                     "dist.Normal(mean, scale) takes the standard deviation: pass sigma, not sigma ** 2"),
                "the Normal's scale is sqrt(sigma), not sigma":
                    (density(_model_variant(scale="sqrt")), "dist.Normal(mean, scale) takes sigma itself"),
                "the mean image has no PSF blur":
                    (density(_model_variant(psf=False)),
                     "the telescope blurs the galaxy: the mean is observed_model(params, psf), not sersic_image"),
            }
            for other in _LESSON_SIZES:
                if other != size:
                    mistakes[f"the priors were made for a {other}×{other} image, not for this {size}×{size} one"] = (
                        density(_model_variant(prior_size=other)),
                        "the radius and centre priors depend on the stamp: build them inside the model from the "
                        "image it is given, priors = sersic_priors(psf.shape), not once for the lesson's galaxy")
            assert_close(got, want, what=f"the log density on a {size}×{size} image at parameter point {i + 1}",
                         rtol=1e-5, atol=1e-2, mistakes=mistakes,
                         hint="priors = sersic_priors(psf.shape); the mean of the pixels is observed_model(params, psf) "
                              "(with the PSF); dist.Normal(mean, sigma) with sigma the standard deviation")
    return "priors, likelihood and log density match the reference on 24- and 32-pixel images"
