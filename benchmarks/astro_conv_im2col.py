"""Benchmark: XLA's 3x3 convolution against the same convolution written as one matrix product.

On a CPU, XLA runs a 3x3 convolution's forward and backward at about 0.4x PyTorch's
oneDNN while float32 matrix products run at par (PERFORMANCE.md). Writing the convolution
as a matrix product would move the work to the fast kernel: the nine shifted copies of
the padded input are stacked along the channels (im2col) and multiplied by the
``(9 C, O)`` weight matrix, in channels-first and channels-last layouts. This measures
whether that pays, at the shapes of the ``cpu`` preset's U-Net (batch 32; 16 and 32
channels at 32x32, 16x16 and 8x8, and the 48 -> 16 up-path convolution): forward plus
backward with respect to input and weight, the three versions timed in alternating turns
in one process (medians), so a busy machine slows all alike. The three are checked to
agree first.

    .venv/bin/python benchmarks/astro_conv_im2col.py [--repeats 15]

Writes benchmarks/results/astro_conv_im2col.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "astro_conv_im2col.json"
#: (batch, in channels, out channels, height = width) of the cpu preset's convolutions
SHAPES = [(32, 16, 16, 32), (32, 32, 32, 16), (32, 32, 32, 8), (32, 48, 16, 32)]


def _versions():
    import jax
    import jax.numpy as jnp

    def xla(x, w):  # x (B, C, H, W), w (O, C, 3, 3)
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"))

    def im2col_nchw(x, w):
        b, c, h, wd = x.shape
        xp = jnp.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        cols = jnp.stack([xp[:, :, i:i + h, j:j + wd] for i in range(3) for j in range(3)], axis=2)
        return jnp.einsum("bckhw,ock->bohw", cols, w.reshape(w.shape[0], c, 9))

    def im2col_nhwc(x, w):
        b, c, h, wd = x.shape
        xp = jnp.pad(jnp.transpose(x, (0, 2, 3, 1)), ((0, 0), (1, 1), (1, 1), (0, 0)))
        cols = jnp.concatenate([xp[:, i:i + h, j:j + wd, :] for i in range(3) for j in range(3)], axis=-1)
        return jnp.transpose(cols @ jnp.transpose(w, (2, 3, 1, 0)).reshape(9 * c, -1), (0, 3, 1, 2))

    return {"xla_conv": xla, "im2col_nchw": im2col_nchw, "im2col_nhwc": im2col_nhwc}


def measure(shape, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    b, c, o, h = shape
    x = jax.random.normal(jax.random.key(0), (b, c, h, h))
    w = 0.1 * jax.random.normal(jax.random.key(1), (o, c, 3, 3))
    versions = _versions()
    ref = versions["xla_conv"](x, w)
    for name, f in versions.items():
        err = float(jnp.max(jnp.abs(f(x, w) - ref)))
        if err > 1e-3:
            raise SystemExit(f"{name} disagrees with XLA's convolution by {err} at {shape}")
    steps = {n: jax.jit(jax.grad(lambda x, w, f=f: jnp.sum(jnp.sin(f(x, w))), argnums=(0, 1)))
             for n, f in versions.items()}
    for f in steps.values():
        jax.block_until_ready(f(x, w))
    times = {n: [] for n in steps}
    for _ in range(repeats):
        for n, f in steps.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f(x, w))
            times[n].append(time.perf_counter() - t0)
    ms = {n: 1e3 * float(np.median(v)) for n, v in times.items()}
    return dict(batch=b, in_channels=c, out_channels=o, size=h, median_ms=ms,
                xla_speed_over={n: ms[n] / ms["xla_conv"] for n in ms if n != "xla_conv"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    rows = []
    for shape in SHAPES:
        r = measure(shape, a.repeats)
        rows.append(r)
        print(f"{shape}: " + ", ".join(f"{n} {v:.2f} ms" for n, v in r["median_ms"].items())
              + "; im2col takes " + ", ".join(f"{v:.2f}x" for v in r["xla_speed_over"].values()) + " XLA's time",
              flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(benchmark="astro_conv_im2col", repeats=a.repeats, load_avg=os.getloadavg(),
                                   when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), rows=rows), indent=1) + "\n")


if __name__ == "__main__":
    main()
