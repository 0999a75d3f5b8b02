"""Demos with the pretrained 64x64 galaxy model (lesson 11): ``generate`` and ``reconstruct``.

``generate`` samples new galaxies with the few-step sampler; ``reconstruct`` deblurs and
inpaints a held-out galaxy by posterior sampling and scores it against Richardson-Lucy and
Wiener, in PSNR and in calibration. Each takes a :class:`workshop.RunContext` and returns
a dict of numbers and paths; figures and JSON go to ``ctx.out``.
"""

from __future__ import annotations

import time

import numpy as np

from workshop import RunContext

from .galaxies import sample_galaxies

__all__ = ["generate", "reconstruct"]

_GENERATE = {"tiny": (4, 4), "cpu": (16, 15), "gpu": (64, 25), "full": (256, 30)}  # images, DPM-Solver steps


def generate(ctx: RunContext) -> dict:
    """Generate galaxies with the pretrained 64x64 model and the few-step sampler."""
    import jax

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..evaluate import image_grid
    from ..edm import EDMDenoiser
    from ..pretrained import PRETRAINED_NAME, load_pretrained, pretrain_stamps, pretrained_stats
    from ..sde import VPSDE

    n, steps = _GENERATE[ctx.preset]
    t0 = time.monotonic()
    model, header = load_pretrained(ctx.fetch(PRETRAINED_NAME))
    res = 64
    sde = VPSDE()
    images, nfe = sample_galaxies(model, sde, jax.random.key(ctx.seed), n, steps, res, batch=n)
    stats = pretrained_stats(header, PRETRAINED_NAME)
    if stats is not None:  # a model trained on standardised images samples in those units
        images = stats.unstandardise(images)
    sampler = "DPM-Solver++(2M) in sigma" if isinstance(model, EDMDenoiser) else "DPM-Solver-2M"
    seconds = time.monotonic() - t0
    info = header.get("info", {})
    ctx.log(f"generated {n} galaxies of {res}x{res} with {sampler}: {nfe} score evaluations, "
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
    from ..pretrained import PRETRAINED_NAME, load_pretrained, pretrain_stamps, pretrained_stats
    from ..reconstruct import (
        RICHARDSON_LUCY_CALIBRATION, Degradation, gaussian_calibration, mean_power_spectrum, posterior_sample, psnr,
        reduced_chi2, richardson_lucy, sample_calibration, wiener, wiener_posterior_std,
    )
    from ..sde import VPSDE

    n_samples, n_steps = _RECONSTRUCT[ctx.preset]
    model, header = load_pretrained(ctx.fetch(PRETRAINED_NAME))
    stats = pretrained_stats(header, PRETRAINED_NAME)
    sde = VPSDE()
    train64, test64, _ = pretrain_stamps()
    truth = jnp.asarray(test64[0])
    deg = Degradation.make(truth.shape, **_DEGRADATION, seed=ctx.seed)
    y = deg.observe(truth, jax.random.key(ctx.seed + 7))
    t0 = time.monotonic()
    samples, nfe = posterior_sample(sde, model_score(model, sde), deg, y, jax.random.key(ctx.seed),
                                    n_samples=n_samples, n_steps=n_steps, stats=stats)
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
