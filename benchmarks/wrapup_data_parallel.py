"""Benchmark: data-parallel training throughput against the number of (simulated) devices.

The same Equinox training step (``workshop_wrapup.data_parallel``) on meshes of 1, 2, 4
and 8 devices, same global batch, same weights, same noise: median seconds per step over
``--steps`` timed steps after one compiling step, and the largest loss difference from
the one-device run. On a CPU the devices are simulated with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (set here before JAX starts), so
they share the machine's cores: expect no speed-up; the figure that matters is that the
losses agree. The machine's load average is recorded because other work skews timings.

    .venv/bin/python benchmarks/wrapup_data_parallel.py [--steps 10 --batch 32 --image 32 --width 16 --astro --protein]

Writes benchmarks/results/wrapup_data_parallel.json.
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import equinox as eqx
import jax
import optax

from workshop_wrapup import data_parallel as dp
from workshop_wrapup.sharding import data_mesh


def time_steps(make_model, images, n_devices: int, steps: int, loss_fn=dp.denoising_loss, lr: float = 3e-3) -> dict:
    optimizer = optax.adam(lr)
    model = make_model()
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    model, opt_state, batch = dp.place_for_data_parallel(model, opt_state, images, data_mesh(n_devices))
    step = dp.make_train_step(optimizer, loss_fn)
    keys = jax.random.split(jax.random.key(0), steps + 1)
    t0 = time.perf_counter()
    model, opt_state, loss = step(model, opt_state, batch, keys[0])
    losses = [float(loss)]
    compile_s = time.perf_counter() - t0
    per_step = []
    for k in keys[1:]:
        t0 = time.perf_counter()
        model, opt_state, loss = step(model, opt_state, batch, k)
        losses.append(float(loss))
        per_step.append(time.perf_counter() - t0)
    median = statistics.median(per_step)
    return {"devices": n_devices, "median_s_per_step": median, "examples_per_s": dp.batch_size(images) / median,
            "first_step_s_incl_compile": compile_s, "losses": losses}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--image", type=int, default=32)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--astro", action="store_true", help="also time the astro U-Net (tiny config) when installed")
    ap.add_argument("--protein", action="store_true", help="also time the protein fine-tune step when installed")
    args = ap.parse_args()
    images = dp.galaxy_batch(jax.random.key(1), args.batch, size=args.image)
    models = {"tiny_denoiser": (lambda: dp.TinyDenoiser(1, args.width, key=jax.random.key(2)), images, dp.denoising_loss, 3e-3)}
    notes = {}
    if args.astro:
        unet, why = dp.astro_unet("tiny", key=jax.random.key(3))
        notes["astro_unet"] = why
        if unet is not None:
            models["astro_unet"] = (lambda: dp.astro_unet("tiny", key=jax.random.key(3))[0], images, dp.denoising_loss, 3e-3)
    if args.protein:
        task, why = dp.protein_finetune_task(args.batch, key=jax.random.key(4))
        notes["protein_finetune"] = why
        if task is not None:
            models["protein_finetune"] = (task.make_model, task.batch, task.loss_fn, task.learning_rate)
    load_before = os.getloadavg()
    results = {}
    for name, (make, batch, loss_fn, lr) in models.items():
        rows = [time_steps(make, batch, n, args.steps, loss_fn, lr) for n in (1, 2, 4, 8)]
        base = rows[0]["losses"]
        for r in rows:
            r["max_loss_difference_from_1_device"] = max(abs(a - b) for a, b in zip(r["losses"], base))
            r["max_relative_loss_difference"] = max(abs(a - b) / abs(b) for a, b in zip(r["losses"], base))
            print(f"{name:14s} {r['devices']} device(s): {r['median_s_per_step'] * 1e3:8.1f} ms/step "
                  f"{r['examples_per_s']:8.1f} examples/s  rel. loss diff {r['max_relative_loss_difference']:.1e}")
        results[name] = rows
    out = {
        "benchmark": "data-parallel training step vs device count (simulated CPU devices)",
        "settings": vars(args),
        "jax": jax.__version__, "backend": jax.default_backend(), "devices": jax.device_count(),
        "cpu_cores": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "results": results, "notes": notes,
    }
    path = Path(__file__).resolve().parent / "results" / "wrapup_data_parallel.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
