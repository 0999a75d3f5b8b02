"""Benchmark: galaxy training recipes and networks at equal wall time (the default demo's budget).

The machine these figures come from is a shared 2-core CPU whose load (other jobs) changes
minute by minute, so a wall-clock budget would measure the neighbours. Equal wall time is
therefore made from two robust measurements:

1. **step time**: every variant's compiled training step is timed in one process, in
   alternating turns (A, B, C, A, B, C, ...; medians), so the load slows all alike; the
   ratio to the baseline's step time is what transfers to an idle machine;
2. **quality at equal time**: each variant trains for ``ref_steps * t_baseline / t_variant``
   steps, ``ref_steps`` being the steps the default demo fits in its 5-minute budget on the
   idle 2-core machine with the ``cpu`` network (1,529 steps of 0.173 s, measured with
   ``workshop run astro`` on 2026-12-01), then draws 100 galaxies with its 20-step sampler
   and is measured against the 100 held-out stamps with ``evaluate.compare`` (ten
   statistics, each next to its train-vs-held-out floor).

    nice .venv/bin/python benchmarks/astro_training_recipes.py --variants baseline,edm,edm_p0s18 --seed 0
    nice .venv/bin/python benchmarks/astro_training_recipes.py --variants baseline,edm,edm_p0s18 --seed 1 --append

One seed is not enough: the same recipe's ratio moves by about 0.4 between seeds (100
samples each), so compare variants over the same seeds. When the evaluation changes,
``--rescore`` measures the runs again from the samples they saved in ``build/``.

Writes benchmarks/results/astro_training_recipes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "astro_training_recipes.json"

#: name -> UNet (preset key or config dict) and TrainConfig overrides; the EDM recipe trains on
#: images standardised per channel and samples with DPM-Solver++(2M) on EDM's sigma grid.
VARIANTS = {
    # the recipe and network before this change: noise prediction, uniform t, data in [-1, 1], DPM-Solver-2M
    "baseline": dict(unet="cpu", train=dict(recipe="eps")),
    # EDM's own noise levels (log sigma ~ N(-1.2, 1.2^2), tuned for sigma_data = 0.5 and long runs)
    "edm": dict(unet="cpu", train=dict(recipe="edm", p_mean=-1.2, p_std=1.2)),
    # the same shifted to standardised data (sigma_data = 1: -1.2 + log 2) and to higher levels
    "edm_p06": dict(unet="cpu", train=dict(recipe="edm", p_mean=-0.6, p_std=1.2)),
    "edm_p0s14": dict(unet="cpu", train=dict(recipe="edm", p_mean=0.0, p_std=1.4)),
    "edm_p04s14": dict(unet="cpu", train=dict(recipe="edm", p_mean=0.4, p_std=1.4)),
    "edm_p08s14": dict(unet="cpu", train=dict(recipe="edm", p_mean=0.8, p_std=1.4)),
    # the default since 2026-12-01 (TrainConfig())
    "edm_p0s18": dict(unet="cpu", train=dict(recipe="edm", p_mean=0.0, p_std=1.8)),
    "eps_mix": dict(unet="cpu_mix", train=dict(recipe="eps")),
    "edm_mix": dict(unet="cpu_mix", train=dict(recipe="edm", p_mean=-1.2, p_std=1.2)),
    "edm_mix_p0s18": dict(unet="cpu_mix", train=dict(recipe="edm", p_mean=0.0, p_std=1.8)),
    "edm_mix48": dict(unet=dict(channels=48, mults=[1, 2, 2], attention_levels=[1, 2], time_dim=128, patch=2,
                                input_skip=True, block="mix"), train=dict(recipe="edm", p_mean=-1.2, p_std=1.2)),
    "edm_mix32": dict(unet=dict(channels=32, mults=[1, 2, 4], attention_levels=[1, 2], time_dim=128, patch=2,
                                input_skip=True, block="mix"), train=dict(recipe="edm", p_mean=-1.2, p_std=1.2)),
}
BATCH = 32
SAMPLES, SAMPLER_STEPS = 100, 20


def _setup(name, seed):
    from workshop_astro.train import TrainConfig
    from workshop_astro.unet import PRESET_CONFIGS, UNetConfig

    v = VARIANTS[name]
    unet = PRESET_CONFIGS[v["unet"]] if isinstance(v["unet"], str) else UNetConfig.from_dict(v["unet"])
    return unet, TrainConfig(batch_size=BATCH, seed=seed, **v["train"])


def step_times(names, data, repeats: int = 5, steps_per_turn: int = 3) -> dict:
    """Median seconds per training step of each variant, timed in alternating turns."""
    import jax
    import numpy as np

    from workshop_astro.sde import VPSDE
    from workshop_astro.train import init_state, make_train_step

    runs = {}
    for n in names:
        unet, cfg = _setup(n, 0)
        step = make_train_step(VPSDE(), cfg)
        state = init_state(unet, cfg)
        state, loss = step(state, data, np.float32(1e-4))  # compile
        loss.block_until_ready()
        runs[n] = [step, state, []]
    for _ in range(repeats):
        for n in names:
            step, state, times = runs[n]
            t0 = time.perf_counter()
            for _ in range(steps_per_turn):
                state, loss = step(state, data, np.float32(1e-4))
            loss.block_until_ready()
            times.append((time.perf_counter() - t0) / steps_per_turn)
            runs[n][1] = state
    del jax
    return {n: float(np.median(r[2])) for n, r in runs.items()}


def quality(name: str, steps: int, seed: int) -> dict:
    """Train ``steps`` steps, sample, and measure against the held-out stamps."""
    import jax
    import numpy as np

    from workshop.data import fetch
    from workshop_astro.demos.galaxies import sample_galaxies
    from workshop_astro.galaxies import channel_stats, load_stamps
    from workshop_astro.sde import VPSDE
    from workshop_astro.train import train
    from workshop_astro.unet import count_params

    unet, cfg = _setup(name, seed)
    data = load_stamps(fetch("astro", "hdf_stamps_32.npz"))
    stats = channel_stats(data.train) if cfg.recipe == "edm" else None
    images = data.train if stats is None else stats.standardise(data.train)
    t0 = time.monotonic()
    result = train(images, unet, cfg, sde=VPSDE(), max_steps=steps, progress=False)
    train_s = time.monotonic() - t0
    gen, nfe = sample_galaxies(result.ema, VPSDE(), jax.random.key(seed + 1), SAMPLES, SAMPLER_STEPS, data.resolution)
    if stats is not None:
        gen = stats.unstandardise(gen)
    np.save(_samples_path(name, seed), np.asarray(gen))
    return dict(variant=name, seed=seed, unet=unet.as_dict(), train=dict(VARIANTS[name]["train"]),
                parameters=count_params(result.ema), steps=result.steps_done, train_s_under_load=train_s, nfe=int(nfe),
                **score(gen, data, seed))


def _samples_path(name: str, seed: int) -> Path:
    return ROOT / "build" / f"astro_recipe_{name}_seed{seed}.npy"


def score(gen, data, seed: int) -> dict:
    """The quality fields of a run: ``evaluate.compare`` of its samples against the held-out stamps."""
    from workshop_astro.evaluate import compare

    rep = compare(gen, data.train, data.test, seed=seed)
    return dict(mean_distance=rep["mean_distance"], mean_floor=rep["mean_floor"],
                mean_ratio=rep["mean_distance"] / rep["mean_floor"], ratio=rep["ratio"],
                memorisation=rep["memorisation"]["ratio"], subsets=rep["subsets"], n_subset=rep["n_subset"],
                summary_generated=rep["summary_generated"], summary_heldout=rep["summary_heldout"])


def rescore(out: Path) -> None:
    """Score the runs in ``out`` again from their saved samples with the current ``evaluate.compare``
    (the figures they had are kept under ``previous_scores``)."""
    import numpy as np

    from workshop.data import fetch
    from workshop_astro.galaxies import load_stamps

    data = load_stamps(fetch("astro", "hdf_stamps_32.npz"))
    result = json.loads(out.read_text())
    for run in result["runs"]:
        path = _samples_path(run["variant"], run["seed"])
        if not path.exists():
            print(f"{run['variant']} seed {run['seed']}: no samples at {path}; left as it was")
            continue
        new = score(np.load(path), data, run["seed"])
        run.setdefault("previous_scores", []).append({k: run[k] for k in ("mean_ratio", "ratio") if k in run})
        run.update(new, rescored=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        print(f"{run['variant']:14s} seed {run['seed']}: mean/floor {run['previous_scores'][-1]['mean_ratio']:.2f} -> "
              f"{new['mean_ratio']:.2f}", flush=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="baseline,edm,edm_mix")
    ap.add_argument("--ref-steps", type=int, default=1529,
                    help="the baseline's steps in the demo's budget (idle machine; 1,529 measured with the 'cpu' network)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timing-only", action="store_true")
    ap.add_argument("--step-times", help="reuse step times measured earlier: name=seconds,... (skips phase 1)")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--append", action="store_true",
                    help="keep the runs already in --out (another seed, other variants); a run of the same variant, "
                         "seed and steps is replaced")
    ap.add_argument("--rescore", action="store_true",
                    help="score the runs in --out again from their samples in build/ with the current evaluation")
    a = ap.parse_args()
    if a.rescore:
        return rescore(Path(a.out))
    names = a.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
    import jax.numpy as jnp

    from workshop.data import fetch
    from workshop_astro.galaxies import load_stamps

    (ROOT / "build").mkdir(exist_ok=True)
    data = jnp.asarray(load_stamps(fetch("astro", "hdf_stamps_32.npz")).train)
    if a.step_times:
        timing = {k: float(v) for k, v in (kv.split("=") for kv in a.step_times.split(","))}
    else:
        timing = step_times(["baseline", *[n for n in names if n != "baseline"]], data)
    print("step times (s): " + ", ".join(f"{n} {t:.3f}" for n, t in timing.items()), flush=True)
    out = Path(a.out)
    result = dict(benchmark="astro_training_recipes", ref_steps=a.ref_steps, batch=BATCH, step_time_s=timing,
                  load_avg=os.getloadavg(), runs=[])
    if a.append and out.exists():
        old = json.loads(out.read_text())
        if old.get("ref_steps") != a.ref_steps:
            sys.exit(f"{out} holds runs for ref_steps={old.get('ref_steps')}, not {a.ref_steps}: use another --out")
        result["runs"] = old["runs"]
        result["step_time_s"] = {**old.get("step_time_s", {}), **timing}
    if a.timing_only:
        print(json.dumps(result, indent=1))
        return
    for n in names:
        steps = int(round(a.ref_steps * timing["baseline"] / timing[n]))
        res = quality(n, steps, a.seed)
        res["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        result["runs"] = [r for r in result["runs"]
                          if (r["variant"], r["seed"], r["steps"]) != (n, a.seed, res["steps"])] + [res]
        print(f"{n:10s}: {res['steps']} steps, mean/floor {res['mean_ratio']:.2f}, "
              + ", ".join(f"{k} {v:.2f}" for k, v in res["ratio"].items()), flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
