"""Benchmark: do more of XLA's CPU options, or a depthwise-convolution design, close the gap to PyTorch?

Two questions behind the throughput goal (a training step at least 1.0x PyTorch's for the
same network), after ``astro_design_throughput.py`` found no network family that reaches it:

* **Compiler options.** One training step (forward, noise-prediction MSE, backward, Adam;
  batch 32 at 32x32) of the ``cpu`` preset's U-Net and of the benchmark's diffusion
  transformer (patch 4, width 128, 6 blocks), compiled with the project's options
  (``workshop_astro.xla_cpu``), with XLA's defaults, and with the project's options plus
  one more ``DebugOptions`` field each (schedulers, XNNPACK graph fusion, tiling
  propagation, 512-bit vectors, fast math), or with fewer YNNPACK fusions; every variant
  and the same network in PyTorch (the twins of ``astro_unet_throughput.py`` and
  ``astro_design_throughput.py``; the U-Net channels last) in alternating turns in one
  process (medians). An option this jaxlib does not know is reported, not fatal.
* **Depthwise convolutions**, the spatial part of ConvNeXt-style blocks (whose other work
  is matrix products): a 3x3 depthwise convolution, forward and backward through a tanh,
  on 32 images of 32x32 at 32, 64 and 128 channels, in XLA as a grouped convolution and
  as nine shifted multiply-adds (which XLA fuses into one loop), against PyTorch's
  ``Conv2d(groups=C)`` in both memory formats.

    .venv/bin/python benchmarks/astro_xla_options.py [--repeats 8 --threads 2]

Writes benchmarks/results/astro_xla_options.json. Needs torch (benchmark only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "astro_xla_options.json"
YNN = "xla_cpu_experimental_ynn_fusion_type"


def option_variants(project: dict) -> dict[str, dict]:
    """The compiler options of each variant, by name."""
    dots = "LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
    return {
        "project": project,
        "xla_defaults": {},
        "project + concurrency-optimised scheduler": dict(
            project, xla_cpu_scheduler_type="CPU_SCHEDULER_TYPE_CONCURRENCY_OPTIMIZED"),
        "project + memory-optimised scheduler": dict(
            project, xla_cpu_scheduler_type="CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"),
        "project + XNNPACK greedy graph fusion": dict(
            project, xla_cpu_experimental_xnn_graph_fusion_mode="XNN_GRAPH_FUSION_MODE_GREEDY"),
        "project + tiling propagation": dict(project, xla_cpu_experimental_enable_tiling_propagation=True),
        "project + 512-bit vectors": dict(project, xla_cpu_prefer_vector_width=512),
        "project + fast math": dict(project, xla_cpu_enable_fast_math=True),
        "YNNPACK for matrix products only": {YNN: dots},
        "YNNPACK for matrix products and elementwise": {YNN: dots + ",LIBRARY_FUSION_TYPE_ELTWISE"},
    }


def time_options(network: str, repeats: int) -> dict:
    """Median step time (s) of ``network`` ("cpu" or "transformer") under each option variant."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    from astro_design_throughput import DiTConfig, jax_dit
    from workshop_astro.unet import PRESET_CONFIGS, UNet
    from workshop_astro.xla_cpu import requested_options

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(-1, 1, (32, 3, 32, 32)).astype(np.float32))
    eps = jnp.asarray(rng.normal(size=x.shape).astype(np.float32))
    t = jnp.asarray(rng.uniform(0.01, 1, 32).astype(np.float32))
    model = jax_dit(DiTConfig()) if network == "transformer" else UNet(PRESET_CONFIGS["cpu"], key=jax.random.key(0))
    opt = optax.adam(1e-4)
    state = opt.init(eqx.filter(model, eqx.is_inexact_array))

    def step(model, state, x, t, eps):
        loss, g = eqx.filter_value_and_grad(lambda m: jnp.mean((jax.vmap(m)(x, t) - eps) ** 2))(model)
        u, state = opt.update(g, state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, u), state, loss

    compiled, refused = {}, {}
    for name, options in option_variants(requested_options()).items():
        fn = eqx.filter_jit(step, compiler_options=options)
        try:
            fn(model, state, x, t, eps)[2].block_until_ready()
        except Exception as e:  # an option this jaxlib does not know, or a value it refuses
            refused[name] = str(e).splitlines()[0][:200]
            continue
        compiled[name] = fn
    torch_step = _torch_step(network, x, t, eps)
    times = {name: [] for name in [*compiled, "pytorch"]}
    for _ in range(repeats):
        for name, fn in compiled.items():
            t0 = time.perf_counter()
            for _ in range(2):
                fn(model, state, x, t, eps)[2].block_until_ready()
            times[name].append((time.perf_counter() - t0) / 2)
        t0 = time.perf_counter()
        for _ in range(2):
            torch_step()
        times["pytorch"].append((time.perf_counter() - t0) / 2)
    step_s = {name: statistics.median(v) for name, v in times.items()}
    for name, s in step_s.items():
        print(f"{network}: {name}: {1e3 * s:.1f} ms ({step_s['pytorch'] / s:.2f}x PyTorch's speed)", flush=True)
    return dict(step_s=step_s, over_pytorch={name: step_s["pytorch"] / s for name, s in step_s.items()},
                turns_s=times, refused=refused)


def _torch_step(network: str, x, t, eps):
    """One PyTorch training step of the same network (the twins of the other two benchmarks;
    the U-Net channels last, its faster layout here)."""
    import torch

    from astro_design_throughput import DiTConfig, torch_dit
    from astro_unet_throughput import torch_unet
    from workshop_astro.unet import PRESET_CONFIGS

    tx, tt, te = (torch.from_numpy(np.asarray(a)) for a in (x, t, eps))
    if network == "transformer":
        net = torch_dit(DiTConfig())
    else:
        net = torch_unet(PRESET_CONFIGS["cpu"]).to(memory_format=torch.channels_last)
        tx = tx.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.mean((net(tx, tt) - te) ** 2)
        loss.backward()
        opt.step()

    step()
    return step


def time_depthwise(channels: int, repeats: int) -> dict:
    """Median seconds of forward + backward of a 3x3 depthwise convolution, XLA and PyTorch."""
    import jax
    import jax.numpy as jnp
    import torch

    from workshop_astro.xla_cpu import requested_options

    b, h, w, c = 32, 32, 32, channels
    rng = np.random.default_rng(0)
    x = rng.normal(size=(b, h, w, c)).astype(np.float32)
    k = (0.1 * rng.normal(size=(3, 3, c))).astype(np.float32)

    def shifted(x, k):
        xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        return sum(xp[:, i:i + h, j:j + w, :] * k[i, j] for i in range(3) for j in range(3))

    def grouped(x, k):
        return jax.lax.conv_general_dilated(x, k[:, :, None, :], (1, 1), "SAME", feature_group_count=c,
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def grad_of(f):
        return jax.jit(jax.grad(lambda x, k: jnp.sum(jnp.tanh(f(x, k))), argnums=(0, 1)),
                       compiler_options=requested_options())

    jx, jk = jnp.asarray(x), jnp.asarray(k)
    runs = {}
    for name, f in (("xla_shifted_multiply_adds", shifted), ("xla_grouped_convolution", grouped)):
        g = grad_of(f)
        jax.block_until_ready(g(jx, jk))
        runs[name] = lambda g=g: jax.block_until_ready(g(jx, jk))
    for name, fmt in (("torch_channels_first", torch.contiguous_format), ("torch_channels_last", torch.channels_last)):
        conv = torch.nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False).to(memory_format=fmt)
        tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=fmt).requires_grad_(True)

        def run(conv=conv, tx=tx):
            tx.grad, conv.weight.grad = None, None
            torch.tanh(conv(tx)).sum().backward()

        run()
        runs[name] = run
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    row = dict(channels=c, seconds={name: statistics.median(v) for name, v in times.items()})
    print(f"depthwise 3x3, {c} channels: " + ", ".join(f"{n} {1e3 * s:.2f} ms" for n, s in row["seconds"].items()),
          flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "modules/astro_diffusion/src"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import jax
    import torch

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    options = {net: time_options(net, args.repeats) for net in ("transformer", "cpu")}
    depthwise = [time_depthwise(c, 2 * args.repeats) for c in (32, 64, 128)]
    result = dict(
        benchmark="astro_xla_options", jax=jax.__version__, torch=torch.__version__, threads=args.threads,
        machine=platform.processor() or platform.machine(), cpu_count=os.cpu_count(), repeats=args.repeats,
        load_average_at_start=load_start, load_average_at_end=os.getloadavg(),
        options=options, depthwise=depthwise,
        note="training steps of batch 32 at 32x32 (transformer: patch 4, width 128, 6 blocks; cpu: the preset's "
             "U-Net), medians of alternating turns of 2 steps per variant in one process; depthwise: forward and "
             "backward of a 3x3 depthwise convolution through a tanh, 32 images of 32x32",
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
