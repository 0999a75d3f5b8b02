"""Benchmark: NFE and wall time of the samplers at a matched sample quality.

The prior is known exactly, so that sample quality measures the sampler alone: an equal
mixture of Gaussians N(m_k, tau^2 I) around 8 real held-out HDF galaxies (32x32x3), whose
score at every time is in closed form. Each sampler draws 256 images at several
settings; quality is the sliced Wasserstein distance (``workshop_astro.metrics``) to 256
exact draws from the prior, next to the same distance between two exact draws (the
floor). For each sampler the table reports the cheapest setting within 1.5x the floor.

Samplers: reverse SDE (Euler–Maruyama), probability-flow ODE (adaptive Tsit5; both from
``workshop_astro.sampling``), DPM-Solver++(2M) and Heun (``workshop_astro.fewstep``).

    .venv/bin/python benchmarks/astro_samplers.py

Writes benchmarks/results/astro_samplers.json.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "astro_samplers.json"


def main():
    sys.path.insert(0, str(ROOT / "modules/astro_diffusion/src"))
    import jax
    import jax.numpy as jnp

    from workshop.data import fetch
    from workshop_astro.fewstep import dpm_solver_sample, heun_sample
    from workshop_astro.galaxies import load_stamps
    from workshop_astro.metrics import sliced_wasserstein
    from workshop_astro.sampling import probability_flow_sample, reverse_sde_sample
    from workshop_astro.sde import VPSDE

    sde = VPSDE()
    test = load_stamps(fetch("astro", "hdf_stamps_32.npz")).test
    means = jnp.asarray(test[[0, 5, 11, 17, 23, 31, 42, 57]])
    tau = 0.1
    n = 256

    def score(x, t):
        a, s = sde.marginal_mean_coeff(t), sde.marginal_std(t)
        v = a**2 * tau**2 + s**2
        d = x[None] - a * means
        w = jax.nn.softmax(-0.5 * jnp.sum(d**2, axis=(1, 2, 3)) / v)
        return -jnp.tensordot(w, d, axes=1) / v

    def exact(key):
        k1, k2 = jax.random.split(key)
        idx = jax.random.randint(k1, (n,), 0, len(means))
        return means[idx] + tau * jax.random.normal(k2, (n, *means.shape[1:]))

    shape = (n, *means.shape[1:])
    ref = exact(jax.random.key(100))
    swkey = jax.random.key(7)
    floor = float(sliced_wasserstein(exact(jax.random.key(101)), ref, swkey))

    def run(name, setting, fn):
        f = jax.jit(fn)
        x, nfe = f(jax.random.key(0))  # compile
        jax.block_until_ready(x)
        t0 = time.perf_counter()
        x, nfe = f(jax.random.key(1))
        jax.block_until_ready(x)
        wall = time.perf_counter() - t0
        sw = float(sliced_wasserstein(x, ref, swkey))
        row = dict(sampler=name, setting=setting, nfe=int(nfe), wall_s=wall, sliced_wasserstein=sw)
        print(f"{name:22s} {str(setting):12s} NFE {int(nfe):5d}  {wall:7.2f} s  SW {sw:.4f} (floor {floor:.4f})", flush=True)
        return row

    rows = []
    for steps in (50, 100, 250, 500, 1000):
        rows.append(run("reverse_sde_em", dict(n_steps=steps),
                        lambda k, s=steps: reverse_sde_sample(sde, score, k, shape, n_steps=s)))
    for tol in (1e-2, 1e-3, 1e-4):
        rows.append(run("probability_flow_tsit5", dict(rtol=tol, atol=tol),
                        lambda k, tol=tol: probability_flow_sample(sde, score, k, shape, rtol=tol, atol=tol)))
    for steps in (5, 10, 20, 40):
        rows.append(run("dpm_solver_2m", dict(n_steps=steps), lambda k, s=steps: dpm_solver_sample(sde, score, k, shape, n_steps=s)))
    for steps in (5, 10, 20):
        rows.append(run("heun", dict(n_steps=steps),
                        lambda k, s=steps: heun_sample(sde, score, k, shape, n_steps=s, spacing="logsnr")))
    target = 1.5 * floor
    best = {}
    for r in rows:
        if r["sliced_wasserstein"] <= target and (r["sampler"] not in best or r["nfe"] < best[r["sampler"]]["nfe"]):
            best[r["sampler"]] = r
    result = dict(benchmark="astro_samplers", prior="mixture of N(m_k, 0.1^2 I) around 8 held-out HDF galaxies, 32x32x3",
                  n_samples=n, floor=floor, target=target, cheapest_within_target=best, rows=rows, jax=jax.__version__,
                  machine=platform.processor() or platform.machine(), load_average_at_end=os.getloadavg())
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    for k, r in best.items():
        print(f"cheapest within 1.5x floor: {k}: NFE {r['nfe']}, {r['wall_s']:.2f} s")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
