"""Checks for the wrap-up exercises: each takes the participant's function.

They run on whatever devices the notebook's kernel has (the lessons start it with eight
simulated CPU devices) and compare with the reference code of this package.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from workshop.checking import CheckFailed, NotAttempted, assert_close, call, describe, expect

from .sersic import PARAM_NAMES, SersicParams, make_galaxy


def _mesh():
    from .sharding import data_mesh

    return data_mesh()


def shard_batch(candidate) -> str:
    """``shard_batch(batch, mesh)`` returns the batch on the mesh, rows split over ``"data"``."""
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = _mesh()
    n = mesh.size
    batch = jnp.arange(2 * n * 3 * 4, dtype=jnp.float32).reshape(2 * n, 3, 4)
    got = call(candidate, batch, mesh, what=f"a batch of shape {batch.shape} and a {n}-device mesh")
    expect(isinstance(got, jax.Array), f"expected a jax.Array, got {describe(got)}",
           hint="use jax.device_put(batch, NamedSharding(mesh, P('data')))")
    assert_close(got, batch, what="the sharded batch", hint="sharding moves data, it must not change any value")
    wanted = NamedSharding(mesh, P("data"))
    if not got.sharding.is_equivalent_to(wanted, batch.ndim):
        shapes = sorted({tuple(s.data.shape) for s in got.addressable_shards})
        raise CheckFailed(
            f"each device should hold {2} of the {2 * n} rows; the pieces on the devices have shape(s) {shapes}",
            hint="split the leading (batch) axis: PartitionSpec('data'); P() copies everything to every device, "
                 "and P(None, 'data') splits the second axis",
        )
    spec = getattr(got.sharding, "spec", None)
    expect(spec is not None and len(spec) > 0 and spec[0] in ("data", ("data",)),
           f"the sharding is {got.sharding}; expected a NamedSharding with PartitionSpec('data')",
           hint="NamedSharding(mesh, P('data')) names the mesh axis the rows are split over")
    return f"rows split over {n} device(s)"


def sum_of_squares(candidate) -> str:
    """``sum_of_squares(x, mesh)`` computes ``Σ x²`` with ``jax.shard_map`` and ``psum``."""
    from .sharding import shard_rows

    mesh = _mesh()
    n = mesh.size
    for rows, seed in ((4 * n, 0), (2 * n, 1)):
        x = jax.random.normal(jax.random.key(seed), (rows, 5))
        xs = shard_rows(x, mesh)
        got = call(candidate, xs, mesh, what=f"x of shape {x.shape} split over {n} device(s)")
        got_arr = jnp.asarray(got)
        if got_arr.shape == (n,) and n > 1:
            raise CheckFailed("you returned one partial sum per device, not the global sum",
                              hint="add them up across devices inside the function with jax.lax.psum(local, 'data') "
                                   "and use out_specs=P()")
        assert_close(got_arr, jnp.sum(x**2), what=f"the sum of squares of x with shape {x.shape}", rtol=1e-4,
                     hint="each device sums the squares of its own rows; jax.lax.psum adds those partial sums")
    text = str(jax.make_jaxpr(lambda a: candidate(a, mesh))(xs))
    expect("shard_map" in text, "the result is right, but it was not computed with jax.shard_map",
           hint="wrap a per-device function: jax.shard_map(f, mesh=mesh, in_specs=P('data'), out_specs=P())")
    expect("psum" in text, "the shard_map has no psum: with more than one device each would return only its own part",
           hint="inside the per-device function, combine the local sums with jax.lax.psum(local, 'data')")
    return f"checked on {n} device(s); shard_map and psum are in the program"


def _sersic_args(seed: int = 3, size: int = 32):
    truth = SersicParams(1.5, 4.5, 1.2, 0.3, 2.2, 16.8, 14.9)
    galaxy = make_galaxy(jax.random.key(seed), truth, size=size, noise_sigma=0.04)
    return galaxy


def sersic_residuals(candidate) -> str:
    """``residuals(u, args)`` returns ``(model - data) / σ`` for free coordinates ``u``."""
    from .fit import residuals, to_unconstrained

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
        assert_close(got, want, what=f"the residuals for parameters number {i + 1}", rtol=1e-3, atol=1e-3,
                     hint="params = to_physical(u); model = observed_model(params, psf) (that includes the PSF); "
                          "return ((model - image) / sigma).ravel()")
    return "checked on 3 parameter vectors"


def fit_galaxy(candidate) -> str:
    """``fit_galaxy(image, psf, sigma)`` returns the best-fit :class:`SersicParams` (physical units)."""
    from .fit import angle_difference

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
    if bad:
        shown = ", ".join(f"{k} = {getattr(p, k):.3f} (truth {float(getattr(t, k)):.3f})" for k in bad)
        raise CheckFailed(f"the fit misses the true parameters: {shown}",
                          hint="return the physical parameters, to_physical(solution.value), not the free coordinates; "
                               "start from moment_guess(image)")
    return "recovered all 7 parameters of a synthetic galaxy"


def normal_operator(candidate) -> str:
    """``normal_operator(psf, lam)`` returns ``KᵀK + λI`` as a Lineax operator tagged for CG."""
    import lineax as lx

    from .sersic import gaussian_psf

    psf = gaussian_psf((24, 24), 1.5)
    for lam in (0.05, 0.3):
        op = call(candidate, psf, lam, what=f"a 24×24 PSF and lam={lam}")
        expect(isinstance(op, lx.AbstractLinearOperator), f"expected a Lineax operator, got {describe(op)}",
               hint="lx.FunctionLinearOperator(fn, jax.ShapeDtypeStruct(psf.shape, psf.dtype), tags=...)")
        x = jax.random.normal(jax.random.key(1), psf.shape)
        kf = jnp.fft.fft2(psf)
        want = jnp.real(jnp.fft.ifft2((jnp.abs(kf) ** 2 + lam) * jnp.fft.fft2(x)))
        try:
            got = op.mv(x)
        except Exception as exc:
            raise CheckFailed(f"operator.mv(image) raised {type(exc).__name__}: {str(exc)[:200]}",
                              hint="the operator acts on images of the PSF's shape") from None
        assert_close(got, want, what=f"operator.mv(x) with lam={lam}", rtol=1e-4, atol=1e-5,
                     hint="apply K (convolve with the PSF), then its transpose, then add lam * x")
    expect(lx.is_symmetric(op) and lx.is_positive_semidefinite(op),
           "the operator is right but not tagged symmetric and positive semidefinite, so lx.CG refuses it",
           hint="pass tags=(lx.symmetric_tag, lx.positive_semidefinite_tag)")
    return "operator matches K^T K + lam I on random images and is tagged for CG"


def sersic_model(candidate) -> str:
    """``model(image, psf, sigma)`` samples the 7 parameters from ``PRIORS`` and observes ``"image"``."""
    from numpyro import handlers
    from numpyro.infer.util import log_density

    from .inference import sersic_model as reference

    galaxy = _sersic_args(seed=7, size=24)
    args = (galaxy.image, galaxy.psf, galaxy.noise_sigma)
    if not callable(candidate):
        raise CheckFailed(f"expected a function, got {describe(candidate)}", hint='check("wrapup.sersic_model", model)')
    try:
        tr = handlers.trace(handlers.seed(candidate, 0)).get_trace(*args)
    except Exception as exc:
        raise CheckFailed(f"running your model raised {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
                          hint="every random quantity is numpyro.sample(name, distribution)") from None
    sites = {k: v for k, v in tr.items() if v["type"] == "sample"}
    if not sites:
        raise NotAttempted("your model has no numpyro.sample statements yet")
    latent = sorted(k for k, v in sites.items() if not v["is_observed"])
    missing = [k for k in PARAM_NAMES if k not in latent]
    expect(not missing, f"these parameters are not sampled: {missing} (your latent sites: {latent})",
           hint="numpyro.sample(name, PRIORS[name]) for each name in PARAM_NAMES")
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
            raise CheckFailed(f"evaluating your model's log density raised {type(exc).__name__}: {str(exc)[:200]}") from None
        want, _ = log_density(reference, args, {}, point)
        assert_close(got, want, what=f"the log density at parameter point {i + 1}", rtol=1e-4, atol=1e-2,
                     hint="the mean of the pixels is observed_model(params, psf) (with the PSF), and the Normal's "
                          "second argument is the standard deviation sigma, not the variance")
    return "priors, likelihood and log density match the reference"
