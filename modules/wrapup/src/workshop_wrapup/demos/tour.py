"""The default wrap-up demo, ``workshop run wrapup`` (``tour``).

It runs the four parts in order: sharding on simulated devices, two JAX processes
computing together (:mod:`.parallel`), the Optimistix + NumPyro Sérsic fit and the Lineax
deconvolution (:mod:`.ecosystem`), then lists further reading. Each part is also a demo
of its own.
"""

from __future__ import annotations

from workshop import RunContext

from .ecosystem import deconvolution, sersic
from .parallel import multihost, sharding

__all__ = ["FURTHER_READING", "tour"]

FURTHER_READING = [
    ("How to Scale Your Model (the JAX scaling book): sharding, collectives, parallelism", "https://jax-ml.github.io/scaling-book/"),
    ("JAX: Distributed arrays and automatic parallelization", "https://docs.jax.dev/en/latest/notebooks/Distributed_arrays_and_automatic_parallelization.html"),
    ("JAX: Manual parallelism with shard_map", "https://docs.jax.dev/en/latest/notebooks/shard_map.html"),
    ("JAX: Multi-process environments", "https://docs.jax.dev/en/latest/multi_process.html"),
    ("Awesome Equinox (the Equinox ecosystem list)", "https://docs.kidger.site/equinox/awesome-list/"),
    ("Awesome JAX (a longer list of JAX projects)", "https://github.com/lockwo/awesome-jax"),
    ("Optimistix", "https://docs.kidger.site/optimistix/"),
    ("Lineax", "https://docs.kidger.site/lineax/"),
    ("NumPyro", "https://num.pyro.ai/"),
]


def tour(ctx: RunContext) -> dict:
    """Everything: sharding, two processes, Sérsic fit and posterior, deconvolution, further reading."""
    results = {}
    for title, part in (("1/4 Sharding on simulated devices", sharding), ("2/4 Two processes, one computation", multihost),
                        ("3/4 Optimistix and NumPyro: a Sérsic galaxy", sersic),
                        ("4/4 Lineax: deconvolution", deconvolution)):
        ctx.log(f"\n== {title} ==")
        results.update({f"{part.__name__}.{k}": v for k, v in part(ctx).items()})
    ctx.log("\nFurther reading:")
    for text, url in FURTHER_READING:
        ctx.log(f"  - {text}: {url}")
    (ctx.path("further_reading.md")).write_text("".join(f"- [{t}]({u})\n" for t, u in FURTHER_READING))
    return results
