"""Demos of lessons 01-02: ``workshop run wrapup sharding`` and ``multihost``.

``sharding``: a mesh, shardings, the collectives the compiler inserts, shard_map and
data-parallel throughput on simulated devices; ``multihost``: two JAX processes on this
machine computing one result with ``jax.distributed``.
"""

from __future__ import annotations

from workshop import RunContext

__all__ = ["sharding", "multihost"]


def sharding(ctx: RunContext) -> dict:
    """Mesh, shardings, compiler-inserted collectives, shard_map and data-parallel throughput."""
    import jax

    from ..figures import throughput_figure
    from ..sharding_tour import run_in_subprocess, run_sharding_tour

    out = ctx.path("sharding")
    if len(jax.devices()) >= 8:
        ctx.log(f"This process already sees {len(jax.devices())} devices: running the sharding tour here.")
        result = run_sharding_tour(out, ctx.preset, seed=ctx.seed, log=ctx.log)
    else:
        ctx.log(f"This process sees {len(jax.devices())} device(s), and JAX fixes the device count when it starts. "
                "Starting a fresh Python with XLA_FLAGS=--xla_force_host_platform_device_count=8 (8 simulated CPU devices).")
        result = run_in_subprocess(out, ctx.preset, n_devices=8, seed=ctx.seed, verbose=ctx.verbose)
    note = ""
    if result["simulated_cpu_devices"]:
        note = (f"{result['device_count']} simulated CPU devices share {result['cpu_cores']} cores: no device adds "
                "compute here; the losses agree across device counts.")
    fig = throughput_figure(result["throughput"], ctx.path("throughput_vs_devices.png"), note=note)
    ctx.save_json("sharding.json", result)
    tp = result["throughput"]["tiny_denoiser"]
    return {
        "pictures": str(out / "sharding_pictures.txt"),
        "throughput_figure": str(fig),
        "column_means_max_difference": result["column_means_max_difference"],
        "all_reduces_inserted": result["collectives_for_mean"]["all-reduce"],
        "shard_map_relative_difference": result["sum_of_squares"]["relative_difference"],
        "final_loss_spread_across_device_counts": tp["final_loss_spread"],
        "images_per_s": {r["devices"]: round(r["images_per_s"], 1) for r in tp["rows"]},
        "astro_unet": result["astro_unet"],
        "protein_finetune": result["protein_finetune"],
    }


def multihost(ctx: RunContext) -> dict:
    """Two JAX processes on 127.0.0.1 (CPU) computing global statistics together."""
    from ..multihost import run_multiprocess_demo

    n_proc, n_dev = 2, 2
    ctx.log(f"Starting {n_proc} processes, {n_dev} CPU devices each, joined by jax.distributed.initialize on 127.0.0.1 …")
    result = run_multiprocess_demo(num_processes=n_proc, devices_per_process=n_dev, timeout=180.0, seed=ctx.seed)
    for p in result["processes"]:
        ctx.log(f"  process {p['process_id']}/{p['process_count']}: local devices {p['local_devices']}, "
                f"{p['local_rows']} local rows of {p['rows']}; global sum of squares {p['sum_of_squares']:.4f}")
    ctx.log(f"  single-process answer {result['reference']['sum_of_squares']:.4f}; largest difference "
            f"{result['max_difference']:.1e}: {'match' if result['matches_single_process'] else 'MISMATCH'} "
            f"({result['seconds']:.1f} s including start-up)")
    ctx.save_json("multihost.json", result)
    if not result["matches_single_process"]:
        raise RuntimeError(f"the processes disagree with the single-process answer (difference {result['max_difference']:.2e})")
    return {"processes": len(result["processes"]), "max_difference": result["max_difference"],
            "matches_single_process": result["matches_single_process"]}
