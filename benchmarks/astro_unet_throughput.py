"""Benchmark: training throughput of the galaxy U-Net, Equinox (JAX) vs the same network in PyTorch, on CPU.

The PyTorch model below mirrors :class:`workshop_astro.unet.UNet` layer for layer, in both
designs: ``block="res"`` (residual blocks of 3x3 convolutions with a time projection,
optional group norm, strided-conv downsampling, nearest-neighbour upsampling + 3x3 conv,
single-head attention at low resolution) and ``block="mix"`` (depthwise 3x3 + per-pixel
MLP blocks with time scale/shift, pixel-unshuffle/shuffle + 1x1 down and up, multi-head
attention with PyTorch's fused ``scaled_dot_product_attention``), with space-to-depth
patching and the optional input skip; the parameter counts are asserted equal. One training step
= forward, noise-prediction MSE, backward, Adam update, on the same batch size; the two
frameworks are timed alternately in one process (medians), so a busy machine slows both.
PyTorch is timed in both memory formats (its default channels first, and channels last,
the layout JAX's ``"res"`` network runs in); ``jax_over_best_torch`` compares with the faster.
JAX is timed as the project compiles its steps (``workshop_astro.xla_cpu``: XLA's own
convolutions and YNNPACK's fusions, the ``jax_*`` fields) and with XLA's defaults
(``jax_xla_defaults_*``), in the same alternation.

    .venv/bin/python benchmarks/astro_unet_throughput.py [--repeats 5 --threads 2]

Writes benchmarks/results/astro_unet_throughput.json. Needs torch (benchmark only).
"""

from __future__ import annotations

import argparse
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
OUT = ROOT / "benchmarks" / "results" / "astro_unet_throughput.json"


def torch_unet(cfg):
    import torch
    from torch import nn
    import torch.nn.functional as F

    def norm(c):
        return nn.GroupNorm(min(8, c), c) if cfg.norm == "group" else nn.Identity()

    class ResBlock(nn.Module):
        def __init__(self, cin, cout, td):
            super().__init__()
            self.norm1, self.conv1 = norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
            self.time_proj = nn.Linear(td, cout)
            self.norm2, self.conv2 = norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
            self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

        def forward(self, x, temb):
            h = self.conv1(F.silu(self.norm1(x))) + self.time_proj(temb)[:, :, None, None]
            h = self.conv2(F.silu(self.norm2(h)))
            return h + (x if self.skip is None else self.skip(x))

    class Attention(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.norm, self.qkv, self.out = norm(c), nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)

        def forward(self, x):
            b, c, h, w = x.shape
            q, k, v = self.qkv(self.norm(x)).reshape(b, 3 * c, h * w).chunk(3, dim=1)
            att = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), dim=-1)
            return x + self.out((v @ att.transpose(1, 2)).reshape(b, c, h, w))

    class Up(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1)

        def forward(self, x):
            return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))

    def channel_norm(x):
        return F.layer_norm(x.transpose(1, -1), (x.shape[1],), eps=1e-5).transpose(1, -1)

    class MixBlock(nn.Module):
        def __init__(self, cin, cout, td):
            super().__init__()
            r = cfg.mlp_ratio
            self.dw = nn.Conv2d(cin, cin, 3, padding=1, groups=cin)
            self.time_proj = nn.Linear(td, 2 * cin)
            self.inner, self.out = nn.Conv2d(cin, r * cout, 1), nn.Conv2d(r * cout, cout, 1)
            self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

        def forward(self, x, temb):
            scale, shift = self.time_proj(temb)[:, :, None, None].chunk(2, dim=1)
            h = channel_norm(self.dw(x)) * (1 + scale) + shift
            h = self.out(F.silu(self.inner(h)))
            return h + (x if self.skip is None else self.skip(x))

    class MultiHeadAttention(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.heads = max(1, c // cfg.head_channels)
            self.qkv, self.out = nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)

        def forward(self, x):
            b, c, h, w = x.shape
            q, k, v = self.qkv(channel_norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
            o = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
            return x + self.out(o.transpose(-1, -2).reshape(b, c, h, w))

    class PatchDown(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.proj = nn.Conv2d(4 * cin, cout, 1)

        def forward(self, x):
            return self.proj(F.pixel_unshuffle(x, 2))

    class PatchUp(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.proj = nn.Conv2d(cin, 4 * cout, 1)

        def forward(self, x):
            return F.pixel_shuffle(self.proj(x), 2)

    mix = getattr(cfg, "block", "res") == "mix"
    if mix:
        ResBlock, Attention, Down, Up = MixBlock, MultiHeadAttention, PatchDown, PatchUp  # noqa: N806
    else:
        def Down(cin, cout):  # noqa: N802
            return nn.Conv2d(cin, cout, 3, stride=2, padding=1)

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            C, td, p = cfg.channels, cfg.time_dim, cfg.patch
            self.time_mlp = nn.Sequential(nn.Linear(td, td), nn.SiLU(), nn.Linear(td, td))
            cin = (cfg.image_channels + 2 * cfg.coords) * p * p
            self.stem = nn.Conv2d(cin, C, 1 if mix else 3, padding=0 if mix else 1)
            chans = [C * m for m in cfg.mults]
            self.down, self.down_attn, self.downs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
            skips, cin = [C], C
            for lvl, cout in enumerate(chans):
                blocks, attn = nn.ModuleList(), nn.ModuleList()
                for _ in range(cfg.blocks):
                    blocks.append(ResBlock(cin, cout, td))
                    attn.append(Attention(cout) if lvl in cfg.attention_levels else nn.Identity())
                    cin = cout
                    skips.append(cin)
                self.down.append(blocks)
                self.down_attn.append(attn)
                if lvl < len(chans) - 1:
                    self.downs.append(Down(cin, cin))
                    skips.append(cin)
            self.mid1 = ResBlock(cin, cin, td)
            self.mid_attn = Attention(cin) if cfg.attention_levels else nn.Identity()
            self.mid2 = ResBlock(cin, cin, td)
            self.up, self.up_attn, self.ups = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
            for lvl in reversed(range(len(chans))):
                cout = chans[lvl]
                blocks, attn = nn.ModuleList(), nn.ModuleList()
                for _ in range(cfg.blocks + 1):
                    blocks.append(ResBlock(cin + skips.pop(), cout, td))
                    attn.append(Attention(cout) if lvl in cfg.attention_levels else nn.Identity())
                    cin = cout
                self.up.append(blocks)
                self.up_attn.append(attn)
                if lvl > 0:
                    self.ups.append(Up(cin, cin))
            self.head_norm = channel_norm if mix else norm(cin)
            self.head = nn.Conv2d(cin, cfg.image_channels * p * p, 1 if mix else 3, padding=0 if mix else 1)
            self.input_skip = nn.Linear(td, 2 * cfg.image_channels) if cfg.input_skip else None

        def forward(self, x, t):
            half = cfg.time_dim // 2
            freqs = torch.exp(-math.log(10_000.0) * torch.arange(half) / max(half - 1, 1))
            ang = 1000.0 * t[:, None] * freqs[None]
            temb = self.time_mlp(torch.cat([torch.sin(ang), torch.cos(ang)], dim=1))
            p = cfg.patch
            x_in = x
            if cfg.coords:  # the pixel positions (UNetConfig.coords), as the JAX network adds them
                b, _, hh, ww = x.shape
                grid = torch.stack(torch.meshgrid(torch.linspace(-1, 1, hh), torch.linspace(-1, 1, ww), indexing="ij"))
                x = torch.cat([x, grid.expand(b, 2, hh, ww)], dim=1)
            if p > 1:
                x = F.pixel_unshuffle(x, p)
            h = self.stem(x)
            hs = [h]
            n = len(self.down)
            for lvl in range(n):
                for block, attn in zip(self.down[lvl], self.down_attn[lvl]):
                    h = attn(block(h, temb))
                    hs.append(h)
                if lvl < n - 1:
                    h = self.downs[lvl](h)
                    hs.append(h)
            h = self.mid2(self.mid_attn(self.mid1(h, temb)), temb)
            for i in range(n):
                for block, attn in zip(self.up[i], self.up_attn[i]):
                    h = attn(block(torch.cat([h, hs.pop()], dim=1), temb))
                if i < n - 1:
                    h = self.ups[i](h)
            out = self.head(F.silu(self.head_norm(h)))
            out = F.pixel_shuffle(out, p) if p > 1 else out
            if self.input_skip is not None:
                w, b = self.input_skip(temb).chunk(2, dim=1)
                out = out + w[:, :, None, None] * x_in + b[:, :, None, None]
            return out

    return UNet()


def bench(name, cfg, res, batch, repeats, threads):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax
    import torch

    from workshop_astro.unet import count_params, init_unet
    from workshop_astro.xla_cpu import filter_jit

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch, 3, res, res)).astype(np.float32)
    eps = rng.normal(size=x.shape).astype(np.float32)
    t = rng.uniform(0.01, 1, batch).astype(np.float32)

    model = init_unet(cfg, 0)
    opt = optax.adam(1e-4)
    state = opt.init(eqx.filter(model, eqx.is_inexact_array))

    def jstep_fn(model, state, x, t, eps):
        def loss(m):
            return jnp.mean((jax.vmap(m)(x, t) - eps) ** 2)

        l, g = eqx.filter_value_and_grad(loss)(model)
        u, state = opt.update(g, state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, u), state, l

    # The project's compilation (xla_cpu.filter_jit: XLA's convolutions, YNNPACK's fusions)
    # and XLA's defaults, timed in the same alternation.
    jstep = filter_jit(jstep_fn)
    jstep_default = eqx.filter_jit(jstep_fn)

    tnet = torch_unet(cfg)
    n_torch = sum(p.numel() for p in tnet.parameters())
    n_jax = count_params(model)
    assert n_torch == n_jax, (n_torch, n_jax)
    topt = torch.optim.Adam(tnet.parameters(), lr=1e-4)
    tx, tt, te = torch.from_numpy(x), torch.from_numpy(t), torch.from_numpy(eps)

    # PyTorch also gets its channels-last layout (JAX's "res" network runs channels last):
    # the same weights, memory format torch.channels_last for the model and the batch.
    import copy

    tnet_cl = copy.deepcopy(tnet).to(memory_format=torch.channels_last)
    topt_cl = torch.optim.Adam(tnet_cl.parameters(), lr=1e-4)
    tx_cl = tx.contiguous(memory_format=torch.channels_last)

    def tstep(net=tnet, opt=topt, inp=tx):
        opt.zero_grad(set_to_none=True)
        loss = torch.mean((net(inp, tt) - te) ** 2)
        loss.backward()
        opt.step()
        return loss.item()

    jx, jt, je = jnp.asarray(x), jnp.asarray(t), jnp.asarray(eps)
    model_d, state_d = model, state
    t0 = time.perf_counter()
    model, state, l = jstep(model, state, jx, jt, je)
    l.block_until_ready()
    compile_s = time.perf_counter() - t0
    model_d, state_d, l = jstep_default(model_d, state_d, jx, jt, je)
    tstep()  # warm-up
    tstep(tnet_cl, topt_cl, tx_cl)
    jt_times, jd_times, tt_times, tcl_times = [], [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model, state, l = jstep(model, state, jx, jt, je)
        l.block_until_ready()
        jt_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model_d, state_d, l = jstep_default(model_d, state_d, jx, jt, je)
        l.block_until_ready()
        jd_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        tstep()
        tt_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        tstep(tnet_cl, topt_cl, tx_cl)
        tcl_times.append(time.perf_counter() - t0)
    j, tq, tcl = statistics.median(jt_times), statistics.median(tt_times), statistics.median(tcl_times)
    jd = statistics.median(jd_times)
    row = dict(name=name, config=cfg.as_dict(), resolution=res, batch=batch, parameters=n_jax,
               jax_step_s=j, torch_step_s=tq, jax_images_per_s=batch / j, torch_images_per_s=batch / tq,
               jax_over_torch=(batch / j) / (batch / tq), torch_channels_last_step_s=tcl,
               torch_channels_last_images_per_s=batch / tcl, jax_over_best_torch=min(tq, tcl) / j,
               jax_xla_defaults_step_s=jd, jax_xla_defaults_images_per_s=batch / jd,
               jax_xla_defaults_over_torch=tq / jd, jax_xla_defaults_over_best_torch=min(tq, tcl) / jd,
               jax_compile_s=compile_s, jax_step_times=jt_times, jax_xla_defaults_step_times=jd_times,
               torch_step_times=tt_times, torch_channels_last_step_times=tcl_times)
    print(f"{name}: {n_jax:,} params, batch {batch} at {res}x{res}: JAX {batch / j:.1f} img/s "
          f"(XLA's defaults {batch / jd:.1f}), PyTorch {batch / tq:.1f} img/s (channels last {batch / tcl:.1f}), "
          f"ratio {row['jax_over_torch']:.2f}, to PyTorch's faster layout {row['jax_over_best_torch']:.2f} "
          f"(XLA's defaults {row['jax_xla_defaults_over_best_torch']:.2f}; compile {compile_s:.1f} s)", flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="only the cpu preset's two designs")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "modules/astro_diffusion/src"))
    import jax
    import torch

    from dataclasses import replace

    from workshop_astro.pretrained import PRETRAINED_NAME, read_header
    from workshop_astro.unet import PRESET_CONFIGS, UNetConfig

    # the shipped 64x64 model's own configuration
    pre = UNetConfig.from_dict(read_header(ROOT / "modules/astro_diffusion/src/workshop_astro/data" / PRETRAINED_NAME)["config"])
    rows = [
        bench("mix design (cpu_mix: patch 2, matmul blocks)", PRESET_CONFIGS["cpu_mix"], 32, 32, args.repeats, args.threads),
        bench("cpu preset (3x3 residual blocks)", PRESET_CONFIGS["cpu"], 32, 32, args.repeats, args.threads),
    ]
    if not args.quick:
        rows += [
            bench("cpu preset + GroupNorm", replace(PRESET_CONFIGS["cpu"], norm="group"), 32, 32,
                  args.repeats, args.threads),
            bench("pretrained 64x64 (patch 2)", pre, 64, 16, args.repeats, args.threads),
        ]
    from workshop_astro.xla_cpu import compiler_options

    result = dict(
        benchmark="astro_unet_throughput", jax=jax.__version__, torch=torch.__version__, threads=args.threads,
        compiler_options=compiler_options(),
        machine=platform.processor() or platform.machine(), cpu_count=os.cpu_count(),
        load_average_at_end=os.getloadavg(), repeats=args.repeats, rows=rows,
        note="medians of alternating JAX (the project's compiler options, then XLA's defaults) / PyTorch train "
             "steps in one process; a shared machine slows both",
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
