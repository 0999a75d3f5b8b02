"""``workshop run intro``: a live tour of JAX on the participant's own hardware."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from workshop import RunContext

from .. import langevin as lv
from ..figures import langevin_figure
from ..timing import POLYNOMIAL_ROUNDS, grad_vs_finite_differences, jit_speedup, polynomial_chain, vmap_vs_loop

# (elements for the jit timing, examples for vmap, particles, Langevin steps, timing repeats)
SIZES = {
    "tiny": dict(jit_n=20_000, vmap_n=50, particles=400, steps=420, repeats=2),
    "cpu": dict(jit_n=1_000_000, vmap_n=500, particles=2000, steps=1050, repeats=5),
    "gpu": dict(jit_n=10_000_000, vmap_n=2000, particles=10_000, steps=2100, repeats=10),
    "full": dict(jit_n=50_000_000, vmap_n=5000, particles=50_000, steps=4200, repeats=10),
}


def _per_example(x):
    """A small per-example computation (a two-layer map) for the vmap comparison."""
    w = jnp.linspace(-1.0, 1.0, x.shape[0] * 32).reshape(x.shape[0], 32)
    return jnp.sum(jnp.tanh(jnp.tanh(x @ w) @ w.T))


def tour(ctx: RunContext) -> dict:
    """jit speed-up (compile time apart), vmap vs a loop, grad vs finite differences,
    and plain vs annealed Langevin on a 2-D mixture (``langevin.png``, ``tour.json``)."""
    size = SIZES[ctx.preset]
    key = jax.random.key(ctx.seed)
    ctx.log(f"devices: {jax.devices()}")

    x = jnp.linspace(0.0, 1.0, size["jit_n"])
    jt = jit_speedup(polynomial_chain, x, repeats=size["repeats"])
    ctx.log(f"[jit]  {size['jit_n']:,} elements, {POLYNOMIAL_ROUNDS} rounds of x(1-x)/2+1/4: eager {jt.eager_s * 1e3:.2f} ms, "
            f"jitted {jt.jit_s * 1e3:.2f} ms -> {jt.speedup:.1f}x faster; compiling took {jt.compile_s * 1e3:.0f} ms "
            f"once (pays off after {jt.break_even_calls:.1f} calls)")

    xs = jax.random.normal(key, (size["vmap_n"], 16))
    vt = vmap_vs_loop(_per_example, xs, repeats=size["repeats"])
    ctx.log(f"[vmap] {size['vmap_n']} examples: Python loop {vt.loop_s * 1e3:.2f} ms, vmap {vt.vmap_s * 1e3:.3f} ms "
            f"-> {vt.speedup:.0f}x faster (max difference {vt.max_abs_difference:.1e})")

    gx = jnp.linspace(-1.5, 1.5, 100)
    gc = grad_vs_finite_differences(gx, repeats=size["repeats"])
    best_h = min(gc.fd_errors, key=gc.fd_errors.get)
    ctx.log(f"[grad] Rosenbrock in {gx.shape[0]}-D (float32): jax.grad relative error {gc.grad_error:.1e}; "
            "finite differences " + ", ".join(f"h={h:g}: {e:.1e}" for h, e in gc.fd_errors.items())
            + f"; grad {gc.grad_s * 1e6:.0f} us vs finite differences {gc.fd_s * 1e6:.0f} us")

    mix = lv.default_mixture()
    c = lv.compare_samplers(jax.random.fold_in(key, 1), size["particles"], size["steps"], mix=mix)
    png = ctx.path("langevin.png")
    langevin_figure(mix, c, png)
    ctx.log(f"[langevin] true weights {_list(c.true_weights)}; plain {_list(c.plain_weights)} "
            f"(SW2 {float(c.plain_distance):.2f}); annealed {_list(c.annealed_weights)} "
            f"(SW2 {float(c.annealed_distance):.2f}); an exact sample of the same size: SW2 {float(c.exact_distance):.2f}")
    ctx.log(f"[langevin] figure: {png}")

    summary = {
        "preset": ctx.preset,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "jit": {"elements": size["jit_n"], "eager_s": jt.eager_s, "jit_s": jt.jit_s,
                "compile_s": jt.compile_s, "speedup": jt.speedup},
        "vmap": {"examples": size["vmap_n"], "loop_s": vt.loop_s, "vmap_s": vt.vmap_s, "speedup": vt.speedup,
                 "max_abs_difference": vt.max_abs_difference},
        "grad": {"dimension": int(gx.shape[0]), "grad_relative_error": gc.grad_error,
                 "finite_difference_relative_errors": {str(h): e for h, e in gc.fd_errors.items()},
                 "best_h": best_h, "grad_s": gc.grad_s, "finite_differences_s": gc.fd_s},
        "langevin": {"particles": size["particles"], "steps": size["steps"],
                     "true_weights": _list(c.true_weights), "plain_weights": _list(c.plain_weights),
                     "annealed_weights": _list(c.annealed_weights),
                     "plain_sliced_w2": float(c.plain_distance), "annealed_sliced_w2": float(c.annealed_distance),
                     "exact_sliced_w2": float(c.exact_distance), "figure": str(png)},
    }
    ctx.save_json("tour.json", summary)
    return {"jit_speedup": jt.speedup, "compile_s": jt.compile_s, "vmap_speedup": vt.speedup,
            "grad_relative_error": gc.grad_error, "plain_sliced_w2": float(c.plain_distance),
            "annealed_sliced_w2": float(c.annealed_distance), "figure": str(png)}


def _list(w) -> list[float]:
    return [round(float(v), 4) for v in w]
