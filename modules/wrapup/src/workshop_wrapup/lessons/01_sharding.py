# %% [markdown]
# # Meshes, shardings and automatic parallelism
#
# Everything so far ran on one device. This lesson shows how the *same* JAX code runs
# on several: you say **where the data live**, and the XLA compiler partitions the
# program and inserts the communication. It follows the sharding chapters of the JAX
# scaling book ("How to Scale Your Model") and JAX's tutorial on distributed arrays.
#
# We have no cluster here, so we ask XLA to pretend this CPU is **8 devices**. That
# setting is read once, when JAX starts its CPU backend, so the first code cell sets
# `XLA_FLAGS` *before* importing JAX. (If JAX was already imported in this kernel,
# restart the kernel and run from the top.) The 8 simulated devices share this
# machine's cores: they show the mechanics and give identical results, not a speed-up.

# %%
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from workshop import check
from workshop.hardware import current_preset

preset = current_preset()
print(f"preset {preset}; JAX {jax.__version__} sees {jax.device_count()} devices:", jax.devices())

# %% [markdown]
# ## A mesh: devices in a named grid
#
# A `Mesh` arranges devices in an n-dimensional grid and names each axis. For data
# parallelism one axis is enough; we call it `"data"`. (A second axis, e.g. `"model"`,
# would split the weights too: that is model or tensor parallelism.)
#
# `AxisType.Auto` lets the compiler choose how intermediate values are sharded. JAX
# also has an `Explicit` mode (the default of `jax.make_mesh` in JAX 0.10) where
# shardings become part of the array types; the scaling book discusses both.

# %%
mesh = Mesh(np.array(jax.devices()), ("data",), axis_types=(AxisType.Auto,))
print(mesh)

# %% [markdown]
# ## PartitionSpec and NamedSharding: where an array lives
#
# `P("data")` says: split axis 0 over the mesh axis `"data"`; other axes stay whole.
# `P()` says: every device holds a full copy (replicated). A `NamedSharding` binds a
# spec to a mesh; `jax.device_put` moves an array there.
# `jax.debug.visualize_array_sharding` draws which device holds which block.

# %%
x = jnp.arange(16 * 4, dtype=jnp.float32).reshape(16, 4)
rows = jax.device_put(x, NamedSharding(mesh, P("data")))
jax.debug.visualize_array_sharding(rows)
print("one device holds", rows.addressable_shards[0].data.shape, "of", rows.shape)

# %%
copies = jax.device_put(x, NamedSharding(mesh, P()))
jax.debug.visualize_array_sharding(copies)

grid = Mesh(np.array(jax.devices()).reshape(4, 2), ("data", "model"), axis_types=(AxisType.Auto, AxisType.Auto))
tiles = jax.device_put(x, NamedSharding(grid, P("data", "model")))
jax.debug.visualize_array_sharding(tiles)

# %% [markdown]
# ## Exercise 1: shard a batch
#
# Write `shard_batch(batch, mesh)` that returns `batch` placed on `mesh` with its
# leading (batch) axis split over the `"data"` axis. The values must not change.

# %%
def shard_batch(batch, mesh):
    # BEGIN SOLUTION: return jax.device_put(batch, NamedSharding(mesh, P("data")))
    return jax.device_put(batch, NamedSharding(mesh, P("data")))
    # END SOLUTION


# %%
check("wrapup.shard_batch", shard_batch)

# %% [markdown]
# ## jit partitions the program and inserts the collectives
#
# Hand `jax.jit` a sharded array (or give it `in_shardings` / `out_shardings`) and the
# compiler partitions the computation. A column mean over row-sharded data becomes a
# partial sum on each device plus **one all-reduce** to combine them. We can read that
# in the compiled program:

# %%
from workshop_wrapup.sharding import compiled_collectives

column_means = jax.jit(lambda a: a.mean(axis=0), out_shardings=NamedSharding(mesh, P()))
m = column_means(rows)
print("same numbers as on one device:", bool(jnp.allclose(m, x.mean(axis=0))))
print("collectives XLA inserted:", compiled_collectives(lambda a: a.mean(axis=0), rows))
print("x @ w with x row-sharded needs none:", compiled_collectives(lambda a, w: a @ w, rows, jnp.ones((4, 3))))

# %% [markdown]
# ## Data-parallel training with the code you already have
#
# Data parallelism: a full copy of the model on every device, the batch split over
# them. The training step below is ordinary single-device Equinox + Optax code
# (`workshop_wrapup.data_parallel`). We only *place* the inputs differently, and the
# gradient mean over the sharded batch makes XLA insert the all-reduce. The losses on
# one device and on eight agree to float rounding.

# %%
from workshop_wrapup import data_parallel as dp
from workshop_wrapup.sharding import data_mesh

steps = {"tiny": 3, "cpu": 6, "gpu": 10, "full": 10}[preset]
device_counts = (1, 8) if preset == "tiny" else (1, 2, 4, 8)  # each count compiles the step once more
images = dp.galaxy_batch(jax.random.key(0), 16, size=16)
losses = {}
for n in device_counts:
    model = dp.TinyDenoiser(channels=1, width=8, key=jax.random.key(1))
    _, losses[n], seconds = dp.train(model, images, steps=steps, mesh=data_mesh(n), key=jax.random.key(2))
    print(f"{n} device(s): losses {np.round(losses[n], 6)}  ({seconds:.2f} s for {steps - 1} timed steps)")
print("largest difference from one device:", max(abs(losses[n][-1] - losses[1][-1]) for n in losses))

# %% [markdown]
# On 8 simulated devices sharing a couple of cores, more devices is not faster (the
# timings above say so); on 8 real GPUs each step would do 1/8 of the work per device
# plus one all-reduce. `workshop run wrapup sharding` measures throughput against the
# device count and draws it, for this model and for the astro module's U-Net.
