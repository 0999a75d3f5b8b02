"""Checks for the galaxy lessons (07+).

Each check runs the participant's function on several inputs against the reference in
this package and, when the answer is wrong, compares it with the usual mistakes so the
hint names the one actually made.
"""

from __future__ import annotations

import numpy as np

from workshop.checking import CheckFailed, assert_close, assert_shape, call

__all__ = ["upsample_nearest", "time_features", "eps_matching_loss", "ddim_step", "half_light_radius",
           "tweedie_denoise", "psnr"]


def _is_close(a, b, rtol=1e-4, atol=1e-5) -> bool:
    try:
        return np.shape(a) == np.shape(b) and np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol, atol=atol)
    except (TypeError, ValueError):
        return False


def _compare(got, expected, mistakes, *, what, hint, rtol=1e-4, atol=1e-5):
    if _is_close(got, expected, rtol, atol):
        return
    for wrong, mhint in mistakes:
        if _is_close(got, wrong, rtol, atol):
            assert_close(got, expected, what=what, hint=mhint, rtol=rtol, atol=atol)
    assert_close(got, expected, what=what, hint=hint, rtol=rtol, atol=atol)


def upsample_nearest(candidate):
    """``(C, H, W) -> (C, 2H, 2W)``, each pixel copied into a 2x2 block."""
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    for shape in ((1, 2, 2), (3, 4, 5), (8, 8, 8)):
        x = jnp.asarray(rng.normal(size=shape), jnp.float32)
        got = call(candidate, x, what=f"x of shape {shape}")
        assert_shape(got, (shape[0], 2 * shape[1], 2 * shape[2]), what=f"upsampling {shape}",
                     hint="repeat along the two spatial axes (1 and 2), not along the channels")
        expected = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
        tiled = jnp.tile(x, (1, 2, 2))
        _compare(got, expected, [(tiled, "jnp.tile copies the whole image side by side; use jnp.repeat, which copies each pixel")],
                 what=f"upsampling x of shape {shape}", hint="out[c, i, j] must equal x[c, i // 2, j // 2]")
    return "checked on 3 shapes"


def time_features(candidate):
    """Sinusoidal time features as in :func:`workshop_astro.unet.time_embedding`."""
    from ..unet import time_embedding

    for dim in (8, 32):
        for t in (0.0, 1e-3, 0.37, 1.0):
            got = call(candidate, t, dim, what=f"t={t}, dim={dim}")
            assert_shape(got, (dim,), what=f"features for dim={dim}", hint="concatenate dim/2 sines and dim/2 cosines")
            unscaled = time_embedding(t / 1000.0, dim)
            _compare(got, time_embedding(t, dim), [(unscaled, "multiply t by 1000 before the frequencies: t lives in [0, 1]")],
                     what=f"features of t={t}, dim={dim}", hint="angles = 1000 t * exp(-log(10000) k / (dim/2 - 1)); sines first, then cosines",
                     rtol=1e-4, atol=1e-4)
    return "checked 8 (t, dim) pairs"


def eps_matching_loss(candidate):
    """``mean((model(alpha x0 + std eps, t) - eps)**2)`` with per-sample ``t``."""
    import jax
    import jax.numpy as jnp

    from ..sde import VPSDE

    sde = VPSDE()
    model = lambda x, t: 0.5 * x + t  # a simple stand-in network
    rng = np.random.default_rng(1)
    for b in (2, 5):
        x0 = jnp.asarray(rng.uniform(-1, 1, (b, 3, 4, 4)), jnp.float32)
        eps = jnp.asarray(rng.normal(size=(b, 3, 4, 4)), jnp.float32)
        t = jnp.asarray(rng.uniform(0.01, 1, b), jnp.float32)
        got = call(candidate, model, sde, x0, t, eps, what=f"a batch of {b}")
        a = jax.vmap(sde.marginal_mean_coeff)(t)[:, None, None, None]
        s = jax.vmap(sde.marginal_std)(t)[:, None, None, None]
        xt = a * x0 + s * eps
        pred = jax.vmap(model)(xt, t)
        expected = jnp.mean((pred - eps) ** 2)
        _compare(np.asarray(got).reshape(()) if np.size(got) == 1 else got, expected, [
            (jnp.mean((pred - x0) ** 2), "the target is the noise eps, not the clean image x0"),
            (jnp.mean((jax.vmap(model)(x0 + s * eps, t) - eps) ** 2), "the mean of x(t) is alpha(t) * x0: scale x0 first"),
        ], what=f"the loss on a batch of {b}", hint="x_t = alpha(t) x0 + std(t) eps; loss = mean((model(x_t, t) - eps)**2)",
            rtol=1e-4, atol=1e-6)
    return "checked on 2 batches"


def ddim_step(candidate):
    """``x_t = alpha_t x0 + std_t (x_s - alpha_s x0) / std_s``: the deterministic first-order step."""
    rng = np.random.default_rng(2)
    for _ in range(4):
        x = rng.normal(size=(3, 4, 4))
        x0 = rng.uniform(-1, 1, (3, 4, 4))
        a_s, a_t = sorted(rng.uniform(0.05, 0.99, 2))
        s_s, s_t = np.sqrt(1 - a_s**2), np.sqrt(1 - a_t**2)
        got = call(candidate, x, x0, a_s, s_s, a_t, s_t, what="random x, x0 and coefficients")
        eps = (x - a_s * x0) / s_s
        expected = a_t * x0 + s_t * eps
        _compare(got, expected, [
            (a_t * x0 + s_s * eps, "the new noise level is std_t, not std_s"),
            (a_t * x0 + s_t * (x - x0) / s_s, "the noise estimate is (x - alpha_s * x0) / std_s"),
        ], what="one step", hint="estimate eps = (x - alpha_s x0) / std_s, then recombine with alpha_t and std_t")
    return "checked 4 steps"


def half_light_radius(candidate):
    """Radius around the flux-weighted centre holding half the (positive) flux of a 2-D image."""
    yy, xx = np.mgrid[0:48, 0:48].astype(float)
    for sigma, (cy, cx) in ((2.0, (24, 24)), (3.5, (20, 27)), (5.0, (23.5, 24.5))):
        img = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        got = float(np.asarray(call(candidate, img, what=f"a Gaussian of sigma {sigma}")))
        expected = sigma * np.sqrt(2 * np.log(2))
        if abs(got - expected) > 0.3:
            hint = ("measure radii from the flux-weighted centre, sort pixels by radius and find where the cumulative "
                    "flux reaches half the total")
            if abs(got - sigma) < 0.3:
                hint = "that is sigma; the half-light radius of a 2-D Gaussian is sigma * sqrt(2 ln 2)"
            raise CheckFailed(f"for a circular Gaussian of sigma {sigma} at ({cy}, {cx}) the half-light radius is "
                              f"{expected:.2f} pixels", expected=round(expected, 3), got=round(got, 3), hint=hint)
    return "checked on 3 Gaussian galaxies"


def tweedie_denoise(candidate):
    """``x0 = (x + std^2 score) / alpha``."""
    rng = np.random.default_rng(3)
    for _ in range(3):
        x, sc = rng.normal(size=(3, 4, 4)), rng.normal(size=(3, 4, 4))
        a = rng.uniform(0.1, 1)
        s = np.sqrt(1 - a**2)
        got = call(candidate, x, sc, a, s, what="random inputs")
        _compare(got, (x + s**2 * sc) / a, [((x + s * sc) / a, "Tweedie's formula uses std**2 times the score"),
                                            (x + s**2 * sc, "divide by alpha at the end")],
                 what="the denoised image", hint="E[x0 | x_t] = (x_t + std^2 * score) / alpha")
    return "checked on 3 inputs"


def psnr(candidate):
    """``10 log10(range^2 / MSE)``."""
    rng = np.random.default_rng(4)
    for scale in (0.01, 0.1, 0.5):
        t = rng.uniform(-1, 1, (3, 8, 8))
        e = t + scale * rng.normal(size=t.shape)
        got = float(np.asarray(call(candidate, e, t, what=f"noise of std {scale}")))
        mse = np.mean((e - t) ** 2)
        expected = 10 * np.log10(4 / mse)
        if abs(got - expected) > 1e-3:
            hint = "PSNR = 10 log10(data_range**2 / MSE) with data_range = 2 for images in [-1, 1]"
            if abs(got - 10 * np.log10(1 / mse)) < 1e-3:
                hint = "the data range of images in [-1, 1] is 2, so the peak power is 4"
            elif abs(got - 20 * np.log10(4 / mse)) < 1e-3:
                hint = "it is 10 log10 of a power ratio (MSE is already squared)"
            raise CheckFailed(f"PSNR for noise of std {scale} is wrong", expected=round(expected, 4), got=round(got, 4), hint=hint)
    return "checked at 3 noise levels"
