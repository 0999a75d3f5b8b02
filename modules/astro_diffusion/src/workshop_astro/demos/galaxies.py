"""The galaxy demo, ``workshop run astro`` (``galaxies``): train a U-Net within a time budget,
sample it in a few steps and measure the samples against held-out galaxies (lessons 07-10).

``sample_galaxies`` is shared with the pretrained-model demos (:mod:`.pretrained`). The
demo takes a :class:`workshop.RunContext` and returns a dict of numbers and paths;
figures and JSON go to ``ctx.out``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from workshop import RunContext

__all__ = ["GalaxyPreset", "GALAXY_PRESETS", "sample_galaxies", "galaxies"]


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
    crop_every: int = 0  # every n-th step on crops of the stamps (TrainConfig.crop_every; the network needs coords)

    def train_config(self, seed: int = 0):
        """The demo's :class:`~workshop_astro.train.TrainConfig`: the defaults at this batch size,
        with every ``crop_every``-th step on twice as many 16x16 crops (half the pixels)."""
        from ..train import TrainConfig

        return TrainConfig(batch_size=self.batch_size, seed=seed, crop_every=self.crop_every,
                           crop_batch=2 * self.batch_size)


GALAXY_PRESETS: dict[str, GalaxyPreset] = {
    "tiny": GalaxyPreset("tiny", 8, 120.0, 12, 16, 8, 15.0, crop_every=2),
    "cpu": GalaxyPreset("cpu", 32, 300.0, None, 300, 20, 25.0, crop_every=2),
    "gpu": GalaxyPreset("gpu", 128, 900.0, None, 400, 25, 60.0),
    "full": GalaxyPreset("full", 256, 3600.0, None, 1000, 30, 120.0),
}


def _plot_loss(losses, path, title, ylabel="noise-prediction MSE", on_crops=None, crop_label="crops"):
    """The loss per step and its running mean; with ``on_crops`` (a boolean per step), the
    whole-stamp steps and the crop steps as two series, since their losses differ in scale.
    Returns the step numbers of each series drawn, by label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = np.asarray(losses, float)
    steps = np.arange(len(losses))
    on_crops = np.zeros(len(losses), bool) if on_crops is None else np.asarray(on_crops, bool)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    series = [("whole stamps" if on_crops.any() else "per step", ~on_crops, "C0"), (crop_label, on_crops, "C1")]
    drawn = {}
    for label, mask, colour in series:
        if not mask.any():
            continue
        x, y = steps[mask], losses[mask]
        drawn[label] = x
        ax.plot(x, y, lw=0.6, alpha=0.35, color=colour, label=label)
        if len(y) >= 20:
            k = max(5, len(y) // 30)
            ax.plot(x[k - 1:], np.convolve(y, np.ones(k) / k, mode="valid"), lw=1.5, color=colour,
                    label=f"{label}: mean of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return drawn


def sample_galaxies(model, sde, key, n, steps, resolution, batch=128):
    """Few-step samples in batches; ``(x, nfe)``.

    A noise-predicting U-Net is sampled with DPM-Solver-2M (noise form) on the SDE's
    times; an :class:`~workshop_astro.edm.EDMDenoiser` with DPM-Solver++(2M) on EDM's
    ``sigma`` grid, in the variables it was trained in (the same ODE, see ``edm.py``).
    """
    import jax

    from ..edm import EDMDenoiser
    from ..fewstep import dpm_solver_sample, edm_sample, model_score
    from ..xla_cpu import filter_jit

    c = model.config.image_channels
    edm = isinstance(model, EDMDenoiser)

    @filter_jit
    def run(model, key, x_init):
        if edm:
            return edm_sample(model.denoise, key, x_init.shape, n_steps=steps, x_init=80.0 * x_init)
        return dpm_solver_sample(sde, model_score(model, sde), key, x_init.shape, n_steps=steps, x_init=x_init)

    batch = -(-n // -(-n // max(1, batch)))  # equal batches of at most `batch`: no padded images sampled
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

    from ..evaluate import HDF32_CHANCE_95, beyond_chance, compare, format_table, plot_report
    from ..galaxies import channel_stats, load_stamps
    from ..sde import VPSDE
    from ..train import CheckpointError, crop_steps, train
    from ..unet import count_params, config_for

    p = GALAXY_PRESETS[ctx.preset]
    budget = ctx.budget or p.budget_s
    data = load_stamps(ctx.fetch("hdf_stamps_32.npz"))
    unet = config_for(p.unet)
    sde = VPSDE()
    cfg = p.train_config(ctx.seed)
    ctx.log(f"galaxies: {len(data.train)} training and {len(data.test)} held-out HDF stamps "
            f"({data.resolution}x{data.resolution}), {jax.device_count()} device(s); budget {budget:.0f} s")
    train_budget = max(5.0, budget - ctx.elapsed())

    def reserve(step_s: float, compile_s: float) -> float:
        # Measured on an idle 2-core CPU (cpu preset, 2026-12-01): sampling 300 images x 20
        # evaluations in batches of 100 took 14.6 s, compilation included, while training
        # ran at 5.0 ms per image: a score evaluation costs about half a training image
        # there (2.4 ms); 0.6x for safety, plus compiling the sampler (about half the train
        # step's compilation), evaluation and figures. (1.2x, the factor when sampling ran
        # one batch of 100, left 48 of 300 s unused.)
        per_image = 0.6 * step_s / cfg.batch_size
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
            f"{result.step_time_s:.3f} s/step, {result.images_per_s:.0f} images/s"
            + (f" (one step in {cfg.crop_every} on {cfg.crop_batch} crops of {cfg.crop_size}x{cfg.crop_size}, "
               f"each counted as an image)" if cfg.crop_every else "")
            + f", {count_params(result.ema)} parameters")

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
    # What real galaxies reach by chance was measured for these stamps at 100 images a subset.
    measured_for = (len(data.train), len(data.test), data.resolution, report["n_subset"]) == (368, 100, 32, 100)
    chance = HDF32_CHANCE_95 if measured_for else None
    report["beyond_chance"] = beyond_chance(report, chance) if chance else None
    on_crops = crop_steps(cfg, 0, len(result.losses))  # crop steps lose more: reported apart
    metrics = dict(
        preset=ctx.preset, budget_s=budget, train=dict(
            steps=result.steps_done, planned_steps=result.plan.total_steps, stopped=result.stopped,
            seconds=result.seconds, step_time_s=result.step_time_s, images_per_s=result.images_per_s,
            parameters=count_params(result.ema),
            final_loss=float(np.mean(np.asarray(result.losses)[~on_crops][-20:])),
            resumed_from=result.resumed_from, devices=jax.device_count()),
        sampler=dict(name="dpmpp_2m_sigma" if cfg.recipe == "edm" else "dpm_solver_2m", nfe=nfe, n_samples=n,
                     seconds=sample_s),
        evaluate_s=evaluate_s,
        **report,
    )
    report["_stats"] = stats
    plot_report(report, generated, data.test, ctx.path("galaxies.png"),
                title=f"HDF galaxies: {unet.block} U-Net, {cfg.recipe} recipe, {result.steps_done} training steps, "
                      f"{sampler} {nfe} NFE", chance=chance)
    _plot_loss(result.losses, ctx.path("loss.png"), f"training loss ({result.steps_done} steps, {result.seconds:.0f} s)",
               "EDM-weighted denoising MSE" if cfg.recipe == "edm" else "noise-prediction MSE",
               on_crops=on_crops, crop_label=f"{cfg.crop_batch} crops of {cfg.crop_size}x{cfg.crop_size}")
    np.save(ctx.path("generated.npy"), generated)
    metrics["wall_s"] = ctx.elapsed()
    ctx.save_json("metrics.json", metrics)
    ctx.log(f"morphology of {n} generated vs {len(data.test)} held-out galaxies ({evaluate_s:.1f} s); distance = "
            f"standardised W1 of {report['n_subset']} images against the held-out ones (mean of {report['subsets']} "
            f"random subsets), floor = the same for training images:\n{format_table(report, chance)}")
    if chance:
        over = report["beyond_chance"]
        ctx.log("chance = the ratio that real training galaxies, scored as if generated, stay under in 95 % of "
                "random splits; they still show one ratio above it in 35 % of reports "
                "(benchmarks/astro_evaluation_null.py); "
                + ("beyond chance: " + ", ".join(f"{k} {r:.3f} > {c:.3f}" for k, (r, c) in over.items()) if over
                   else "no ratio beyond chance"))
    ctx.log(f"mean distance to held-out {report['mean_distance']:.2f} vs train/held-out floor {report['mean_floor']:.2f}; "
            f"memorisation ratio {report['memorisation']['ratio']:.2f} (1 = like held-out, 0 = copies)")
    ctx.log(f"wrote {ctx.out}/galaxies.png, loss.png, metrics.json in {ctx.elapsed():.0f} s")
    return dict(steps=result.steps_done, nfe=nfe, mean_distance=report["mean_distance"],
                mean_floor=report["mean_floor"], memorisation_ratio=report["memorisation"]["ratio"],
                wall_s=ctx.elapsed(), metrics=str(ctx.path("metrics.json")), figure=str(ctx.path("galaxies.png")))
