"""Sharding on the engine JAX provides: meshes, named shardings, collectives, shard_map.

A :class:`~jax.sharding.Mesh` arranges devices in a named grid (here one axis,
``"data"``). A :class:`~jax.sharding.PartitionSpec` says which array axis is split over
which mesh axis (``P("data")``: rows split over the devices; ``P()``: every device holds
a full copy). A :class:`~jax.sharding.NamedSharding` binds the two. Give ``jax.jit``
sharded inputs (or ``in_shardings``/``out_shardings``) and the XLA compiler partitions
the program and inserts the collectives (all-reduce, all-gather) it needs: that is
automatic parallelism. :func:`jax.shard_map` is the explicit alternative: you write the
per-device program and the collectives yourself.

On a CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (set before JAX starts)
makes eight simulated devices, which is enough to see all of this work.

Example::

    >>> import jax.numpy as jnp
    >>> mesh = data_mesh()
    >>> x = shard_rows(jnp.arange(16.0).reshape(8, 2), mesh)
    >>> float(sum_of_squares_shard_map(x, mesh)) == float(jnp.sum(jnp.arange(16.0) ** 2))
    True
"""

from __future__ import annotations

import contextlib
import io
import re

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, Float

DATA = "data"
FORCE_DEVICES_FLAG = "--xla_force_host_platform_device_count"


def data_mesh(n_devices: int | None = None, axis: str = DATA) -> Mesh:
    """A one-axis mesh over the first ``n_devices`` devices (all of them by default).

    The axis type is ``Auto``: the compiler chooses the shardings of intermediate values
    (``jax.make_mesh`` in JAX 0.10 defaults to the newer ``Explicit`` mode instead).
    """
    devices = jax.devices()
    n = len(devices) if n_devices is None else n_devices
    if not 1 <= n <= len(devices):
        raise ValueError(f"asked for a mesh of {n} devices but JAX sees {len(devices)}; start Python with "
                         f"XLA_FLAGS={FORCE_DEVICES_FLAG}={n} to simulate more CPU devices")
    return Mesh(np.asarray(devices[:n]), (axis,), axis_types=(AxisType.Auto,))


def shard_rows(x, mesh: Mesh, axis: str = DATA):
    """Place ``x`` (an array or a pytree of arrays) with its leading axis split over ``axis``."""
    return jax.device_put(x, NamedSharding(mesh, P(axis)))


def replicate(tree, mesh: Mesh):
    """Place a full copy of ``tree`` (e.g. model parameters) on every device of ``mesh``."""
    return jax.device_put(tree, NamedSharding(mesh, P()))


def sharding_picture(x: Array, **kwargs) -> str:
    """The text drawing :func:`jax.debug.visualize_array_sharding` prints for ``x``, as a string."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        jax.debug.visualize_array_sharding(x, use_color=False, **kwargs)
    return buffer.getvalue()


def device_of_each_row(x: Array) -> list[int]:
    """For a row-sharded array, the id of the device that holds each row (a compact text view)."""
    owner = [-1] * x.shape[0]
    for shard in x.addressable_shards:
        rows = range(*shard.index[0].indices(x.shape[0]))
        for r in rows:
            owner[r] = shard.device.id
    return owner


def compiled_collectives(fn, *args) -> dict[str, int]:
    """How many of each collective XLA inserted when compiling ``jax.jit(fn)`` for these inputs.

    Example: a mean over a row-sharded array compiles to per-device partial sums and one
    ``all-reduce``.
    """
    text = jax.jit(fn).lower(*args).compile().as_text()
    names = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")
    return {name: len(re.findall(rf"= \S+ {name}(?:-start)?\(", text)) for name in names}


def sharded_matmul(x: Float[Array, "n d"], w: Float[Array, "d k"], mesh: Mesh) -> Float[Array, "n k"]:
    """``x @ w`` with ``x`` row-sharded and ``w`` replicated, the output row-sharded as well.

    ``in_shardings``/``out_shardings`` state where the data live; the compiler does the rest
    (no communication is needed here: each device multiplies its own rows).
    """
    rows, full = NamedSharding(mesh, P(DATA)), NamedSharding(mesh, P())
    return jax.jit(jnp.matmul, in_shardings=(rows, full), out_shardings=rows)(x, w)


def sharded_column_means(x: Float[Array, "n d"], mesh: Mesh) -> Float[Array, " d"]:
    """The mean of each column of a row-sharded ``x``, replicated on every device.

    Each device sums its own rows; the compiler adds one all-reduce to combine them.
    """
    rows, full = NamedSharding(mesh, P(DATA)), NamedSharding(mesh, P())
    return jax.jit(lambda a: jnp.mean(a, axis=0), in_shardings=rows, out_shardings=full)(x)


def sum_of_squares_shard_map(x: Array, mesh: Mesh) -> Float[Array, ""]:
    """``Σ x²`` written per device with :func:`jax.shard_map`: a local sum, then ``psum`` over the mesh.

    Inside the function each device sees only its own block of rows; ``jax.lax.psum`` is
    the explicit all-reduce. ``out_specs=P()`` says the result is the same on every device.
    """

    def per_device(block):
        return jax.lax.psum(jnp.sum(block**2), DATA)

    return jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=P(DATA), out_specs=P()))(x)


def global_standardise_shard_map(x: Float[Array, "n d"], mesh: Mesh) -> Float[Array, "n d"]:
    """Standardise each column with the mean and std of the *whole* array, computed per device.

    Every device needs global statistics but holds only its rows: two ``psum`` calls
    (count and sums, then squared deviations) give them, and the output stays row-sharded.
    """

    def per_device(block):
        n = jax.lax.psum(block.shape[0], DATA)
        mean = jax.lax.psum(block.sum(axis=0), DATA) / n
        var = jax.lax.psum(((block - mean) ** 2).sum(axis=0), DATA) / n
        return (block - mean) / jnp.sqrt(var)

    return jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=P(DATA), out_specs=P(DATA)))(x)
