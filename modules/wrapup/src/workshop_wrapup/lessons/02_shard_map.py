# %% [markdown]
# # shard_map, and more than one process
#
# With `jit` you describe the whole computation and the compiler decides what each
# device does. Sometimes you want to write the **per-device program yourself**: a
# custom communication pattern, a kernel that must see exactly one block, or just to
# know what happens. That is `jax.shard_map`: the function you give it runs on every
# device with that device's block of the inputs, and you call collectives such as
# `jax.lax.psum` (sum over devices: an all-reduce) yourself.
#
# As in the previous lesson, the first cell asks for 8 simulated CPU devices *before*
# JAX is imported (restart the kernel if JAX is already loaded).

# %%
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from workshop import check
from workshop.hardware import current_preset
from workshop_wrapup.sharding import data_mesh

preset = current_preset()
mesh = data_mesh()  # all devices on one axis called "data"
print(f"preset {preset}; {jax.device_count()} devices; mesh {mesh}")

# %% [markdown]
# ## Inside shard_map, shapes are per device
#
# `in_specs=P("data")` hands each device its rows; `out_specs` says how the per-device
# results form the global output. Here each device reports the shape it sees and its
# own sum; with `out_specs=P("data")` the 8 partial sums come back as a vector.

# %%
x = jax.device_put(jnp.arange(32.0).reshape(16, 2), NamedSharding(mesh, P("data")))


def local_sums(block):
    print("inside shard_map, one block has shape", block.shape)  # printed once, while tracing
    return jnp.sum(block, keepdims=True).reshape(1)


partial = jax.shard_map(local_sums, mesh=mesh, in_specs=P("data"), out_specs=P("data"))(x)
print("partial sums, one per device:", partial, "| their total:", partial.sum(), "=", x.sum())

# %% [markdown]
# ## Exercise 2: a global reduction with shard_map
#
# Write `sum_of_squares(x, mesh)` that returns `Σ x²` over the whole row-sharded array
# `x`, as a scalar, **computed with `jax.shard_map`**: each device squares and sums its
# own block, then `jax.lax.psum(local, "data")` adds the partial sums over the mesh
# axis, so every device ends up with the same total; `out_specs=P()` says so.

# %%
def sum_of_squares(x, mesh):
    # BEGIN SOLUTION: define per_device(block) returning jax.lax.psum(jnp.sum(block**2), "data") and apply it with jax.shard_map(..., mesh=mesh, in_specs=P("data"), out_specs=P())
    def per_device(block):
        return jax.lax.psum(jnp.sum(block**2), "data")

    return jax.shard_map(per_device, mesh=mesh, in_specs=P("data"), out_specs=P())(x)
    # END SOLUTION


# %%
check("wrapup.sum_of_squares", sum_of_squares)

# %% [markdown]
# Statistics that need the whole data set work the same way. To standardise every
# column with the *global* mean and standard deviation, each device needs sums over
# all rows: two `psum`s give them, and the output stays row-sharded:

# %%
from workshop_wrapup.sharding import global_standardise_shard_map

data = jax.random.normal(jax.random.key(0), (64, 3)) * jnp.array([1.0, 5.0, 0.1]) + 2.0
z = global_standardise_shard_map(jax.device_put(data, NamedSharding(mesh, P("data"))), mesh)
print("global mean after:", np.round(z.mean(axis=0), 6), "global std after:", np.round(z.std(axis=0), 6))
print("same as on one device:", bool(jnp.allclose(z, (data - data.mean(0)) / data.std(0), atol=1e-5)))

# %% [markdown]
# ## Beyond one machine: `jax.distributed`
#
# On a cluster you start the **same program** once per host (with Slurm, MPI, Kubernetes
# or by hand). Each process first calls
#
# ```python
# jax.distributed.initialize(coordinator_address="10.0.0.1:1234", num_processes=2, process_id=i)
# ```
#
# Process 0 runs a small coordinator service at that address; the others connect to
# it, and they agree on the list of all devices. After that:
#
# * `jax.devices()` lists **every** device of every process, `jax.local_devices()` only
#   this process's, and `jax.process_index()` / `jax.process_count()` say who is who;
# * a `Mesh` can span all of them, and each process contributes **only its own rows**
#   to a global array (`jax.make_array_from_process_local_data`);
# * a jitted computation on global arrays runs on all processes together; the
#   collectives travel over the network (NCCL between GPUs; Gloo over TCP on CPUs).
#
# Below, two real processes on this computer do exactly that over 127.0.0.1, each with
# 2 CPU devices (a 4-device mesh), each holding half of a data set, and compare the
# global column means and sum of squares they compute together with the answer from a
# single process. The worker is `workshop_wrapup/multihost_worker.py`: read it, it is
# short.

# %%
from workshop_wrapup.multihost import run_multiprocess_demo

result = run_multiprocess_demo(num_processes=2, devices_per_process=2, timeout=180)
for p in result["processes"]:
    print(f"process {p['process_id']}: local devices {p['local_devices']} of {p['global_devices']}, "
          f"{p['local_rows']} local rows, global sum of squares {p['sum_of_squares']:.4f}")
print(f"one process, NumPy: {result['reference']['sum_of_squares']:.4f}; largest difference "
      f"{result['max_difference']:.1e}; match: {result['matches_single_process']}")
