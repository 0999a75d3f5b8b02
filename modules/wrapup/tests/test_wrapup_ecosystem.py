"""Each ecosystem example recovers known parameters; its checks pass the reference and fail mistakes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from workshop.checking import CheckFailed, NotAttempted

from workshop_wrapup import checks
from workshop_wrapup.deconvolution import (blur_operator, fourier_tikhonov, make_blurred_scene, naive_deconvolve,
                                           normal_operator, rms_error, tikhonov_deconvolve)
from workshop_wrapup.fit import angle_difference, fit_sersic, moment_guess, residuals, to_physical, to_unconstrained
from workshop_wrapup.inference import sersic_model
from workshop_wrapup.sersic import PARAM_NAMES, SersicParams, make_galaxy, observed_model, sersic_b


def test_sersic_b_puts_half_the_light_inside_r_eff():
    # Numerically integrate a round profile: the light inside R_e must be half the total.
    for n in (1.0, 2.5, 4.0):
        r = np.linspace(1e-4, 200.0, 400_000)
        b = float(sersic_b(jnp.asarray(n)))
        prof = np.exp(-b * (r ** (1 / n) - 1)) * r
        inside = np.trapezoid(prof[r <= 1.0], r[r <= 1.0])
        assert abs(inside / np.trapezoid(prof, r) - 0.5) < 2e-3


@pytest.fixture(scope="module")
def galaxy():
    return make_galaxy(jax.random.key(0), size=32)


@pytest.fixture(scope="module")
def fitted(galaxy):
    return fit_sersic(galaxy.image, galaxy.psf, galaxy.noise_sigma)


def test_optimistix_fit_recovers_the_true_parameters(galaxy, fitted):
    p, t = fitted.params, galaxy.truth
    assert abs(float(p.n / t.n) - 1) < 0.05
    assert abs(float(p.r_eff / t.r_eff) - 1) < 0.05
    assert abs(float(p.amplitude / t.amplitude) - 1) < 0.05
    assert abs(float(p.ellipticity - t.ellipticity)) < 0.02
    assert float(angle_difference(p.angle, t.angle)) < 0.03
    assert abs(float(p.x0 - t.x0)) < 0.05 and abs(float(p.y0 - t.y0)) < 0.05
    assert 0.8 < float(fitted.chi2) / fitted.dof < 1.2  # residuals look like the noise
    # ... and the moment-based start was clearly worse: the solver did the work.
    assert abs(float(fitted.start.amplitude / t.amplitude) - 1) > 0.2


def test_unconstrained_round_trip():
    p = SersicParams(1.7, 3.3, 2.4, 0.45, 1.1, 10.0, 12.0)
    back = to_physical(to_unconstrained(SersicParams(*map(jnp.asarray, p))))
    np.testing.assert_allclose(np.array(back, dtype=float), np.array(p, dtype=float), rtol=1e-5)


# The NUTS posterior of this galaxy at these sizes (sample_posterior, 100 warm-up + 100
# samples) is asserted to cover the truth in test_wrapup_demo.py, on the tour's own run:
# running the same sampler twice cost CI a NUTS compilation and chain for nothing.


def test_lineax_cg_matches_closed_form_and_beats_naive_inverse():
    scene = make_blurred_scene(jax.random.key(0), size=32)
    lam = 1e-3
    restored = tikhonov_deconvolve(scene.observed, scene.psf, lam)
    assert restored.converged and restored.cg_steps > 5
    np.testing.assert_allclose(restored.image, fourier_tikhonov(scene.observed, scene.psf, lam), atol=1e-4)
    err = float(rms_error(restored.image, scene.truth))
    assert err < 0.8 * float(rms_error(scene.observed, scene.truth))  # better than not deconvolving
    assert err < 1e-3 * float(rms_error(naive_deconvolve(scene.observed, scene.psf), scene.truth))


def test_blur_operator_transpose_is_the_adjoint():
    scene = make_blurred_scene(jax.random.key(3), size=16)
    K = blur_operator(scene.psf)
    a, b = jax.random.normal(jax.random.key(1), (2, 16, 16))
    np.testing.assert_allclose(jnp.vdot(K.mv(a), b), jnp.vdot(a, K.transpose().mv(b)), rtol=1e-4)


def _verdict(check, fn):
    try:
        check(fn)
        return "pass"
    except NotAttempted:
        return "not attempted"
    except CheckFailed as exc:
        return "fail: " + exc.message


def test_residuals_check():
    assert _verdict(checks.sersic_residuals, residuals) == "pass"
    assert _verdict(checks.sersic_residuals, lambda u, a: -residuals(u, a)) == "pass"  # sign is irrelevant
    unscaled = lambda u, a: (observed_model(to_physical(u), a[1]) - a[0]).ravel()  # noqa: E731
    assert "not divided by the noise" in _verdict(checks.sersic_residuals, unscaled)
    from workshop_wrapup.sersic import sersic_image

    no_psf = lambda u, a: ((sersic_image(to_physical(u), a[0].shape) - a[0]) / a[2]).ravel()  # noqa: E731
    assert _verdict(checks.sersic_residuals, no_psf).startswith("fail")
    no_transform = lambda u, a: ((observed_model(SersicParams(*u), a[1]) - a[0]) / a[2]).ravel()  # noqa: E731
    assert _verdict(checks.sersic_residuals, no_transform).startswith("fail")
    assert _verdict(checks.sersic_residuals, lambda u, a: None) == "not attempted"


def test_fit_check():
    assert _verdict(checks.fit_galaxy, lambda img, psf, s: fit_sersic(img, psf, s).params) == "pass"
    assert _verdict(checks.fit_galaxy, lambda img, psf, s: moment_guess(img)).startswith("fail")
    free = lambda img, psf, s: tuple(to_unconstrained(fit_sersic(img, psf, s).params))  # noqa: E731
    assert _verdict(checks.fit_galaxy, free).startswith("fail")
    assert _verdict(checks.fit_galaxy, lambda img, psf, s: None) == "not attempted"


def test_normal_operator_check():
    import lineax as lx

    assert _verdict(checks.normal_operator, normal_operator) == "pass"
    untagged = lambda psf, lam: lx.FunctionLinearOperator(normal_operator(psf, lam).mv, normal_operator(psf, lam).in_structure())  # noqa: E731
    assert "not tagged" in _verdict(checks.normal_operator, untagged)
    no_lam = lambda psf, lam: normal_operator(psf, 0.0)  # noqa: E731
    assert _verdict(checks.normal_operator, no_lam).startswith("fail")
    just_k = lambda psf, lam: blur_operator(psf)  # noqa: E731
    assert _verdict(checks.normal_operator, just_k).startswith("fail")
    assert _verdict(checks.normal_operator, lambda psf, lam: None) == "not attempted"


def test_numpyro_model_check():
    import numpyro
    import numpyro.distributions as dist

    from workshop_wrapup.inference import sersic_priors

    assert _verdict(checks.sersic_model, sersic_model) == "pass"

    def variance_not_std(image, psf, sigma):
        pri = sersic_priors(psf.shape)
        p = SersicParams(*(numpyro.sample(k, pri[k]) for k in PARAM_NAMES))
        numpyro.sample("image", dist.Normal(observed_model(p, psf), sigma**2).to_event(2), obs=image)

    def not_observed(image, psf, sigma):
        pri = sersic_priors(psf.shape)
        p = SersicParams(*(numpyro.sample(k, pri[k]) for k in PARAM_NAMES))
        numpyro.sample("image", dist.Normal(observed_model(p, psf), sigma).to_event(2))

    def missing_param(image, psf, sigma):
        pri = sersic_priors(psf.shape)
        p = SersicParams(*(numpyro.sample(k, pri[k]) if k != "n" else 1.0 for k in PARAM_NAMES))
        numpyro.sample("image", dist.Normal(observed_model(p, psf), sigma).to_event(2), obs=image)

    assert _verdict(checks.sersic_model, variance_not_std).startswith("fail: the log density")
    assert "no observed site" in _verdict(checks.sersic_model, not_observed)
    assert "not sampled" in _verdict(checks.sersic_model, missing_param)
    assert _verdict(checks.sersic_model, lambda image, psf, sigma: None) == "not attempted"
