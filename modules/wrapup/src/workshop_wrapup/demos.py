"""Demos of the wrap-up module: what ``workshop run wrapup [DEMO]`` calls.

``tour`` (the default) runs the four parts in order: sharding on simulated devices,
two JAX processes computing together, the Optimistix + NumPyro Sérsic fit, and the
Lineax deconvolution. Each part is also a demo of its own.
"""

from __future__ import annotations

from workshop import RunContext

#: Sizes of the ecosystem examples per preset.
ECOSYSTEM_SIZES = {
    "tiny": {"galaxy": 32, "warmup": 100, "samples": 100, "scene": 48},
    "cpu": {"galaxy": 48, "warmup": 300, "samples": 400, "scene": 64},
    "gpu": {"galaxy": 64, "warmup": 500, "samples": 1000, "scene": 128},
    "full": {"galaxy": 64, "warmup": 1000, "samples": 2000, "scene": 128},
}

FURTHER_READING = [
    ("How to Scale Your Model (the JAX scaling book): sharding, collectives, parallelism", "https://jax-ml.github.io/scaling-book/"),
    ("JAX: Distributed arrays and automatic parallelization", "https://docs.jax.dev/en/latest/notebooks/Distributed_arrays_and_automatic_parallelization.html"),
    ("JAX: Manual parallelism with shard_map", "https://docs.jax.dev/en/latest/notebooks/shard_map.html"),
    ("JAX: Multi-process environments", "https://docs.jax.dev/en/latest/multi_process.html"),
    ("Awesome Equinox (the Equinox ecosystem list)", "https://docs.kidger.site/equinox/awesome-list/"),
    ("Awesome JAX (a longer list of JAX projects)", "https://github.com/lockwo/awesome-jax"),
    ("Optimistix", "https://docs.kidger.site/optimistix/"),
    ("Lineax", "https://docs.kidger.site/lineax/"),
    ("NumPyro", "https://num.pyro.ai/"),
]


def sharding(ctx: RunContext) -> dict:
    """Mesh, shardings, compiler-inserted collectives, shard_map and data-parallel throughput."""
    import jax

    from .figures import throughput_figure
    from .sharding_tour import run_in_subprocess, run_sharding_tour

    out = ctx.path("sharding")
    if len(jax.devices()) >= 8:
        ctx.log(f"This process already sees {len(jax.devices())} devices: running the sharding tour here.")
        result = run_sharding_tour(out, ctx.preset, seed=ctx.seed, log=ctx.log)
    else:
        ctx.log(f"This process sees {len(jax.devices())} device(s), and JAX fixes the device count when it starts. "
                "Starting a fresh Python with XLA_FLAGS=--xla_force_host_platform_device_count=8 (8 simulated CPU devices).")
        result = run_in_subprocess(out, ctx.preset, n_devices=8, seed=ctx.seed, verbose=ctx.verbose)
    note = ""
    if result["simulated_cpu_devices"]:
        note = (f"{result['device_count']} simulated CPU devices share {result['cpu_cores']} cores: no device adds "
                "compute here; the losses agree across device counts.")
    fig = throughput_figure(result["throughput"], ctx.path("throughput_vs_devices.png"), note=note)
    ctx.save_json("sharding.json", result)
    tp = result["throughput"]["tiny_denoiser"]
    return {
        "pictures": str(out / "sharding_pictures.txt"),
        "throughput_figure": str(fig),
        "column_means_max_difference": result["column_means_max_difference"],
        "all_reduces_inserted": result["collectives_for_mean"]["all-reduce"],
        "shard_map_relative_difference": result["sum_of_squares"]["relative_difference"],
        "final_loss_spread_across_device_counts": tp["final_loss_spread"],
        "images_per_s": {r["devices"]: round(r["images_per_s"], 1) for r in tp["rows"]},
        "astro_unet": result["astro_unet"],
        "protein_finetune": result["protein_finetune"],
    }


def multihost(ctx: RunContext) -> dict:
    """Two JAX processes on 127.0.0.1 (CPU) computing global statistics together."""
    from .multihost import run_multiprocess_demo

    n_proc, n_dev = 2, 2
    ctx.log(f"Starting {n_proc} processes, {n_dev} CPU devices each, joined by jax.distributed.initialize on 127.0.0.1 …")
    result = run_multiprocess_demo(num_processes=n_proc, devices_per_process=n_dev, timeout=180.0, seed=ctx.seed)
    for p in result["processes"]:
        ctx.log(f"  process {p['process_id']}/{p['process_count']}: local devices {p['local_devices']}, "
                f"{p['local_rows']} local rows of {p['rows']}; global sum of squares {p['sum_of_squares']:.4f}")
    ctx.log(f"  single-process answer {result['reference']['sum_of_squares']:.4f}; largest difference "
            f"{result['max_difference']:.1e}: {'match' if result['matches_single_process'] else 'MISMATCH'} "
            f"({result['seconds']:.1f} s including start-up)")
    ctx.save_json("multihost.json", result)
    if not result["matches_single_process"]:
        raise RuntimeError(f"the processes disagree with the single-process answer (difference {result['max_difference']:.2e})")
    return {"processes": len(result["processes"]), "max_difference": result["max_difference"],
            "matches_single_process": result["matches_single_process"]}


def sersic(ctx: RunContext) -> dict:
    """A synthetic galaxy fitted with Optimistix (least squares) and NumPyro (NUTS posterior)."""
    import time

    import jax

    from .figures import posterior_figure, sersic_fit_figure
    from .fit import angle_difference, fit_sersic
    from .inference import sample_posterior
    from .sersic import make_galaxy, observed_model

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

    from .deconvolution import best_lambda, make_blurred_scene, naive_deconvolve, rms_error, tikhonov_deconvolve
    from .figures import deconvolution_figure

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


def tour(ctx: RunContext) -> dict:
    """Everything: sharding, two processes, Sérsic fit and posterior, deconvolution, further reading."""
    results = {}
    for title, part in (("1/4 Sharding on simulated devices", sharding), ("2/4 Two processes, one computation", multihost),
                        ("3/4 Optimistix and NumPyro: a Sérsic galaxy", sersic),
                        ("4/4 Lineax: deconvolution", deconvolution)):
        ctx.log(f"\n== {title} ==")
        results.update({f"{part.__name__}.{k}": v for k, v in part(ctx).items()})
    ctx.log("\nFurther reading:")
    for text, url in FURTHER_READING:
        ctx.log(f"  - {text}: {url}")
    (ctx.path("further_reading.md")).write_text("".join(f"- [{t}]({u})\n" for t, u in FURTHER_READING))
    return results
