"""Demos of lessons 03-04: ``workshop run wrapup sersic`` and ``deconvolution``.

``sersic``: a Sérsic galaxy fitted with Optimistix and its posterior with NumPyro's NUTS;
``deconvolution``: Tikhonov deconvolution with a matrix-free Lineax operator.
"""

from __future__ import annotations

from workshop import RunContext

__all__ = ["ECOSYSTEM_SIZES", "sersic", "deconvolution"]

#: Sizes of the ecosystem examples per preset.
ECOSYSTEM_SIZES = {
    "tiny": {"galaxy": 32, "warmup": 100, "samples": 100, "scene": 48},
    "cpu": {"galaxy": 48, "warmup": 300, "samples": 400, "scene": 64},
    "gpu": {"galaxy": 64, "warmup": 500, "samples": 1000, "scene": 128},
    "full": {"galaxy": 64, "warmup": 1000, "samples": 2000, "scene": 128},
}


def sersic(ctx: RunContext) -> dict:
    """A synthetic galaxy fitted with Optimistix (least squares) and NumPyro (NUTS posterior)."""
    import time

    import jax

    from ..figures import posterior_figure, sersic_fit_figure
    from ..fit import angle_difference, fit_sersic
    from ..inference import sample_posterior
    from ..sersic import make_galaxy, observed_model

    size = ECOSYSTEM_SIZES[ctx.preset]
    key = jax.random.key(ctx.seed)
    galaxy = make_galaxy(jax.random.fold_in(key, 0), size=size["galaxy"])
    truth = galaxy.truth.as_dict()
    t0 = time.perf_counter()
    fit = fit_sersic(galaxy.image, galaxy.psf, galaxy.noise_sigma)
    best = fit.params.as_dict()
    ctx.log(f"Optimistix Levenberg-Marquardt: {int(fit.steps)} steps, {time.perf_counter() - t0:.1f} s, "
            f"reduced chi² {float(fit.chi2) / fit.dof:.3f}")
    for name in truth:
        ctx.log(f"  {name:12s} truth {truth[name]:8.4f}   fit {best[name]:8.4f}")
    sersic_fit_figure(galaxy.image, observed_model(fit.params, galaxy.psf), observed_model(fit.start, galaxy.psf),
                      ctx.path("sersic_fit.png"), title="Sérsic profile fitted by nonlinear least squares (Optimistix)")
    t0 = time.perf_counter()
    post = sample_posterior(jax.random.fold_in(key, 1), galaxy.image, galaxy.psf, galaxy.noise_sigma,
                            start=fit.params, num_warmup=size["warmup"], num_samples=size["samples"])
    ctx.log(f"NumPyro NUTS: {size['warmup']} warm-up + {size['samples']} samples in {time.perf_counter() - t0:.1f} s, "
            f"{post.divergences} divergences")
    covered = {}
    for name in truth:
        lo, hi = post.interval(name, 0.99)
        t = truth[name]
        covered[name] = bool(lo <= t <= hi)
        ctx.log(f"  {name:12s} {post.mean[name]:8.4f} ± {post.std[name]:.4f}   99% interval [{lo:.4f}, {hi:.4f}]  "
                f"truth {t:.4f} {'inside' if covered[name] else 'outside'}")
    posterior_figure(post.samples, truth, best, ctx.path("sersic_posterior.png"))
    result = {"truth": truth, "fit": best, "reduced_chi2": float(fit.chi2) / fit.dof,
              "angle_error": float(angle_difference(best["angle"], truth["angle"])),
              "posterior_mean": post.mean, "posterior_std": post.std, "truth_in_99pct_interval": covered,
              "divergences": post.divergences}
    ctx.save_json("sersic.json", result)
    return {"fit_n": round(best["n"], 3), "true_n": round(truth["n"], 3),
            "truth_in_99pct_interval": f"{sum(covered.values())}/{len(covered)}"}


def deconvolution(ctx: RunContext) -> dict:
    """Tikhonov deconvolution with a matrix-free Lineax operator and CG, against the naive inverse."""
    import jax

    from ..deconvolution import best_lambda, make_blurred_scene, naive_deconvolve, rms_error, tikhonov_deconvolve
    from ..figures import deconvolution_figure

    size = ECOSYSTEM_SIZES[ctx.preset]
    scene = make_blurred_scene(jax.random.key(ctx.seed + 7), size=size["scene"])
    lams = (1e-4, 1e-3, 1e-2, 1e-1)
    lam, errors = best_lambda(scene, lams)
    restored = tikhonov_deconvolve(scene.observed, scene.psf, lam)
    naive = naive_deconvolve(scene.observed, scene.psf)
    err = {"blurred": float(rms_error(scene.observed, scene.truth)), "naive_inverse": float(rms_error(naive, scene.truth)),
           "tikhonov_cg": float(rms_error(restored.image, scene.truth))}
    ctx.log(f"Lineax CG on (KᵀK + λI) x = Kᵀy with λ = {lam:g}: {restored.cg_steps} iterations, converged "
            f"{restored.converged}")
    ctx.log(f"  rms error against the truth: blurred {err['blurred']:.4f}, naive inverse {err['naive_inverse']:.3g}, "
            f"Tikhonov {err['tikhonov_cg']:.4f}")
    deconvolution_figure(scene.truth, scene.observed, naive, restored.image, lams, errors, ctx.path("deconvolution.png"))
    result = {"lambda": lam, "cg_steps": restored.cg_steps, "converged": restored.converged, "rms_error": err,
              "errors_by_lambda": dict(zip(map(str, lams), errors))}
    ctx.save_json("deconvolution.json", result)
    return {"lambda": lam, "rms_tikhonov": round(err["tikhonov_cg"], 4), "rms_naive": err["naive_inverse"]}
