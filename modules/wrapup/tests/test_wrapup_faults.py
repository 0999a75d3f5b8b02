"""Fault catalogue of the wrap-up module's public functions: a bad argument is refused with a
message naming it, the value received and what is expected, before any JAX work."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workshop_wrapup import data_parallel, deconvolution, fit, inference, sersic

KEY = jax.random.key(0)
IMAGE = jnp.zeros((16, 16))
PSF = sersic.gaussian_psf((16, 16), 1.5)

CASES = {
    "gaussian_psf sigma 0": (lambda: sersic.gaussian_psf((16, 16), 0.0), ValueError,
                             "sigma must be a finite number > 0, got 0.0"),
    "gaussian_psf empty shape": (lambda: sersic.gaussian_psf((0, 16), 1.0), ValueError,
                                 "shape[0] must be at least 1, got 0"),
    "make_galaxy size 4": (lambda: sersic.make_galaxy(KEY, size=4), ValueError, "size must be at least 8, got 4"),
    "make_galaxy negative noise": (lambda: sersic.make_galaxy(KEY, noise_sigma=-1.0), ValueError,
                                   "noise_sigma must be a finite number > 0"),
    "fit_sersic noise 0": (lambda: fit.fit_sersic(IMAGE, PSF, 0.0), ValueError,
                           "noise_sigma must be a finite number > 0, got 0.0"),
    "fit_sersic PSF of another size": (lambda: fit.fit_sersic(IMAGE, PSF[:8, :8], 0.1), ValueError,
                                       "psf has shape (8, 8), image (16, 16)"),
    "fit_sersic RGB image": (lambda: fit.fit_sersic(jnp.zeros((16, 16, 3)), PSF, 0.1), ValueError,
                             "image must have 2 axes (h, w), got shape (16, 16, 3)"),
    "fit_sersic uint8 image": (lambda: fit.fit_sersic(np.zeros((16, 16), np.uint8), PSF, 0.1), TypeError,
                               "image must hold floating-point values"),
    "tikhonov lam 0": (lambda: deconvolution.tikhonov_deconvolve(IMAGE, PSF, 0.0), ValueError,
                       "lam must be a finite number > 0, got 0.0"),
    "tikhonov max_steps 0": (lambda: deconvolution.tikhonov_deconvolve(IMAGE, PSF, 1e-2, max_steps=0), ValueError,
                             "max_steps must be at least 1, got 0"),
    "sample_posterior 0 samples": (lambda: inference.sample_posterior(KEY, IMAGE, PSF, 0.1, num_samples=0),
                                   ValueError, "num_samples must be at least 1, got 0"),
    "sample_posterior negative warm-up": (lambda: inference.sample_posterior(KEY, IMAGE, PSF, 0.1, num_warmup=-1),
                                          ValueError, "num_warmup must be at least 0, got -1"),
    "data-parallel train 0 steps": (lambda: data_parallel.train({"w": np.zeros(2)}, jnp.zeros((4, 2)),
                                                                steps=0, key=KEY),
                                    ValueError, "steps must be at least 1, got 0"),
    "data-parallel train lr -1": (lambda: data_parallel.train({"w": np.zeros(2)}, jnp.zeros((4, 2)),
                                                              steps=1, lr=-1.0, key=KEY),
                                  ValueError, "lr must be a finite number > 0, got -1.0"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused(case):
    call, kind, words = CASES[case]
    with pytest.raises(kind) as exc:
        call()
    assert words in str(exc.value), str(exc.value)
