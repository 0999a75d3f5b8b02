"""Benchmark: at which noise levels do the demo's generated galaxies go wrong?

The demo's model (the ``cpu`` network, the default EDM recipe, 1,529 steps: what the
5-minute budget trains on an idle 2-core machine) draws galaxies by solving the
probability-flow ODE from ``sigma = 80`` down to 0. Here the same ODE starts instead from
*real* training stamps (400, drawn with replacement from the 368) with noise of level
``sigma_start`` added: below that level the
model finishes the picture, above it the picture is real. Each level's 400 results are
measured like generated galaxies (``evaluate.compare`` against the held-out stamps, next
to the train-vs-held-out floor). A statistic whose ratio is near 1 from a low start but
high from a higher one is decided, wrongly, by the denoiser between those two levels.
At the highest levels the faint real stamp under the noise still steers the result (a
real stamp finished from 30 or 80 need not score like a draw from pure noise), so read
those rows beside the pure-noise one.
``sigma_start = 0`` scores the chosen training stamps themselves (the reference), and a
last row starts from pure noise at ``sigma = 80``: the demo's own sampler.

    nice .venv/bin/python benchmarks/astro_error_by_noise_level.py --seeds 0,1
    nice .venv/bin/python benchmarks/astro_error_by_noise_level.py --unet cpu_mix --steps 1430 --seeds 0 --append

(``cpu_mix``: the ``"mix"`` design, 1,430 steps in the ``cpu`` network's time at the step
times measured inside ``train``, 159.8 against 149.5 ms.)

The trained models are kept in ``build/`` (a second run reuses them). Every start level
uses 20 DPM-Solver++(2M) steps on EDM's grid from ``sigma_start``, so the sampler's own
error shrinks as the range does and what changes between levels is the denoiser.

Writes benchmarks/results/astro_error_by_noise_level.json and a figure beside it (``.png``;
``--plot`` redraws it from the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "astro_error_by_noise_level.json"
LEVELS = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 80.0)
N_IMAGES, BATCH, SAMPLER_STEPS = 400, 100, 20


def trained_model(seed: int, steps: int, unet: str = "cpu"):
    """The demo's model (network preset ``unet``) for ``seed``, trained for ``steps`` steps
    (or loaded from ``build/``)."""
    from workshop.data import fetch
    from workshop_astro.galaxies import channel_stats, load_stamps
    from workshop_astro.train import TrainConfig, train
    from workshop_astro.unet import config_for

    data = load_stamps(fetch("astro", "hdf_stamps_32.npz"))
    stats = channel_stats(data.train)
    (ROOT / "build").mkdir(exist_ok=True)
    name = "" if unet == "cpu" else f"{unet}_"
    ckpt = ROOT / "build" / f"astro_noise_level_{name}seed{seed}_{steps}.eqx"
    t0 = time.monotonic()
    result = train(stats.standardise(data.train), config_for(unet), TrainConfig(batch_size=32, seed=seed),
                   max_steps=steps, checkpoint=ckpt, progress=False)
    return result.ema, data, stats, result.steps_done, time.monotonic() - t0


def finish_from(model, start, sigma_start: float, key):
    """Solve the ODE from ``start + sigma_start * noise`` (standardised images) down to 0
    (``start`` zeros: the demo's sampler from pure noise)."""
    import equinox as eqx
    import jax
    import numpy as np

    from workshop_astro.fewstep import edm_sample

    if sigma_start == 0.0:
        return np.asarray(start)

    @eqx.filter_jit
    def run(model, key, x0):
        y = x0 + sigma_start * jax.random.normal(key, x0.shape)
        return edm_sample(model.denoise, key, x0.shape, n_steps=SAMPLER_STEPS, sigma_max=sigma_start, x_init=y)[0]

    out = [np.asarray(run(model, jax.random.fold_in(key, i), start[i:i + BATCH])) for i in range(0, len(start), BATCH)]
    return np.concatenate(out)


def measure(seed: int, steps: int, levels, unet: str = "cpu") -> dict:
    import jax
    import numpy as np

    from workshop_astro.evaluate import compare

    model, data, stats, steps_done, train_s = trained_model(seed, steps, unet)
    rng = np.random.default_rng(1000 + seed)
    idx = rng.choice(len(data.train), N_IMAGES, replace=True)
    start = np.asarray(stats.standardise(data.train[idx]))
    rows = []
    for level, origin in [*((v, "real") for v in levels), (80.0, "noise")]:
        t0 = time.monotonic()
        x0 = start if origin == "real" else np.zeros_like(start)
        images = stats.unstandardise(finish_from(model, x0, level, jax.random.key(seed + 1)))
        rep = compare(images, data.train, data.test, seed=seed)
        rows.append(dict(sigma_start=level, start=origin, mean_ratio=rep["mean_distance"] / rep["mean_floor"], ratio=rep["ratio"],
                         median=dict(m20=float(np.median(rep["_stats"]["generated"]["m20"])),
                                     ellipticity=float(np.median(rep["_stats"]["generated"]["ellipticity"]))),
                         seconds=time.monotonic() - t0))
        r = rows[-1]
        print(f"{unet} seed {seed} {origin} start, sigma_start {level:5.1f}: mean/floor {r['mean_ratio']:.2f}, "
              + ", ".join(f"{k} {v:.2f}" for k, v in r["ratio"].items()), flush=True)
    return dict(unet=unet, seed=seed, steps=steps_done, train_s=train_s, levels=rows)


SHOWN = ("mean", "m20", "ellipticity", "gini", "asymmetry", "power_spectrum", "half_light_radius")


def plot(result: dict, path: Path) -> None:
    """Ratio to the floor against the start level, one panel per run, one line per statistic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 4.2), sharey=True, squeeze=False)
    colours = dict(zip(SHOWN, ("black", "tab:red", "tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown")))
    value = lambda r, name: r["mean_ratio"] if name == "mean" else r["ratio"][name]
    for ax, run in zip(axes[0], runs):
        real = [r for r in run["levels"] if r["start"] == "real"]
        noise = [r for r in run["levels"] if r["start"] == "noise"]
        xs = [max(r["sigma_start"], 0.03) for r in real]  # sigma_start = 0 drawn at the left edge
        for name in SHOWN:
            ax.plot(xs, [value(r, name) for r in real], marker="o", ms=3, color=colours[name],
                    label=name.replace("_", " "))
            for r in noise:
                ax.plot([200.0], [value(r, name)], marker="*", ms=9, color=colours[name], ls="none")
        ax.axhline(1.6, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xticks([0.03, 0.1, 0.3, 1, 3, 10, 30, 80, 200], ["real", "0.1", "0.3", "1", "3", "10", "30", "80", "noise"])
        ax.set_title(f"{run['unet']} network, seed {run['seed']}, {run['steps']:,} steps", fontsize=9)
        ax.set_xlabel("noise added to real stamps (stars: pure noise)", fontsize=8)
    axes[0][0].set_ylabel("distance / train-vs-held-out floor")
    axes[0][0].legend(fontsize=7, ncol=2)
    fig.suptitle("Real stamps noised to sigma_start and finished by the model: where each statistic goes wrong",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--steps", type=int, default=1529, help="training steps (the demo's on an idle 2-core machine)")
    ap.add_argument("--unet", default="cpu", help="network preset (unet.PRESET_CONFIGS), e.g. cpu_mix")
    ap.add_argument("--levels", default=",".join(str(v) for v in LEVELS))
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--append", action="store_true", help="keep the seeds already in --out")
    ap.add_argument("--plot", action="store_true", help="only redraw the figure from --out")
    a = ap.parse_args()
    if a.plot:
        return plot(json.loads(Path(a.out).read_text()), Path(a.out).with_suffix(".png"))
    levels = [float(v) for v in a.levels.split(",")]
    out = Path(a.out)
    result = dict(benchmark="astro_error_by_noise_level", recipe="edm (TrainConfig defaults)",
                  n_images=N_IMAGES, sampler_steps=SAMPLER_STEPS, runs=[])
    if a.append and out.exists():
        result["runs"] = json.loads(out.read_text())["runs"]
    for seed in (int(s) for s in a.seeds.split(",")):
        run = measure(seed, a.steps, levels, a.unet)
        run["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        run["load_avg"] = os.getloadavg()
        same = (run["unet"], seed, run["steps"])
        result["runs"] = [r for r in result["runs"] if (r["unet"], r["seed"], r["steps"]) != same] + [run]
        result["runs"].sort(key=lambda r: (r["unet"] != "cpu", r["unet"], r["steps"], r["seed"]))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
