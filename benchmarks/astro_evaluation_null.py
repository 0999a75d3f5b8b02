"""Benchmark: how the galaxy report scores real galaxies (its null distribution).

The galaxy demo judges generated stamps by ten statistics, each as a distance to the 100
held-out stamps divided by the floor (the same distance for training stamps). A perfect
generator would draw from the training stamps' distribution, so the scores of *real*
training stamps posing as "generated" show what the report can tell apart from chance.
Each of ``--splits`` random splits divides the 368 training stamps into two halves: A
poses as the generator, B as the training pool. Three estimators are scored:

* ``one_draw_100``: 100 images of A against one draw of 100 from B (``compare(...,
  subsets=1)``, the report as it stood before subsets were averaged);
* ``averaged_100``: the same 100 images, the floor averaged over 50 draws;
* ``averaged_184``: all 184 images of A, distances and floor averaged over 50 draws of 100.

For each: the quantiles of the mean ratio, of the largest per-statistic ratio and of each
statistic's ratio over the splits; how often they exceed 1.3 and 1.6 (the galaxy demo's
goals); and how often some ratio lands above its own 95th percentile. The 95th
percentiles of ``averaged_184`` are the galaxy demo's "chance" column
(``workshop_astro.evaluate.HDF32_CHANCE_95``; a test keeps the two equal).

    .venv/bin/python benchmarks/astro_evaluation_null.py [--splits 100]

Writes benchmarks/results/astro_evaluation_null.json.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "modules/astro_diffusion/src"))
OUT = ROOT / "benchmarks" / "results" / "astro_evaluation_null.json"
ESTIMATORS = {"one_draw_100": (100, 1), "averaged_100": (100, 50), "averaged_184": (None, 50)}


def summarise(ratios: list[dict]) -> dict:
    means = np.array([r["mean"] for r in ratios])
    worst = np.array([r["worst"] for r in ratios])
    q = [5, 25, 50, 75, 95]
    over = {k: float(np.mean([r["per"][k] > 1.6 for r in ratios])) for k in ratios[0]["per"]}
    per = {k: dict(zip(map(str, q), np.percentile([r["per"][k] for r in ratios], q).round(3).tolist()))
           for k in ratios[0]["per"]}
    # how often a report shows some ratio above its own 95th percentile (the demo's "<" marks)
    beyond = [r["mean"] > np.percentile(means, 95) or any(r["per"][k] > per[k]["95"] for k in per) for r in ratios]
    return dict(mean_ratio_quantiles=dict(zip(map(str, q), np.percentile(means, q).round(3).tolist())),
                worst_ratio_quantiles=dict(zip(map(str, q), np.percentile(worst, q).round(3).tolist())),
                p_mean_over_1_3=float(np.mean(means > 1.3)), p_worst_over_1_6=float(np.mean(worst > 1.6)),
                p_statistic_over_1_6=over, statistic_ratio_quantiles=per,
                p_some_ratio_beyond_its_95th_percentile=float(np.mean(beyond)))


def main() -> None:
    from workshop_astro.evaluate import compare
    from workshop_astro.galaxies import load_stamps

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=100)
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    data = load_stamps(str(importlib.resources.files("workshop_astro") / "data" / "hdf_stamps_32.npz"))
    rng = np.random.default_rng(0)
    scores = {name: [] for name in ESTIMATORS}
    t0 = time.time()
    for i in range(a.splits):
        order = rng.permutation(len(data.train))
        half = len(order) // 2
        pose, pool = data.train[order[:half]], data.train[order[half:]]
        for name, (n_gen, subsets) in ESTIMATORS.items():
            r = compare(pose[:n_gen], pool, data.test, seed=i, subsets=subsets)
            ratio = r["mean_distance"] / r["mean_floor"]
            scores[name].append(dict(mean=ratio, worst=max(r["ratio"].values()), per=r["ratio"]))
        print(f"split {i}: " + ", ".join(f"{n} mean {s[-1]['mean']:.2f} worst {s[-1]['worst']:.2f}"
                                        for n, s in scores.items()), flush=True)
    rows = {name: summarise(s) for name, s in scores.items()}
    for name, row in rows.items():
        print(f"{name}: mean ratio > 1.3 in {row['p_mean_over_1_3']:.0%} of splits, some statistic > 1.6 in "
              f"{row['p_worst_over_1_6']:.0%}; median worst {row['worst_ratio_quantiles']['50']:.2f}")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(
        benchmark="astro_evaluation_null", splits=a.splits, n_train=len(data.train), n_test=len(data.test),
        estimators={n: dict(generated=n_gen or len(data.train) // 2, subsets=s) for n, (n_gen, s) in ESTIMATORS.items()},
        rows=rows, seconds=time.time() - t0, load_avg=os.getloadavg(),
        when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())), indent=1) + "\n")


if __name__ == "__main__":
    main()
