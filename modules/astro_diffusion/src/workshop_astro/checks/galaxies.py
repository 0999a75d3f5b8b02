"""Checks for the galaxy lessons (07+).

Each check runs the participant's function on several inputs against the reference in
this package and, when the answer is wrong, compares it with the usual mistakes so the
hint names the one actually made.
"""

from __future__ import annotations

import numpy as np

from workshop.checking import CheckFailed, assert_close, assert_shape, call, describe

__all__ = ["upsample_nearest", "time_features", "time_conditioned_block", "standardise", "unstandardise",
           "eps_matching_loss", "ema_update", "ddim_step", "final_denoise", "half_light_radius", "tweedie_denoise", "psnr"]


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


# --------------------------------------------------------------------------- the training pipeline's easy-to-miss steps


def _channel_images(rng, shape, means, stds):
    """Images whose channels sit at very different levels and spreads, and whose images differ too,
    so that statistics over the wrong axes give different numbers."""
    n, c, h, w = shape
    x = rng.normal(size=shape) * np.asarray(stds)[None, :, None, None] + np.asarray(means)[None, :, None, None]
    return (x + rng.normal(0.0, 0.5, (n, 1, 1, 1)) * np.asarray(stds)[None, :, None, None]).astype(np.float32)


def standardise(candidate):
    """``standardise(images) -> (z, mean, std)``: per-channel statistics over the images and pixels.

    Tests ``mean`` and ``std`` of shape ``(C,)`` taken over the axes ``(N, H, W)`` and
    ``z = (images - mean) / std`` broadcast along the channel axis, on ``(N, C, H, W)``
    stacks whose channels have means -0.8 .. 2 and spreads 0.2 .. 3 and whose images are
    offset from one another, one of them with ``W == C`` so that a mean of shape ``(C,)``
    broadcast along the last axis gives numbers instead of an error. Recognised mistakes:
    statistics per image, over all channels at once or per pixel, mean and std swapped,
    the variance instead of the std, broadcasting along the last axis.
    """
    rng = np.random.default_rng(5)
    cases = (((6, 3, 5, 3), (-0.8, 0.1, 2.0), (0.2, 1.0, 3.0)), ((4, 4, 4, 6), (-0.5, 1.5, 0.0, -2.0), (0.3, 2.0, 0.7, 1.2)))
    hints = {"Incompatible shapes for broadcasting": "the statistics have shape (C,) but the images (N, C, H, W): "
                                                     "index them with [:, None, None] (or use keepdims=True)",
             "could not be broadcast": "the statistics have shape (C,) but the images (N, C, H, W): index them with "
                                       "[:, None, None] (or use keepdims=True)"}
    for shape, means, stds in cases:
        x = _channel_images(rng, shape, means, stds)
        what = f"images of shape {shape}"
        got = call(candidate, x, what=what, hints=hints)
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            raise CheckFailed(f"for {what}, expected the tuple (z, mean, std), got {describe(got)}",
                              hint="return z together with the statistics: return z, mean, std")
        z, mean, std = got
        c = shape[1]
        m, s = x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))
        col = (slice(None), None, None)
        expected = (x - m[col]) / s[col]
        m_img, s_img = x.mean(axis=(2, 3), keepdims=True), x.std(axis=(2, 3), keepdims=True)
        mistakes = {
            "statistics per image": ((x - m_img) / s_img,
                                     "average over the images too: axis=(0, 2, 3) (N, H, W), not (2, 3)"),
            "statistics over all channels at once": ((x - x.mean()) / x.std(),
                                                     "keep the channels apart: reduce over axis=(0, 2, 3), not every axis"),
            "statistics per pixel": ((x - x.mean(0)) / x.std(0), "reduce over the pixels too: axis=(0, 2, 3), not 0"),
            "mean and std swapped": ((x - s[col]) / m[col], "subtract the mean, then divide by the std"),
            "divided by the variance": ((x - m[col]) / s[col] ** 2,
                                        "divide by the standard deviation, the square root of the variance"),
        }
        if shape[1] == shape[3]:
            mistakes["broadcast along the last axis"] = (
                (x - m) / s, "a (C,) array lines up with the LAST axis (W); index it with [:, None, None] so it "
                             "lines up with the channels")
        assert_close(np.asarray(z, float), expected, what=f"z for {what}", rtol=1e-4, atol=1e-4, mistakes=mistakes,
                     hint="z = (images - mean[:, None, None]) / std[:, None, None] with the statistics over (N, H, W)")
        for name, val, ref in (("mean", mean, m), ("std", std, s)):
            assert_shape(np.asarray(val), (c,), what=f"the {name} for {what}",
                         hint="one number per channel: reduce over axis=(0, 2, 3) (without keepdims for the returned value)")
            assert_close(np.asarray(val, float), ref, what=f"the {name} for {what}", rtol=1e-4, atol=1e-4,
                         hint=f"the {name} of each channel over the images and pixels, axis=(0, 2, 3)")
    return "checked on 2 stacks of images"


def unstandardise(candidate):
    """``unstandardise(z, mean, std) = z * std + mean`` per channel: back from the model's units to images.

    Tests the inverse of :func:`standardise` on ``(N, C, H, W)`` samples with statistics of
    shape ``(C,)``, one stack with ``W == C``. Recognised mistakes: the samples returned
    unchanged (the inverse forgotten), the operations in the wrong order, mean and std
    swapped, standardising again instead of inverting, broadcasting along the last axis.
    """
    rng = np.random.default_rng(6)
    hints = {"Incompatible shapes for broadcasting": "the statistics have shape (C,) but the samples (N, C, H, W): "
                                                     "index them with [:, None, None]",
             "could not be broadcast": "the statistics have shape (C,) but the samples (N, C, H, W): index them with "
                                       "[:, None, None]"}
    for shape in ((5, 3, 4, 3), (2, 3, 6, 5)):
        z = rng.normal(size=shape).astype(np.float32)
        mean = np.asarray([-0.84, 0.3, 1.7], np.float32)
        std = np.asarray([0.23, 1.4, 0.6], np.float32)
        what = f"samples of shape {shape}"
        got = call(candidate, z, mean, std, what=what, hints=hints)
        col = (slice(None), None, None)
        expected = z * std[col] + mean[col]
        mistakes = {
            "the samples were returned unchanged": (
                z, "the model works in standardised units: samples must be mapped back with z * std + mean before "
                   "they are shown or measured"),
            "the inverse was applied in the wrong order": (
                (z + mean[col]) * std[col], "undo the steps in reverse order: multiply by the std first, then add the mean"),
            "mean and std swapped": (z * mean[col] + std[col], "multiply by the std, then add the mean"),
            "standardised again instead of inverted": ((z - mean[col]) / std[col],
                                                       "invert (z - mean) / std: z * std + mean"),
        }
        if shape[1] == shape[3]:
            mistakes["broadcast along the last axis"] = (
                z * std + mean, "a (C,) array lines up with the LAST axis (W); index it with [:, None, None]")
        assert_close(np.asarray(got, float), expected, what=f"the images for {what}", rtol=1e-4, atol=1e-4,
                     mistakes=mistakes, hint="images = z * std[:, None, None] + mean[:, None, None]")
    return "checked on 2 stacks of samples"


def time_conditioned_block(candidate):
    """``x + inner(x * (1 + scale) + shift)`` with ``scale, shift = split(proj(embed(t)), 2)`` per channel.

    Tests FiLM time conditioning inside a residual block on one ``(C, H, W)`` feature map
    with ``C == W != H`` (so that a scale broadcast along the last axis gives numbers, not
    an error), a nonlinear ``inner`` (so that conditioning after the residual sum differs)
    and embeddings far from ``t`` itself. Recognised mistakes: conditioning after the
    residual sum, the skip path conditioned too, scale without ``1 +``, scale and shift
    swapped, broadcast along the last axis, the raw ``t`` given to ``proj``.
    """
    import jax.numpy as jnp

    from ..unet import time_embedding

    rng = np.random.default_rng(7)
    c, h, w, d = 4, 3, 4, 8
    W_in = jnp.asarray(rng.normal(0, 0.6, (c, c)), jnp.float32)
    W_t = jnp.asarray(rng.normal(0, 0.5, (2 * c, d)), jnp.float32)
    b_t = jnp.asarray(rng.normal(0, 0.3, 2 * c), jnp.float32)
    inner = lambda hh: jnp.tanh(jnp.einsum("dc,chw->dhw", W_in, hh))  # noqa: E731
    proj = lambda e: W_t @ e + b_t  # noqa: E731
    embed = lambda t: time_embedding(t, d)  # noqa: E731
    hints = {"matmul input operand 1 must have ndim at least 1": "proj takes the time EMBEDDING (a vector of "
             "features), not the raw time t: scale, shift = jnp.split(proj(embed(t)), 2)",
             "Incompatible shapes for broadcasting": "scale and shift have shape (C,); index them with [:, None, None] "
                                                     "so they line up with the channels of (C, H, W)"}
    for t in (0.05, 0.4, 0.9):
        x = jnp.asarray(rng.normal(size=(c, h, w)), jnp.float32)
        what = f"a ({c}, {h}, {w}) feature map at t={t}"
        got = call(candidate, x, t, inner, proj, embed, what=what, hints=hints)
        scale, shift = jnp.split(proj(embed(t)), 2)
        sc, sh = scale[:, None, None], shift[:, None, None]
        expected = x + inner(x * (1 + sc) + sh)
        mistakes = {
            "the time was applied after the residual sum": (
                (x + inner(x)) * (1 + sc) + sh, "modulate INSIDE the block, before its layers: "
                                                "x + inner(x * (1 + scale) + shift), not (x + inner(x)) * ... + shift"),
            "the skip path was conditioned too": (
                (x * (1 + sc) + sh) + inner(x * (1 + sc) + sh),
                "keep the skip path clean: add the ORIGINAL x to inner(modulated x)"),
            "scale without the 1 +": (
                x + inner(x * sc + sh), "use (1 + scale): with scale near 0 at initialisation the block must start "
                                        "close to the identity, not multiply its input by 0"),
            "scale and shift swapped": (x + inner(x * (1 + sh) + sc),
                                        "the first half of proj's output is the scale, the second the shift"),
            "broadcast along the last axis (a transpose)": (
                x + inner(x * (1 + scale) + shift), "a (C,) vector lines up with the LAST axis of (C, H, W); index "
                                                    "it with [:, None, None] so each channel gets its own scale"),
        }
        assert_close(got, expected, what=f"the block's output for {what}", rtol=1e-4, atol=1e-5, mistakes=mistakes,
                     hint="scale, shift = jnp.split(proj(embed(t)), 2); return x + inner(x * (1 + scale[:, None, None]) "
                          "+ shift[:, None, None])")
    return "checked at 3 times"


def _params_tree(rng, offset):
    """A small model as a pytree: arrays of different sizes and values, and an activation
    function as a leaf, as in an Equinox module."""
    import jax

    return {"conv": {"weight": rng.normal(offset, 1.0, (3, 3)).astype(np.float32),
                     "bias": np.full(3, 2.0 * offset, np.float32)},
            "activation": jax.nn.silu,
            "out": rng.normal(-offset, 0.5, (4,)).astype(np.float32)}


def ema_update(candidate):
    """``decay * ema + (1 - decay) * params`` on every array leaf of a pytree; other leaves kept.

    Tests an EMA of a model given as a dict of arrays with an activation function as a
    leaf (like an Equinox module), with leaves of different values in ``ema`` and
    ``params`` and ``decay`` 0.9 and 0.99, so that swapping ``decay`` and ``1 - decay``
    changes the numbers. Recognised mistakes: decay and 1 - decay swapped, the params
    returned, the old average returned, ``1 - decay`` missing, arithmetic on the
    non-array leaves.
    """
    import jax

    rng = np.random.default_rng(8)
    hints = {"unsupported operand type": "the pytree also holds leaves that are not arrays (here the activation "
                                         "function): average only the arrays, e.g. `... if eqx.is_inexact_array(p) else e`",
             "not a valid JAX type": "the pytree also holds leaves that are not arrays (here the activation function): "
                                     "average only the arrays, e.g. `... if eqx.is_inexact_array(p) else e`"}
    for decay in (0.9, 0.99):
        ema, params = _params_tree(rng, 1.0), _params_tree(rng, -2.0)
        what = f"decay={decay}"
        got = call(candidate, ema, params, decay, what=what, hints=hints)
        if jax.tree_util.tree_structure(got) != jax.tree_util.tree_structure(ema):
            raise CheckFailed(f"with {what} the result is not shaped like the model", expected=describe(ema),
                              got=describe(got), hint="map over both trees at once with jax.tree_util.tree_map")
        leaves, e_leaves, p_leaves = (jax.tree_util.tree_leaves(tr) for tr in (got, ema, params))
        for g, e in zip(leaves, e_leaves):
            if not isinstance(e, np.ndarray) and g is not e:
                raise CheckFailed(f"with {what} the activation-function leaf changed into {describe(g)}",
                                  hint="leave the leaves that are not arrays as they are (take them from ema)")
        arrays = [i for i, e in enumerate(e_leaves) if isinstance(e, np.ndarray)]
        pick = lambda ls: [np.asarray(ls[i], float) for i in arrays]  # noqa: E731
        E, P = pick(e_leaves), pick(p_leaves)
        blend = lambda a, b: [a * e + b * p for e, p in zip(E, P)]  # noqa: E731
        mistakes = {
            "decay and 1 - decay swapped": (blend(1 - decay, decay), "the OLD average keeps the weight decay (close to 1); "
                                                                      "the new params get 1 - decay"),
            "the params were returned": (P, "return the moving average, not the current params"),
            "the average did not move": (E, "mix in the current params: decay * ema + (1 - decay) * params"),
            "1 - decay is missing": (blend(decay, 1.0), "weight the params by (1 - decay) so the weights sum to 1"),
        }
        assert_close(pick(leaves), blend(decay, 1 - decay), what=f"the average with {what}", rtol=1e-5, atol=1e-5,
                     mistakes=mistakes, hint="new ema = decay * ema + (1 - decay) * params, leaf by leaf")
    return "checked at 2 decays"


def final_denoise(candidate):
    """``x0 = (x + std(t)^2 score(x, t)) / alpha(t)`` at the sampler's last time ``t_eps``.

    Tests the sampler's last step, Tweedie's denoised estimate instead of the last noisy
    iterate, with the exact score of Gaussian data under the VP SDE, on one ``(C, H, W)``
    image at three end times large enough that every mistake changes the numbers.
    Recognised mistakes: the noisy ``x`` returned, ``1 / alpha`` missing, the sign of the
    score term, ``std`` instead of ``std^2``.
    """
    import jax.numpy as jnp

    from ..sde import VPSDE

    sde = VPSDE()
    rng = np.random.default_rng(9)
    m0, s0 = 0.3, 0.4  # every pixel of the data ~ N(m0, s0^2): the score is known exactly
    for t_eps in (0.02, 0.1, 0.35):
        a, s = float(sde.marginal_mean_coeff(t_eps)), float(sde.marginal_std(t_eps))
        score_fn = lambda x, t: -(x - sde.marginal_mean_coeff(t) * m0) / (  # noqa: E731
            sde.marginal_mean_coeff(t) ** 2 * s0**2 + sde.marginal_std(t) ** 2)
        x = jnp.asarray(rng.normal(a * m0, np.sqrt(a**2 * s0**2 + s**2), (3, 4, 4)), jnp.float32)
        what = f"t_eps={t_eps}"
        got = call(candidate, score_fn, sde, x, t_eps, what=what)
        sc = np.asarray(score_fn(x, t_eps), float)
        xn = np.asarray(x, float)
        mistakes = {
            "the last noisy iterate was returned": (
                xn, "at t_eps the iterate still carries noise of std(t_eps); return the denoised estimate "
                    "(x + std^2 score) / alpha instead"),
            "1 / alpha is missing": (xn + s**2 * sc, "divide by alpha(t_eps) at the end: x(t) = alpha x0 + std eps"),
            "the sign of the score term is flipped": (
                (xn - s**2 * sc) / a, "the score points towards the data: ADD std^2 * score"),
            "std instead of std^2": ((xn + s * sc) / a, "Tweedie's formula uses the variance std^2 times the score"),
        }
        assert_close(got, (xn + s**2 * sc) / a, what=f"the final image at {what}", rtol=1e-4, atol=1e-5,
                     mistakes=mistakes, hint="alpha, std at t_eps; return (x + std**2 * score_fn(x, t_eps)) / alpha")
    return "checked at 3 end times"
