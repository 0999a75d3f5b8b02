"""Benchmark: NFE and wall time of the samplers at a matched sample quality.

The prior is known exactly, so that sample quality measures the sampler alone: an equal
mixture of Gaussians N(m_k, tau^2 I) around 8 real held-out HDF galaxies (32x32x3), whose
score at every time is in closed form. Each sampler draws 512 images at several settings.

Quality is measured by two statistics whose exact values are known, so a small error is
visible above the sampling noise (a distance between two sets of 512 images in 3,072
dimensions is not: it moves by tens of percent from one draw to the next):

* **noise error** ``|r - 1|``, where ``r`` is the mean of ``|x - m_k|^2 / (D tau^2)`` with
  ``m_k`` the nearest mixture mean: 1 for exact draws (sampling noise about 0.001).
  Too few steps leave samples too smooth (ODE samplers, ``r < 1``) or too noisy (SDE,
  ``r > 1``).
* **mode error**: total-variation distance between the fraction of samples nearest each
  mean and the exact 1/8 each, next to the same for exact draws (the floor).

The matched quality is a noise error at most 0.02 (2% in the noise power) and a mode
error at most twice the floor; for each sampler the table reports the cheapest setting
that meets both. The sliced Wasserstein distance is kept in every row for reference.

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
    n = 512
    noise_target, mode_factor = 0.02, 2.0

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
    dim = int(np.prod(means.shape[1:]))

    def quality(x):
        """(noise error |r - 1|, mode total-variation error) of samples ``x``."""
        d2 = jnp.sum((x[:, None] - means[None]) ** 2, axis=(2, 3, 4))  # (n, K)
        k = jnp.argmin(d2, axis=1)
        r = float(jnp.mean(jnp.min(d2, axis=1)) / (dim * tau**2))
        frac = np.bincount(np.asarray(k), minlength=len(means)) / len(k)
        return abs(r - 1.0), float(0.5 * np.abs(frac - 1.0 / len(means)).sum())

    ref = exact(jax.random.key(100))
    swkey = jax.random.key(7)
    floor_draws = [quality(exact(jax.random.key(200 + i))) for i in range(8)]
    noise_floor = float(np.mean([q[0] for q in floor_draws]))
    mode_floor = float(np.mean([q[1] for q in floor_draws]))
    sw_floor = float(sliced_wasserstein(exact(jax.random.key(101)), ref, swkey))
    print(f"exact draws: noise error {noise_floor:.4f}, mode error {mode_floor:.4f}, sliced W {sw_floor:.4f}")

    def run(name, setting, fn):
        f = jax.jit(fn)
        x, nfe = f(jax.random.key(0))  # compile
        jax.block_until_ready(x)
        t0 = time.perf_counter()
        x, nfe = f(jax.random.key(1))
        jax.block_until_ready(x)
        wall = time.perf_counter() - t0
        sw = float(sliced_wasserstein(x, ref, swkey))
        noise_err, mode_err = quality(x)
        ok = noise_err <= noise_target and mode_err <= mode_factor * mode_floor
        row = dict(sampler=name, setting=setting, nfe=int(nfe), wall_s=wall, noise_error=noise_err,
                   mode_error=mode_err, sliced_wasserstein=sw, matched=bool(ok))
        print(f"{name:22s} {str(setting):24s} NFE {int(nfe):5d}  {wall:7.2f} s  noise err {noise_err:.4f}  "
              f"mode err {mode_err:.3f}  SW {sw:.4f}{'  *' if ok else ''}", flush=True)
        return row

    rows = []
    for steps in (50, 100, 250, 500, 1000):
        rows.append(run("reverse_sde_em", dict(n_steps=steps),
                        lambda k, s=steps: reverse_sde_sample(sde, score, k, shape, n_steps=s)))
    for tol in (1e-2, 1e-3, 1e-4):
        rows.append(run("probability_flow_tsit5", dict(rtol=tol, atol=tol),
                        lambda k, tol=tol: probability_flow_sample(sde, score, k, shape, rtol=tol, atol=tol)))
    for steps in (5, 10, 20, 30, 40):
        rows.append(run("dpm_solver_2m", dict(n_steps=steps), lambda k, s=steps: dpm_solver_sample(sde, score, k, shape, n_steps=s)))
    for steps in (5, 10, 20, 40):
        rows.append(run("heun", dict(n_steps=steps),
                        lambda k, s=steps: heun_sample(sde, score, k, shape, n_steps=s, spacing="logsnr")))
    best = {}
    for r in rows:
        if r["matched"] and (r["sampler"] not in best or r["nfe"] < best[r["sampler"]]["nfe"]):
            best[r["sampler"]] = r
    result = dict(benchmark="astro_samplers", prior="mixture of N(m_k, 0.1^2 I) around 8 held-out HDF galaxies, 32x32x3",
                  n_samples=n, exact_draws=dict(noise_error=noise_floor, mode_error=mode_floor, sliced_wasserstein=sw_floor),
                  target=dict(noise_error=noise_target, mode_error=mode_factor * mode_floor),
                  cheapest_matched=best, rows=rows, jax=jax.__version__,
                  machine=platform.processor() or platform.machine(), load_average_at_end=os.getloadavg())
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    for k, r in best.items():
        print(f"cheapest at matched quality: {k}: NFE {r['nfe']}, {r['wall_s']:.2f} s")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
