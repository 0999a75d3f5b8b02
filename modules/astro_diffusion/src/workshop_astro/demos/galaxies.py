"""Galaxy demos: ``workshop run astro`` (``galaxies``), ``generate`` and ``reconstruct``.

Each takes a :class:`workshop.RunContext` and returns a dict of numbers and paths;
figures and JSON go to ``ctx.out``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from workshop import RunContext

__all__ = ["GalaxyPreset", "GALAXY_PRESETS", "sample_galaxies", "galaxies", "generate", "reconstruct"]


@dataclass(frozen=True)
class GalaxyPreset:
    """Sizes of the galaxy demo at one hardware preset."""

    unet: str  # key of workshop_astro.unet.PRESET_CONFIGS
    batch_size: int
    budget_s: float  # default --budget
    max_steps: int | None  # cap on training steps (tiny: a handful)
    n_samples: int
    sampler_steps: int  # DPM-Solver-2M steps = NFE
    reserve_s: float  # seconds kept for evaluation and figures (sampling is estimated from the step time)


GALAXY_PRESETS: dict[str, GalaxyPreset] = {
    "tiny": GalaxyPreset("tiny", 8, 120.0, 12, 16, 8, 15.0),
    "cpu": GalaxyPreset("cpu", 32, 300.0, None, 100, 20, 25.0),
    "gpu": GalaxyPreset("gpu", 128, 900.0, None, 400, 25, 60.0),
    "full": GalaxyPreset("full", 256, 3600.0, None, 1000, 30, 120.0),
}


def _plot_loss(losses, path, title, ylabel="noise-prediction MSE"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(losses, lw=0.6, alpha=0.5, label="per step")
    if len(losses) >= 20:
        k = max(5, len(losses) // 30)
        ax.plot(np.arange(k - 1, len(losses)), np.convolve(losses, np.ones(k) / k, mode="valid"), lw=1.5, label=f"mean of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def sample_galaxies(model, sde, key, n, steps, resolution, batch=128):
    """Few-step samples in batches; ``(x, nfe)``.

    A noise-predicting U-Net is sampled with DPM-Solver-2M (noise form) on the SDE's
    times; an :class:`~workshop_astro.edm.EDMDenoiser` with DPM-Solver++(2M) on EDM's
    ``sigma`` grid, in the variables it was trained in (the same ODE, see ``edm.py``).
    """
    import equinox as eqx
    import jax

    from ..edm import EDMDenoiser
    from ..fewstep import dpm_solver_sample, edm_sample, model_score

    c = model.config.image_channels
    edm = isinstance(model, EDMDenoiser)

    @eqx.filter_jit
    def run(model, key, x_init):
        if edm:
            return edm_sample(model.denoise, key, x_init.shape, n_steps=steps, x_init=80.0 * x_init)
        return dpm_solver_sample(sde, model_score(model, sde), key, x_init.shape, n_steps=steps, x_init=x_init)

    batch = min(batch, n)
    outs = []
    nfe = 0
    for i in range(0, n, batch):
        m = min(batch, n - i)
        k = jax.random.fold_in(key, i)
        x_init = sde.prior_sample(k, (batch, c, resolution, resolution))  # fixed shape: one compilation
        x, nfe = run(model, k, x_init)
        outs.append(np.asarray(x)[:m])
    return np.concatenate(outs), int(nfe)


def galaxies(ctx: RunContext) -> dict:
    """Train a U-Net on the embedded HDF galaxies within the budget, sample, evaluate, plot."""
    import jax

    from ..evaluate import compare, format_table, plot_report
    from ..galaxies import channel_stats, load_stamps
    from ..sde import VPSDE
    from ..train import CheckpointError, TrainConfig, train
    from ..unet import count_params, config_for

    p = GALAXY_PRESETS[ctx.preset]
    budget = ctx.budget or p.budget_s
    data = load_stamps(ctx.fetch("hdf_stamps_32.npz"))
    unet = config_for(p.unet)
    sde = VPSDE()
    cfg = TrainConfig(batch_size=p.batch_size, seed=ctx.seed)
    ctx.log(f"galaxies: {len(data.train)} training and {len(data.test)} held-out HDF stamps "
            f"({data.resolution}x{data.resolution}), {jax.device_count()} device(s); budget {budget:.0f} s")
    train_budget = max(5.0, budget - ctx.elapsed())

    def reserve(step_s: float, compile_s: float) -> float:
        # Measured on an idle 2-core CPU (cpu preset): sampling 100 images x 20 evaluations
        # took 13.4 s, compilation included, while training ran at 7.1 ms per image: a score
        # evaluation costs about as much as a training image there (one large batch through
        # the unrolled few-step solver); 1.2x for safety, plus compiling the sampler (about
        # half the train step's compilation), evaluation and figures.
        per_image = 1.2 * step_s / cfg.batch_size
        return p.reserve_s + p.n_samples * p.sampler_steps * per_image + 0.5 * compile_s

    # The EDM recipe trains on images standardised per channel (sigma_data = 1).
    standard = channel_stats(data.train) if cfg.recipe == "edm" else None
    train_images = data.train if standard is None else standard.standardise(data.train)
    try:
        result = train(train_images, unet, cfg, sde=sde, budget_s=train_budget, max_steps=p.max_steps,
                       checkpoint=ctx.path("checkpoint.eqx"), progress=ctx.verbose, reserve_fn=reserve)
    except CheckpointError as exc:
        from workshop import DemoOptionError

        raise DemoOptionError(str(exc)) from None
    ctx.log(f"trained {result.steps_done} steps ({result.stopped}) in {result.seconds:.0f} s: "
            f"{result.step_time_s:.3f} s/step, {result.images_per_s:.0f} images/s, {count_params(result.ema)} parameters")

    t0 = time.monotonic()
    n = p.n_samples
    generated, nfe = sample_galaxies(result.ema, sde, jax.random.key(ctx.seed + 1), n, p.sampler_steps, data.resolution)
    if standard is not None:
        generated = standard.unstandardise(generated)
    sample_s = time.monotonic() - t0
    sampler = "DPM-Solver++(2M) in sigma" if cfg.recipe == "edm" else "DPM-Solver-2M"
    ctx.log(f"sampled {n} galaxies with {sampler}: {nfe} score evaluations, {sample_s:.1f} s")

    t0 = time.monotonic()
    report = compare(generated, data.train, data.test, seed=ctx.seed)
    evaluate_s = time.monotonic() - t0
    stats = report.pop("_stats")
    metrics = dict(
        preset=ctx.preset, budget_s=budget, train=dict(
            steps=result.steps_done, planned_steps=result.plan.total_steps, stopped=result.stopped,
            seconds=result.seconds, step_time_s=result.step_time_s, images_per_s=result.images_per_s,
            parameters=count_params(result.ema), final_loss=float(np.mean(result.losses[-20:])),
            resumed_from=result.resumed_from, devices=jax.device_count()),
        sampler=dict(name="dpmpp_2m_sigma" if cfg.recipe == "edm" else "dpm_solver_2m", nfe=nfe, n_samples=n,
                     seconds=sample_s),
        evaluate_s=evaluate_s,
        **report,
    )
    report["_stats"] = stats
    plot_report(report, generated, data.test, ctx.path("galaxies.png"),
                title=f"HDF galaxies: {unet.block} U-Net, {cfg.recipe} recipe, {result.steps_done} training steps, "
                      f"{sampler} {nfe} NFE")
    _plot_loss(result.losses, ctx.path("loss.png"), f"training loss ({result.steps_done} steps, {result.seconds:.0f} s)",
               "EDM-weighted denoising MSE" if cfg.recipe == "edm" else "noise-prediction MSE")
    np.save(ctx.path("generated.npy"), generated)
    metrics["wall_s"] = ctx.elapsed()
    ctx.save_json("metrics.json", metrics)
    ctx.log(f"morphology of {n} generated vs {len(data.test)} held-out galaxies ({evaluate_s:.1f} s); distance = "
            f"standardised W1, floor = the same between training and held-out galaxies:\n{format_table(report)}")
    ctx.log(f"mean distance to held-out {report['mean_distance']:.2f} vs train/held-out floor {report['mean_floor']:.2f}; "
            f"memorisation ratio {report['memorisation']['ratio']:.2f} (1 = like held-out, 0 = copies)")
    ctx.log(f"wrote {ctx.out}/galaxies.png, loss.png, metrics.json in {ctx.elapsed():.0f} s")
    return dict(steps=result.steps_done, nfe=nfe, mean_distance=report["mean_distance"],
                mean_floor=report["mean_floor"], memorisation_ratio=report["memorisation"]["ratio"],
                wall_s=ctx.elapsed(), metrics=str(ctx.path("metrics.json")), figure=str(ctx.path("galaxies.png")))


_GENERATE = {"tiny": (4, 4), "cpu": (16, 15), "gpu": (64, 25), "full": (256, 30)}  # images, DPM-Solver steps


def generate(ctx: RunContext) -> dict:
    """Generate galaxies with the pretrained 64x64 model and the few-step sampler."""
    import jax

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..evaluate import image_grid
    from ..pretrained import PRETRAINED_NAME, load_pretrained, pretrain_stamps
    from ..sde import VPSDE

    n, steps = _GENERATE[ctx.preset]
    t0 = time.monotonic()
    model, header = load_pretrained(ctx.fetch(PRETRAINED_NAME))
    res = 64
    sde = VPSDE()
    images, nfe = sample_galaxies(model, sde, jax.random.key(ctx.seed), n, steps, res, batch=n)
    seconds = time.monotonic() - t0
    info = header.get("info", {})
    ctx.log(f"generated {n} galaxies of {res}x{res} with DPM-Solver-2M: {nfe} score evaluations, "
            f"{seconds:.1f} s (model: {info.get('steps', '?')} training steps)")
    real = pretrain_stamps()[1][:n]
    fig, axes = plt.subplots(1, 2, figsize=(12, 6.5))
    axes[0].imshow(image_grid(real, ncols=4))
    axes[0].set_title("held-out real HDF stamps")
    axes[1].imshow(image_grid(images, ncols=4))
    axes[1].set_title(f"generated: {nfe} score evaluations, {seconds:.0f} s")
    for a in axes:
        a.axis("off")
    fig.tight_layout()
    fig.savefig(ctx.path("generated.png"), dpi=90)
    plt.close(fig)
    out = dict(n=n, resolution=res, nfe=nfe, seconds=seconds, model_steps=info.get("steps"))
    ctx.save_json("generate.json", out)
    return dict(out, figure=str(ctx.path("generated.png")))


_RECONSTRUCT = {"tiny": (2, 60), "cpu": (8, 100), "gpu": (16, 300), "full": (32, 500)}  # samples, steps
_DEGRADATION = dict(fwhm=3.0, noise_std=0.1, missing=0.25)


def reconstruct(ctx: RunContext) -> dict:
    """Deblur and inpaint a held-out galaxy with the pretrained prior; compare with RL and Wiener,
    in PSNR and in calibration (does the truth fall inside the posterior's intervals as often as it should)."""
    import jax
    import jax.numpy as jnp

    from ..fewstep import model_score
    from ..pretrained import PRETRAINED_NAME, load_pretrained, pretrain_stamps
    from ..reconstruct import (
        RICHARDSON_LUCY_CALIBRATION, Degradation, gaussian_calibration, mean_power_spectrum, posterior_sample, psnr,
        reduced_chi2, richardson_lucy, sample_calibration, wiener, wiener_posterior_std,
    )
    from ..sde import VPSDE

    n_samples, n_steps = _RECONSTRUCT[ctx.preset]
    model, _ = load_pretrained(ctx.fetch(PRETRAINED_NAME))
    sde = VPSDE()
    train64, test64, _ = pretrain_stamps()
    truth = jnp.asarray(test64[0])
    deg = Degradation.make(truth.shape, **_DEGRADATION, seed=ctx.seed)
    y = deg.observe(truth, jax.random.key(ctx.seed + 7))
    t0 = time.monotonic()
    samples, nfe = posterior_sample(sde, model_score(model, sde), deg, y, jax.random.key(ctx.seed),
                                    n_samples=n_samples, n_steps=n_steps)
    samples = np.asarray(samples)
    seconds = time.monotonic() - t0
    mean, std = samples.mean(0), samples.std(0)
    power = mean_power_spectrum(train64)
    rl = np.asarray(richardson_lucy(y, deg))
    wi = wiener(y, deg, power)
    wi_std = wiener_posterior_std(deg, power)
    t = np.asarray(truth)
    mask = np.asarray(deg.mask)
    scores = dict(
        posterior_mean=dict(psnr=psnr(mean, t), chi2=reduced_chi2(mean, y, deg)),
        richardson_lucy=dict(psnr=psnr(rl, t), chi2=reduced_chi2(rl, y, deg)),
        wiener=dict(psnr=psnr(wi, t), chi2=reduced_chi2(wi, y, deg)),
        single_samples_psnr=[psnr(s, t) for s in samples],
    )
    calibration = dict(
        posterior=sample_calibration(samples, t, mask),
        wiener=dict(gaussian_calibration(wi, np.full_like(wi, wi_std), t, mask, bins=n_samples + 1), posterior_std=wi_std),
        richardson_lucy=RICHARDSON_LUCY_CALIBRATION,
    )
    ctx.log(f"posterior ({n_samples} samples, {nfe} NFE, {seconds:.0f} s): PSNR {scores['posterior_mean']['psnr']:.2f} dB, "
            f"chi2 {scores['posterior_mean']['chi2']:.2f}; Richardson-Lucy {scores['richardson_lucy']['psnr']:.2f} dB; "
            f"Wiener {scores['wiener']['psnr']:.2f} dB")
    ctx.log(_calibration_line(calibration))
    _plot_reconstruction(ctx.path("reconstruct.png"), y, samples, rl, wi, t, calibration, n_steps=int(nfe))
    out = dict(n_samples=n_samples, nfe=int(nfe), seconds=seconds, **_DEGRADATION, **scores, calibration=calibration)
    ctx.save_json("reconstruct.json", out)
    return dict(psnr_posterior=scores["posterior_mean"]["psnr"], psnr_rl=scores["richardson_lucy"]["psnr"],
                psnr_wiener=scores["wiener"]["psnr"], chi2=scores["posterior_mean"]["chi2"],
                coverage_68=calibration["posterior"]["coverage"]["0.68"]["all"],
                coverage_95=calibration["posterior"]["coverage"]["0.95"]["all"],
                figure=str(ctx.path("reconstruct.png")))


def _calibration_line(cal: dict) -> str:
    post, wi = cal["posterior"], cal["wiener"]
    c, r = post["coverage"], post["calibrated_reference"]
    w = wi["coverage"]
    return (f"calibration: the truth lies inside the posterior's 68% / 95% intervals for {c['0.68']['all']:.0%} / "
            f"{c['0.95']['all']:.0%} of pixels (lost pixels {c['0.68']['lost']:.0%} / {c['0.95']['lost']:.0%}); "
            f"an exactly calibrated sampler with {post['n_samples']} samples: {r['0.68']:.0%} / {r['0.95']:.0%}. "
            f"Wiener's Gaussian posterior (std {wi['posterior_std']:.3f}): {w['0.68']['all']:.0%} / {w['0.95']['all']:.0%} "
            f"(calibrated: 68% / 95%; lost pixels {w['0.68']['lost']:.0%} / {w['0.95']['lost']:.0%}). "
            "Richardson-Lucy has no posterior.")


def _plot_reconstruction(path, y, samples, rl, wi, truth, cal: dict, n_steps: int) -> None:
    """Images in the top row; the rank histograms and the interval coverage below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..galaxies import to_image

    n = len(samples)
    mean, std = samples.mean(0), samples.std(0)
    panels = [("observation", np.asarray(y)), *[(f"sample {i + 1}", samples[i]) for i in range(min(3, n))],
              ("posterior mean", mean), ("Richardson-Lucy", rl), ("Wiener", wi), ("truth", truth)]
    cols = len(panels) + 1
    fig = plt.figure(figsize=(2.2 * cols, 6.2))
    gs = fig.add_gridspec(2, cols, height_ratios=[1, 1.25])
    for i, (name, img) in enumerate(panels):
        a = fig.add_subplot(gs[0, i])
        a.imshow(to_image(img[None])[0])
        a.set_title(name, fontsize=8)
        a.axis("off")
    a = fig.add_subplot(gs[0, -1])
    a.imshow(std.mean(0), cmap="magma")
    a.set_title("posterior std", fontsize=8)
    a.axis("off")
    post, wi_cal = cal["posterior"], cal["wiener"]
    half = cols // 2
    a = fig.add_subplot(gs[1, :half])
    ranks = np.arange(n + 1)
    a.bar(ranks - 0.2, post["rank_histogram"], 0.4, color="tab:orange", label=f"diffusion posterior ({n} samples)")
    a.bar(ranks + 0.2, wi_cal["rank_histogram"], 0.4, color="tab:blue", label=f"Wiener, Gaussian ({n + 1} equal-probability bins)")
    a.axhline(1 / (n + 1), color="k", ls="--", lw=1, label="calibrated (flat)")
    a.set_xlabel("rank of the true pixel among the samples")
    a.set_ylabel("fraction of pixels")
    a.set_title(f"rank histogram ({n_steps} NFE per sample): U = too narrow, hump = too wide", fontsize=9)
    a.legend(fontsize=7)
    a = fig.add_subplot(gs[1, half:])
    groups = [("all", "all pixels"), ("observed", "observed"), ("lost", "lost (masked)")]
    x = np.arange(len(groups))
    for j, level in enumerate(("0.68", "0.95")):
        off = -0.3 + 0.3 * j
        a.bar(x + off - 0.07, [post["coverage"][level][g] or 0 for g, _ in groups], 0.14, color="tab:orange",
              alpha=0.5 + 0.5 * j, label=f"diffusion {float(level):.0%}")
        a.bar(x + off + 0.07, [wi_cal["coverage"][level][g] or 0 for g, _ in groups], 0.14, color="tab:blue",
              alpha=0.5 + 0.5 * j, label=f"Wiener {float(level):.0%}")
        a.axhline(post["calibrated_reference"][level], color="tab:orange", ls=":", lw=1)
        a.axhline(float(level), color="tab:blue", ls=":", lw=1)
    a.set_xticks(x, [name for _, name in groups])
    a.set_ylim(0, 1.25)
    a.set_ylabel("truth inside the interval")
    a.set_title(f"coverage of the central 68% / 95% intervals; dotted: calibrated (diffusion with {n} samples: "
                f"{post['calibrated_reference']['0.68']:.2f} / {post['calibrated_reference']['0.95']:.2f}); "
                "Richardson-Lucy: no posterior", fontsize=8)
    a.legend(fontsize=7, ncol=4, loc="upper center")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
