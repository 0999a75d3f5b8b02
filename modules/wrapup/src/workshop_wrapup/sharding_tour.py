"""The sharding part of the wrap-up demo, run in a process that sees several devices.

``python -m workshop_wrapup.sharding_tour --out DIR --preset tiny`` writes
``sharding.json`` (every number) and ``sharding_pictures.txt`` (the drawings of
:func:`jax.debug.visualize_array_sharding`). :func:`run_in_subprocess` starts it with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` when the calling process has fewer
devices: the flag only works before JAX starts, and a running process cannot change its
device count.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

#: Sizes of the data-parallel timing per preset.
TOUR_SIZES = {
    "tiny": {"image": 16, "batch": 16, "width": 8, "steps": 3},
    "cpu": {"image": 32, "batch": 32, "width": 16, "steps": 6},
    "gpu": {"image": 64, "batch": 64, "width": 32, "steps": 10},
    "full": {"image": 64, "batch": 128, "width": 64, "steps": 10},
}

#: Device counts the astro U-Net and the protein fine-tune are timed on (each count compiles once more).
ASTRO_DEVICE_COUNTS = {"tiny": (1, 8), "cpu": (1, 2, 4, 8), "gpu": (1, 2, 4, 8), "full": (1, 2, 4, 8)}


def run_sharding_tour(out: Path, preset: str = "cpu", device_counts=(1, 2, 4, 8), seed: int = 0,
                      include_other_modules: bool = True, log=print) -> dict:
    """Mesh, shardings, compiler-inserted collectives, shard_map and data-parallel timing.

    Writes ``sharding_pictures.txt`` under ``out`` and returns the numbers (also what
    ``sharding.json`` holds when run as a script).
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import AxisType, Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    from workshop.hardware import cpu_cores

    from . import data_parallel as dp
    from .sharding import (compiled_collectives, data_mesh, device_of_each_row, sharded_column_means,
                           sharding_picture, shard_rows, sum_of_squares_shard_map)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = TOUR_SIZES[preset]
    devices = jax.devices()
    n_dev = len(devices)
    result: dict = {"backend": jax.default_backend(), "device_count": n_dev, "cpu_cores": cpu_cores(),
                    "simulated_cpu_devices": jax.default_backend() == "cpu" and n_dev > 1}
    log(f"JAX sees {n_dev} {jax.default_backend()} devices" +
        (f" (simulated on {result['cpu_cores']} CPU cores: they share those cores)" if result["simulated_cpu_devices"] else ""))

    # 1. Where the data live: a batch of images, one block of rows per device.
    mesh = data_mesh()
    key = jax.random.key(seed)
    images = dp.galaxy_batch(key, 2 * n_dev, size=sizes["image"])
    flat = images.reshape(images.shape[0], -1)
    sharded = shard_rows(flat, mesh)
    pictures = [f"A batch of {flat.shape[0]} flattened images, P('data') over a {n_dev}-device mesh:",
                sharding_picture(sharded)]
    pictures += ["The same batch replicated, P():", sharding_picture(jax.device_put(flat, NamedSharding(mesh, P())))]
    if n_dev % 2 == 0 and n_dev >= 4:
        grid = Mesh(np.asarray(devices).reshape(n_dev // 2, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
        w = jnp.ones((8, 8))
        pictures += [f"An 8×8 weight matrix on a {n_dev // 2}×2 ('data', 'model') mesh, P('data', 'model'):",
                     sharding_picture(jax.device_put(w, NamedSharding(grid, P("data", "model"))))]
    (out / "sharding_pictures.txt").write_text("\n".join(pictures))
    log(pictures[0] + "\n" + pictures[1])
    result["row_owner"] = device_of_each_row(sharded)

    # 2. jit partitions the program; the compiler inserts the collectives.
    means_sharded = sharded_column_means(sharded, mesh)
    means_single = jnp.mean(flat, axis=0)
    result["column_means_max_difference"] = float(jnp.max(jnp.abs(means_sharded - means_single)))
    result["collectives_for_mean"] = compiled_collectives(lambda a: jnp.mean(a, axis=0), sharded)
    log(f"column means, sharded vs one device: max difference {result['column_means_max_difference']:.2e}; "
        f"XLA inserted {result['collectives_for_mean']['all-reduce']} all-reduce(s)")

    # 3. shard_map: the per-device program written by hand, with an explicit psum.
    ssq_sharded = sum_of_squares_shard_map(sharded, mesh)
    ssq_single = jnp.sum(flat**2)
    result["sum_of_squares"] = {"shard_map": float(ssq_sharded), "single_device": float(ssq_single),
                                "relative_difference": float(jnp.abs(ssq_sharded - ssq_single) / ssq_single)}
    log(f"sum of squares with shard_map + psum: {float(ssq_sharded):.4f} (one device: {float(ssq_single):.4f})")

    # 4. Data-parallel training: the same step on 1, 2, 4, 8 devices.
    batch = dp.galaxy_batch(jax.random.fold_in(key, 1), sizes["batch"], size=sizes["image"])
    counts = tuple(n for n in device_counts if n <= n_dev)
    models = {"tiny_denoiser": lambda: dp.TinyDenoiser(1, sizes["width"], key=jax.random.fold_in(key, 2))}
    astro_unet, why = dp.astro_unet(preset, key=jax.random.fold_in(key, 3)) if include_other_modules else (None, "not requested")
    result["astro_unet"] = why
    if astro_unet is not None and sizes["image"] % 4 == 0:
        models["astro_unet"] = lambda: dp.astro_unet(preset, key=jax.random.fold_in(key, 3))[0]
    else:
        log(f"astro U-Net skipped: {why}")
    tasks = {name: (make, batch, dp.denoising_loss, 3e-3) for name, make in models.items()}
    if not include_other_modules:
        why = "not requested"
    elif preset == "tiny":
        why = "skipped under the tiny preset (each device count compiles an ESM2 step; run with --preset cpu)"
    else:
        protein, why = dp.protein_finetune_task(sizes["batch"], key=jax.random.fold_in(key, 5))
        if protein is not None:
            tasks["protein_finetune"] = (protein.make_model, protein.batch, protein.loss_fn, protein.learning_rate)
    result["protein_finetune"] = why
    log(f"protein fine-tune: {why}")
    result["throughput"] = {}
    for name, (make, data, loss_fn, lr) in tasks.items():
        wanted = counts if name == "tiny_denoiser" else tuple(n for n in counts if n in ASTRO_DEVICE_COUNTS[preset])
        rows = dp.throughput_by_devices(make, data, wanted, steps=sizes["steps"], key=jax.random.fold_in(key, 4),
                                        loss_fn=loss_fn, lr=lr)
        final = [r["losses"][-1] for r in rows]
        result["throughput"][name] = {
            "rows": rows,
            "final_loss_spread": float(max(final) - min(final)),
            "final_loss_relative_spread": float((max(final) - min(final)) / abs(final[0])),
            "batch": sizes["batch"], "image": sizes["image"], "timed_steps": sizes["steps"] - 1,
        }
        for r in rows:
            log(f"  {name}: {r['devices']} device(s): {r['images_per_s']:8.1f} examples/s, final loss {r['losses'][-1]:.6f}")
    if result["simulated_cpu_devices"]:
        log(f"Note: these {n_dev} devices are simulated on {result['cpu_cores']} CPU cores and share them: no device "
            "adds compute, so changes in throughput with the device count only reflect how XLA spreads the work over "
            "those cores (and whatever else the machine is doing). What the run shows is that the same code gives "
            "the same losses on any number of devices; on real accelerators each device adds compute.")
    return result


def run_in_subprocess(out: Path, preset: str, n_devices: int = 8, seed: int = 0, timeout: float = 900.0,
                      verbose: bool = True) -> dict:
    """Run :func:`run_sharding_tour` in a fresh Python with ``n_devices`` simulated CPU devices."""
    from .multihost import cpu_device_env

    cmd = [sys.executable, "-m", "workshop_wrapup.sharding_tour", "--out", str(out), "--preset", preset,
           "--seed", str(seed)]
    # With verbose, the child's progress lines go straight to this terminal as they come.
    proc = subprocess.run(cmd, env=cpu_device_env(n_devices), stdout=None if verbose else subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"the sharding tour with {n_devices} simulated devices failed (exit {proc.returncode}):\n{tail}")
    return json.loads((Path(out) / "sharding.json").read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = run_sharding_tour(args.out, args.preset, seed=args.seed)
    (args.out / "sharding.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
