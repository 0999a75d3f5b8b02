# %% [markdown]
# # JAX's NumPy API: what carries over and what does not
#
# `jax.numpy` (imported as `jnp`) mirrors NumPy: the same function names, broadcasting,
# indexing and dtypes. Most NumPy code runs unchanged with `np` replaced by `jnp`. Four
# things differ, and every one of them is there so that JAX can *transform* your
# functions (compile, vectorise, differentiate them) in the next lessons:
#
# 1. **arrays are immutable**: no `x[i] = v`; write `x = x.at[i].set(v)`;
# 2. **float32 by default**, not float64;
# 3. **random numbers need an explicit key**, which you split, instead of a hidden
#    global state;
# 4. **arrays live on a device** (CPU, GPU, TPU) and operations run there asynchronously.

# %%
import jax
import jax.numpy as jnp
import numpy as np

from workshop import check
from workshop.hardware import current_preset

preset = current_preset()
print("preset:", preset, "| JAX", jax.__version__, "| default backend:", jax.default_backend())

# %% [markdown]
# ## What carries over
#
# Creation, arithmetic, broadcasting, reductions, linear algebra, fancy indexing:

# %%
x_np = np.linspace(0.0, 1.0, 5)
x = jnp.linspace(0.0, 1.0, 5)
print(np.sin(x_np) ** 2 + np.cos(x_np) ** 2)
print(jnp.sin(x) ** 2 + jnp.cos(x) ** 2)
a = jnp.arange(12.0).reshape(3, 4)
print(a.mean(axis=0), a[:, ::2], a[a > 5], jnp.linalg.norm(a))

# %% [markdown]
# NumPy arrays go in, JAX arrays come out; `np.asarray` brings a JAX array back to NumPy
# (for plotting or SciPy).

# %%
y = jnp.sqrt(x_np)  # NumPy in, JAX out
print(type(y).__name__, type(np.asarray(y)).__name__)

# %% [markdown]
# ## 1. Arrays are immutable: `.at[]`
#
# In-place assignment would make a function's result depend on *when* something was
# changed, which JAX cannot trace, differentiate or compile. Instead, `x.at[idx]`
# offers `.set`, `.add`, `.multiply`, `.min`, `.max`, `.get`: each returns a **new**
# array (under `jit`, XLA reuses the buffer when it can, so this is not slow).

# %%
v = jnp.zeros(5)
try:
    v[0] = 1.0
except TypeError as err:
    print("TypeError:", str(err).splitlines()[0][:100])
w = v.at[0].set(1.0).at[1:3].add(2.0)
print("v is unchanged:", v, "| w:", w)

# %% [markdown]
# ## Exercise 1: set a diagonal without changing the input
#
# Write `set_diagonal(a, value)` returning a **copy** of the square matrix `a` whose
# diagonal is `value`. It must accept NumPy arrays as well as JAX arrays, must not
# change its input, and must work under `jax.jit`. Hint: index with two arrays,
# `a.at[i, i]`, where `i = jnp.arange(n)`.

# %%
def set_diagonal(a, value):
    # BEGIN SOLUTION: return a copy of a (possibly a NumPy array) with its diagonal set to value, using .at[]
    a = jnp.asarray(a)
    i = jnp.arange(a.shape[0])
    return a.at[i, i].set(value)
    # END SOLUTION


# %%
check("intro.set_diagonal", set_diagonal)

# %% [markdown]
# ## 2. float32 by default
#
# Accelerators are fast in 32 bits, so JAX computes in float32 unless you ask for
# 64 bits (`jax.config.update("jax_enable_x64", True)` at start-up). float32 has about
# 7 significant digits: enough for neural networks, sometimes not for ill-conditioned
# science. Compare a sum that loses digits:

# %%
print("NumPy dtype:", np.linspace(0, 1, 3).dtype, "| JAX dtype:", jnp.linspace(0, 1, 3).dtype)
big = 1e8
print("float64: (1e8 + 1) - 1e8 =", (np.float64(big) + 1.0) - np.float64(big))
print("float32: (1e8 + 1) - 1e8 =", (jnp.float32(big) + 1.0) - jnp.float32(big))
eps32 = float(jnp.finfo(jnp.float32).eps)
print(f"float32 machine epsilon: {eps32:.2e}  (float64: {np.finfo(np.float64).eps:.2e})")

# %% [markdown]
# ## 3. Explicit random keys
#
# `np.random` keeps a hidden global state: every call changes it. That makes a
# function's output depend on what ran before, which breaks `jit` and `vmap` and makes
# parallel code irreproducible. JAX instead passes the state explicitly: a **key**. The
# same key always gives the same numbers; to get new numbers you **split** a key into
# new ones and never use the old key again.

# %%
key = jax.random.key(0)
print(jax.random.normal(key, (3,)))
print(jax.random.normal(key, (3,)), "<- same key, same numbers")
key, sub = jax.random.split(key)
print(jax.random.normal(sub, (3,)), "<- a fresh subkey")
keys = jax.random.split(key, 4)  # many at once, e.g. one per particle or per step
print(keys.shape)

# %% [markdown]
# ## Exercise 2: two independent samples from one key
#
# Write `two_normals(key, n)` returning two arrays `x, y` of `n` independent standard
# normal draws each. The typical mistake is to draw both with `key`: they come out
# identical. Split the key first.

# %%
def two_normals(key, n):
    # BEGIN SOLUTION: split the key, then draw x and y with different subkeys
    k1, k2 = jax.random.split(key)
    x = jax.random.normal(k1, (n,))
    y = jax.random.normal(k2, (n,))
    return x, y
    # END SOLUTION


# %%
check("intro.two_normals", two_normals)

# %% [markdown]
# ## 4. Device arrays and asynchronous dispatch
#
# A JAX array lives on a device. Operations are **dispatched asynchronously**: Python
# gets the array back before the device has finished computing it, and waits only when
# you look at the values. Timing JAX code therefore needs `.block_until_ready()`
# (lesson 2 does this).

# %%
print("devices:", jax.devices())
z = jnp.ones((3, 3))
print("z lives on:", z.devices())
n = {"tiny": 200, "cpu": 2000, "gpu": 4000, "full": 8000}[preset]
m = jnp.ones((n, n))
product = m @ m  # returns at once: the work is queued
product.block_until_ready()  # now it is done
print(f"{n}x{n} matmul done; first entry {float(product[0, 0]):.0f} (= n)")

# %% [markdown]
# ## Summary
#
# | NumPy | JAX |
# |---|---|
# | `x[i] = v` | `x = x.at[i].set(v)` |
# | float64 by default | float32 by default |
# | `np.random.normal(size=n)` (global state) | `jax.random.normal(key, (n,))`, split keys |
# | runs at once on the CPU | runs on a device, asynchronously: `block_until_ready()` |
