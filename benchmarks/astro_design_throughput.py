"""Benchmark: can another network family train at PyTorch's speed under XLA on this CPU?

``astro_unet_throughput.py`` measures the project's own networks; this one asks whether a
different design would close the gap to PyTorch, as the throughput goal (a training step
at least 1.0x PyTorch's for the same architecture) requires. Two families, each beside
the ``cpu`` preset:

* wider convolutional networks with space-to-depth at the input (2 or 4), so that each
  3x3 convolution has more channels and fewer pixels (the project's ``UNet``, the PyTorch
  twin of ``astro_unet_throughput.py``, PyTorch in both memory formats);
* a diffusion transformer written here for the benchmark only (DiT-style, Peebles & Xie
  2023: patch embedding, fixed 2-D sine-cosine positions, blocks of multi-head attention
  and a GELU MLP, each modulated by the time through adaLN-Zero; patch 4 or 2 on 32x32
  stamps), all of whose work is matrix products, in JAX and in PyTorch (the
  parameter counts are asserted equal).

One training step = forward, noise-prediction MSE, backward, Adam update, batch 32; JAX
with the project's compiler options (``workshop_astro.xla_cpu``) and with XLA's defaults,
PyTorch on the same threads, alternating in one process (medians).

    .venv/bin/python benchmarks/astro_design_throughput.py [--repeats 5 --threads 2]

Writes benchmarks/results/astro_design_throughput.json. Needs torch (benchmark only).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "astro_design_throughput.json"


@dataclasses.dataclass(frozen=True)
class DiTConfig:
    patch: int = 4
    dim: int = 128
    depth: int = 6
    head_dim: int = 32
    mlp_ratio: int = 4
    time_dim: int = 64
    size: int = 32
    channels: int = 3


def sincos_positions(n: int, dim: int) -> np.ndarray:
    """Fixed ``(n*n, dim)`` positions: sines and cosines of the row, then of the column."""
    rows, cols = np.mgrid[:n, :n]
    freqs = 1.0 / 10_000 ** (np.arange(dim // 4) / (dim // 4))
    parts = [f(np.outer(v.ravel(), freqs)) for v in (rows, cols) for f in (np.sin, np.cos)]
    return np.concatenate(parts, 1).astype(np.float32)


def jax_dit(cfg: DiTConfig, seed: int = 0):
    """The transformer in Equinox, for ONE ``(C, H, W)`` image (``jax.vmap`` batches it)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from workshop_astro.unet import time_embedding

    def linear(key, fan_in, fan_out, scale=1.0):
        lim = 1.0 / math.sqrt(fan_in)
        w = jax.random.uniform(key, (fan_in, fan_out), minval=-lim, maxval=lim) * scale
        return w, jnp.zeros((fan_out,))

    def apply(p, x):
        return x @ p[0] + p[1]

    def layer_norm(x):
        mu = x.mean(-1, keepdims=True)
        return (x - mu) * jax.lax.rsqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-6)

    class Block(eqx.Module):
        modulation: tuple
        qkv: tuple
        proj: tuple
        fc1: tuple
        fc2: tuple
        heads: int = eqx.field(static=True)

        def __init__(self, key):
            k = jax.random.split(key, 5)
            d = cfg.dim
            self.modulation = linear(k[0], d, 6 * d, 0.0)  # adaLN-Zero: every block starts as the identity
            self.qkv, self.proj = linear(k[1], d, 3 * d), linear(k[2], d, d)
            self.fc1, self.fc2 = linear(k[3], d, cfg.mlp_ratio * d), linear(k[4], cfg.mlp_ratio * d, d)
            self.heads = d // cfg.head_dim

        def __call__(self, h, temb):
            shift1, scale1, gate1, shift2, scale2, gate2 = jnp.split(apply(self.modulation, temb), 6)
            n, d = h.shape
            a = layer_norm(h) * (1 + scale1) + shift1
            q, k, v = (z.reshape(n, self.heads, -1).transpose(1, 0, 2) for z in jnp.split(apply(self.qkv, a), 3, -1))
            att = jax.nn.softmax(q @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1]), -1)
            h = h + gate1 * apply(self.proj, (att @ v).transpose(1, 0, 2).reshape(n, d))
            a = layer_norm(h) * (1 + scale2) + shift2
            return h + gate2 * apply(self.fc2, jax.nn.gelu(apply(self.fc1, a), approximate=True))

    class DiT(eqx.Module):
        embed: tuple
        positions: jax.Array
        time1: tuple
        time2: tuple
        blocks: list
        final_modulation: tuple
        out: tuple

        def __init__(self, key):
            k = jax.random.split(key, 5 + cfg.depth)
            token = cfg.channels * cfg.patch**2
            self.embed = linear(k[0], token, cfg.dim)
            self.positions = jnp.asarray(sincos_positions(cfg.size // cfg.patch, cfg.dim))
            self.time1, self.time2 = linear(k[1], cfg.time_dim, cfg.dim), linear(k[2], cfg.dim, cfg.dim)
            self.blocks = [Block(k[5 + i]) for i in range(cfg.depth)]
            self.final_modulation = linear(k[3], cfg.dim, 2 * cfg.dim, 0.0)
            self.out = linear(k[4], cfg.dim, token, 0.0)

        def __call__(self, x, t):
            p, (c, size, _) = cfg.patch, x.shape
            n = size // p
            tokens = x.reshape(c, n, p, n, p).transpose(1, 3, 0, 2, 4).reshape(n * n, c * p * p)
            h = apply(self.embed, tokens) + jax.lax.stop_gradient(self.positions)
            temb = jax.nn.silu(apply(self.time2, jax.nn.silu(apply(self.time1, time_embedding(t, cfg.time_dim)))))
            for block in self.blocks:
                h = block(h, temb)
            shift, scale = jnp.split(apply(self.final_modulation, temb), 2)
            o = apply(self.out, layer_norm(h) * (1 + scale) + shift)
            return o.reshape(n, n, c, p, p).transpose(2, 0, 3, 1, 4).reshape(c, size, size)

    return DiT(jax.random.key(seed))


def torch_dit(cfg: DiTConfig):
    """The same transformer in PyTorch, on a batch ``(B, C, H, W)``."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    def time_features(t, dim):
        half = dim // 2
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half) / max(half - 1, 1))
        angles = 1000.0 * t[:, None] * freqs[None]
        return torch.cat([torch.sin(angles), torch.cos(angles)], 1)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            d = cfg.dim
            self.modulation, self.qkv, self.proj = nn.Linear(d, 6 * d), nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc1, self.fc2 = nn.Linear(d, cfg.mlp_ratio * d), nn.Linear(cfg.mlp_ratio * d, d)
            self.heads = d // cfg.head_dim

        def forward(self, h, temb):
            shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(temb)[:, None].chunk(6, -1)
            b, n, d = h.shape
            a = F.layer_norm(h, (d,), eps=1e-6) * (1 + scale1) + shift1
            q, k, v = self.qkv(a).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            h = h + gate1 * self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))
            a = F.layer_norm(h, (d,), eps=1e-6) * (1 + scale2) + shift2
            return h + gate2 * self.fc2(F.gelu(self.fc1(a), approximate="tanh"))

    class DiT(nn.Module):
        def __init__(self):
            super().__init__()
            token = cfg.channels * cfg.patch**2
            self.embed = nn.Linear(token, cfg.dim)
            self.register_buffer("positions", torch.from_numpy(sincos_positions(cfg.size // cfg.patch, cfg.dim)))
            self.time1, self.time2 = nn.Linear(cfg.time_dim, cfg.dim), nn.Linear(cfg.dim, cfg.dim)
            self.blocks = nn.ModuleList([Block() for _ in range(cfg.depth)])
            self.final_modulation, self.out = nn.Linear(cfg.dim, 2 * cfg.dim), nn.Linear(cfg.dim, token)

        def forward(self, x, t):
            p, (b, c, size, _) = cfg.patch, x.shape
            n = size // p
            tokens = x.reshape(b, c, n, p, n, p).permute(0, 2, 4, 1, 3, 5).reshape(b, n * n, c * p * p)
            h = self.embed(tokens) + self.positions
            temb = F.silu(self.time2(F.silu(self.time1(time_features(t, cfg.time_dim)))))
            for block in self.blocks:
                h = block(h, temb)
            shift, scale = self.final_modulation(temb)[:, None].chunk(2, -1)
            o = self.out(F.layer_norm(h, (cfg.dim,), eps=1e-6) * (1 + scale) + shift)
            return o.reshape(b, n, n, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, c, size, size)

    return DiT()


def bench_dit(name: str, cfg: DiTConfig, batch: int, repeats: int, threads: int) -> dict:
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax
    import torch

    from workshop_astro.xla_cpu import filter_jit

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch, cfg.channels, cfg.size, cfg.size)).astype(np.float32)
    eps = rng.normal(size=x.shape).astype(np.float32)
    t = rng.uniform(0.01, 1, batch).astype(np.float32)

    model = jax_dit(cfg)
    n_jax = sum(a.size for a in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array)))
    n_jax -= model.positions.size  # fixed, not trained (a buffer in PyTorch)
    opt = optax.adam(1e-4)
    state = opt.init(eqx.filter(model, eqx.is_inexact_array))

    def step_fn(model, state, x, t, eps):
        loss, g = eqx.filter_value_and_grad(lambda m: jnp.mean((jax.vmap(m)(x, t) - eps) ** 2))(model)
        u, state = opt.update(g, state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, u), state, loss

    jstep, jstep_default = filter_jit(step_fn), eqx.filter_jit(step_fn)
    tnet = torch_dit(cfg)
    n_torch = sum(p.numel() for p in tnet.parameters())
    assert n_torch == n_jax, (n_torch, n_jax)
    topt = torch.optim.Adam(tnet.parameters(), lr=1e-4)
    tx, tt, te = torch.from_numpy(x), torch.from_numpy(t), torch.from_numpy(eps)

    def tstep():
        topt.zero_grad(set_to_none=True)
        loss = torch.mean((tnet(tx, tt) - te) ** 2)
        loss.backward()
        topt.step()
        return loss.item()

    jx, jt, je = jnp.asarray(x), jnp.asarray(t), jnp.asarray(eps)
    model_d, state_d = model, state
    model, state, loss = jstep(model, state, jx, jt, je)
    loss.block_until_ready()
    model_d, state_d, loss = jstep_default(model_d, state_d, jx, jt, je)
    loss.block_until_ready()
    tstep()
    times = {"jax": [], "jax_xla_defaults": [], "torch": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        model, state, loss = jstep(model, state, jx, jt, je)
        loss.block_until_ready()
        times["jax"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model_d, state_d, loss = jstep_default(model_d, state_d, jx, jt, je)
        loss.block_until_ready()
        times["jax_xla_defaults"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        tstep()
        times["torch"].append(time.perf_counter() - t0)
    j, jd, tq = (statistics.median(times[k]) for k in ("jax", "jax_xla_defaults", "torch"))
    row = dict(name=name, family="transformer", config=dataclasses.asdict(cfg), batch=batch, parameters=n_jax,
               jax_step_s=j, jax_xla_defaults_step_s=jd, torch_step_s=tq, jax_over_best_torch=tq / j,
               jax_xla_defaults_over_best_torch=tq / jd, step_times=times)
    print(f"{name}: {n_jax:,} params: JAX {1e3 * j:.1f} ms (XLA's defaults {1e3 * jd:.1f}), PyTorch {1e3 * tq:.1f} ms; "
          f"ratio {row['jax_over_best_torch']:.2f} ({row['jax_xla_defaults_over_best_torch']:.2f})", flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "modules/astro_diffusion/src"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import jax
    import torch

    from astro_unet_throughput import bench
    from workshop_astro.unet import PRESET_CONFIGS, UNetConfig
    from workshop_astro.xla_cpu import compiler_options

    def conv(name, cfg):
        r = bench(name, cfg, 32, 32, args.repeats, args.threads)
        keep = ("name", "config", "batch", "parameters", "jax_step_s", "jax_xla_defaults_step_s", "torch_step_s",
                "torch_channels_last_step_s", "jax_over_best_torch", "jax_xla_defaults_over_best_torch")
        return dict({k: r[k] for k in keep}, family="convolutional")

    def wide(**kw):
        return UNetConfig(time_dim=64, input_skip=True, **kw)

    rows = [
        conv("cpu preset (3x3 residual blocks, 16-32 channels)", PRESET_CONFIGS["cpu"]),
        conv("space-to-depth 2, 32-64 channels, 3 levels", wide(channels=32, mults=(1, 2, 2), attention_levels=(2,),
                                                               patch=2)),
        conv("space-to-depth 2, 64-128 channels, 2 levels", wide(channels=64, mults=(1, 2), attention_levels=(1,),
                                                                patch=2)),
        conv("space-to-depth 4, 64-128 channels, 2 levels", wide(channels=64, mults=(1, 2), attention_levels=(1,),
                                                                patch=4)),
        conv("space-to-depth 4, 128 channels, 2 levels", wide(channels=128, mults=(1, 1), attention_levels=(1,),
                                                             patch=4)),
        bench_dit("transformer, patch 4, width 128, 6 blocks", DiTConfig(), 32, args.repeats, args.threads),
        bench_dit("transformer, patch 4, width 192, 6 blocks", DiTConfig(dim=192), 32, args.repeats, args.threads),
        bench_dit("transformer, patch 2, width 128, 6 blocks", DiTConfig(patch=2), 32, args.repeats, args.threads),
    ]
    result = dict(
        benchmark="astro_design_throughput", jax=jax.__version__, torch=torch.__version__, threads=args.threads,
        compiler_options=compiler_options(), machine=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(), load_average_at_end=os.getloadavg(), repeats=args.repeats, rows=rows,
        best=max(rows, key=lambda r: r["jax_over_best_torch"])["name"],
        note="training steps of batch 32 at 32x32, medians of alternating JAX (project options, XLA's defaults) "
             "and PyTorch (both memory formats for the convolutional rows) in one process; "
             "jax_over_best_torch = PyTorch's faster step time / JAX's",
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}; closest to PyTorch: {result['best']}")


if __name__ == "__main__":
    main()
