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
    ``sharding.json`` holds when run as a script). The four parts are
    :func:`where_the_data_live`, :func:`compiler_collectives`, :func:`shard_map_by_hand` and
    :func:`data_parallel_throughput`.
    """
    import jax

    from workshop.hardware import cpu_cores

    from . import data_parallel as dp
    from .sharding import data_mesh, shard_rows

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = TOUR_SIZES[preset]
    n_dev = len(jax.devices())
    result: dict = {"backend": jax.default_backend(), "device_count": n_dev, "cpu_cores": cpu_cores(),
                    "simulated_cpu_devices": jax.default_backend() == "cpu" and n_dev > 1}
    log(f"JAX sees {n_dev} {jax.default_backend()} devices" +
        (f" (simulated on {result['cpu_cores']} CPU cores: they share those cores)" if result["simulated_cpu_devices"] else ""))

    mesh = data_mesh()
    key = jax.random.key(seed)
    images = dp.galaxy_batch(key, 2 * n_dev, size=sizes["image"])
    flat = images.reshape(images.shape[0], -1)
    sharded = shard_rows(flat, mesh)
    result["row_owner"] = where_the_data_live(out, flat, sharded, mesh, log)
    result.update(compiler_collectives(flat, sharded, mesh, log))
    result["sum_of_squares"] = shard_map_by_hand(flat, sharded, mesh, log)
    result.update(data_parallel_throughput(preset, device_counts, key, include_other_modules, log))
    if result["simulated_cpu_devices"]:
        log(f"Note: these {n_dev} devices are simulated on {result['cpu_cores']} CPU cores and share them: no device "
            "adds compute, so changes in throughput with the device count only reflect how XLA spreads the work over "
            "those cores (and whatever else the machine is doing). What the run shows is that the same code gives "
            "the same losses on any number of devices; on real accelerators each device adds compute.")
    return result


def where_the_data_live(out: Path, flat, sharded, mesh, log=print) -> list:
    """Part 1: pictures of a batch sharded by rows, replicated, and (4+ devices) a 2-D mesh.

    Writes them to ``out/sharding_pictures.txt``; returns the device of each row.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import AxisType, Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    from .sharding import device_of_each_row, sharding_picture

    devices = jax.devices()
    n_dev = len(devices)
    pictures = [f"A batch of {flat.shape[0]} flattened images, P('data') over a {n_dev}-device mesh:",
                sharding_picture(sharded)]
    pictures += ["The same batch replicated, P():", sharding_picture(jax.device_put(flat, NamedSharding(mesh, P())))]
    if n_dev % 2 == 0 and n_dev >= 4:
        grid = Mesh(np.asarray(devices).reshape(n_dev // 2, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
        w = jnp.ones((8, 8))
        pictures += [f"An 8×8 weight matrix on a {n_dev // 2}×2 ('data', 'model') mesh, P('data', 'model'):",
                     sharding_picture(jax.device_put(w, NamedSharding(grid, P("data", "model"))))]
    (Path(out) / "sharding_pictures.txt").write_text("\n".join(pictures))
    log(pictures[0] + "\n" + pictures[1])
    return device_of_each_row(sharded)


def compiler_collectives(flat, sharded, mesh, log=print) -> dict:
    """Part 2: jit partitions the program and the compiler inserts the collectives (column means)."""
    import jax.numpy as jnp

    from .sharding import compiled_collectives, sharded_column_means

    means_sharded = sharded_column_means(sharded, mesh)
    means_single = jnp.mean(flat, axis=0)
    found = {"column_means_max_difference": float(jnp.max(jnp.abs(means_sharded - means_single))),
             "collectives_for_mean": compiled_collectives(lambda a: jnp.mean(a, axis=0), sharded)}
    log(f"column means, sharded vs one device: max difference {found['column_means_max_difference']:.2e}; "
        f"XLA inserted {found['collectives_for_mean']['all-reduce']} all-reduce(s)")
    return found


def shard_map_by_hand(flat, sharded, mesh, log=print) -> dict:
    """Part 3: shard_map, the per-device program written by hand with an explicit psum (sum of squares)."""
    import jax.numpy as jnp

    from .sharding import sum_of_squares_shard_map

    ssq_sharded = sum_of_squares_shard_map(sharded, mesh)
    ssq_single = jnp.sum(flat**2)
    log(f"sum of squares with shard_map + psum: {float(ssq_sharded):.4f} (one device: {float(ssq_single):.4f})")
    return {"shard_map": float(ssq_sharded), "single_device": float(ssq_single),
            "relative_difference": float(jnp.abs(ssq_sharded - ssq_single) / ssq_single)}


def data_parallel_throughput(preset: str, device_counts, key, include_other_modules: bool = True,
                             log=print) -> dict:
    """Part 4: the same training step on 1, 2, 4, 8 devices: throughput and final losses per model.

    Returns ``astro_unet`` and ``protein_finetune`` (whether each ran, and why not) and
    ``throughput`` (per model: the rows of :func:`~workshop_wrapup.data_parallel.throughput_by_devices`
    and the spread of the final losses over device counts).
    """
    import jax

    from . import data_parallel as dp

    sizes = TOUR_SIZES[preset]
    batch = dp.galaxy_batch(jax.random.fold_in(key, 1), sizes["batch"], size=sizes["image"])
    counts = tuple(n for n in device_counts if n <= len(jax.devices()))
    models = {"tiny_denoiser": lambda: dp.TinyDenoiser(1, sizes["width"], key=jax.random.fold_in(key, 2))}
    astro_unet, why = dp.astro_unet(preset, key=jax.random.fold_in(key, 3)) if include_other_modules else (None, "not requested")
    result: dict = {"astro_unet": why}
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
