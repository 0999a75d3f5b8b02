"""Checks for lessons 01-02: meshes and shardings, shard_map and more than one process.

They run on whatever devices the notebook's kernel has (the lessons start it with eight
simulated CPU devices) and compare with the reference code of this package.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from workshop.checking import CheckFailed, assert_close, call, describe, expect

__all__ = ["shard_batch", "sum_of_squares"]


def _mesh():
    from ..sharding import data_mesh

    return data_mesh()


def shard_batch(candidate) -> str:
    """``shard_batch(batch, mesh)`` returns the batch on the mesh, rows split over ``"data"``."""
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = _mesh()
    n = mesh.size
    batch = jnp.arange(2 * n * 3 * 4, dtype=jnp.float32).reshape(2 * n, 3, 4)
    got = call(candidate, batch, mesh, what=f"a batch of shape {batch.shape} and a {n}-device mesh")
    expect(isinstance(got, jax.Array), f"expected a jax.Array, got {describe(got)}",
           hint="use jax.device_put(batch, NamedSharding(mesh, P('data')))")
    assert_close(got, batch, what="the sharded batch", hint="sharding moves data, it must not change any value")
    wanted = NamedSharding(mesh, P("data"))
    if not got.sharding.is_equivalent_to(wanted, batch.ndim):
        shapes = sorted({tuple(s.data.shape) for s in got.addressable_shards})
        raise CheckFailed(
            f"each device should hold {2} of the {2 * n} rows; the pieces on the devices have shape(s) {shapes}",
            hint="split the leading (batch) axis: PartitionSpec('data'); P() copies everything to every device, "
                 "and P(None, 'data') splits the second axis",
        )
    spec = getattr(got.sharding, "spec", None)
    expect(spec is not None and len(spec) > 0 and spec[0] in ("data", ("data",)),
           f"the sharding is {got.sharding}; expected a NamedSharding with PartitionSpec('data')",
           hint="NamedSharding(mesh, P('data')) names the mesh axis the rows are split over")
    return f"rows split over {n} device(s)"


def sum_of_squares(candidate) -> str:
    """``sum_of_squares(x, mesh)`` computes ``Σ x²`` with ``jax.shard_map`` and ``psum``.

    Tested on two sizes of ``x`` with a non-zero mean, so that a sum of ``x`` (not of its
    squares), a mean, a ``pmean`` and one device's part all give numbers of their own.
    """
    from ..sharding import shard_rows

    mesh = _mesh()
    n = mesh.size
    for rows, seed in ((4 * n, 0), (2 * n, 1)):
        x = 0.5 + jax.random.normal(jax.random.key(seed), (rows, 5))
        xs = shard_rows(x, mesh)
        got = call(candidate, xs, mesh, what=f"x of shape {x.shape} split over {n} device(s)")
        got_arr = jnp.asarray(got)
        if got_arr.shape == (n,) and n > 1:
            raise CheckFailed("you returned one partial sum per device, not the global sum",
                              hint="add them up across devices inside the function with jax.lax.psum(local, 'data') "
                                   "and use out_specs=P()")
        total = jnp.sum(x**2)
        first = jnp.sum(x[: rows // n] ** 2)
        mistakes = {
            "it is the sum of x, not of x²": (jnp.sum(x), "square first: jnp.sum(local ** 2), then psum"),
            "it is a mean, not a sum": (jnp.mean(x**2), "use jnp.sum on each device, not jnp.mean"),
            "it is the mean over devices (pmean), not the sum (psum)":
                (total / n, "combine the partial sums with jax.lax.psum, which adds; pmean averages"),
            "it squares sums instead of summing squares":
                (jnp.sum(x) ** 2, "square each element before summing: jnp.sum(local ** 2)"),
        }
        if n > 1:
            mistakes["it squares each device's sum instead of summing squares"] = (
                jnp.sum(jnp.sum(x.reshape(n, -1), axis=1) ** 2),
                "square each element before summing: jnp.sum(local ** 2), then psum")
        if n > 1:
            mistakes["it is only the first device's part: the partial sums were not added"] = (
                first, "inside the shard_map add the partial sums with jax.lax.psum(local, 'data'); "
                       "out_specs=P() then returns that one global value")
        assert_close(got_arr, total, what=f"the sum of squares of x with shape {x.shape}", rtol=1e-4,
                     hint="each device sums the squares of its own rows; jax.lax.psum adds those partial sums",
                     mistakes=mistakes)
    text = str(jax.make_jaxpr(lambda a: candidate(a, mesh))(xs))
    expect("shard_map" in text, "the result is right, but it was not computed with jax.shard_map",
           hint="wrap a per-device function: jax.shard_map(f, mesh=mesh, in_specs=P('data'), out_specs=P())")
    expect("psum" in text, "the shard_map has no psum: with more than one device each would return only its own part",
           hint="inside the per-device function, combine the local sums with jax.lax.psum(local, 'data')")
    return f"checked on {n} device(s); shard_map and psum are in the program"
