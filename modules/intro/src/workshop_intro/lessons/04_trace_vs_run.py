# %% [markdown]
# # Trace time vs run time
#
# When a jitted function is first called, JAX runs your Python **once** with *tracers*
# in place of the arrays: abstract values that know their shape and dtype but not their
# numbers. What it records (a "jaxpr") is compiled and then run, again and again,
# **without your Python**. Most surprises in JAX come from mixing up the two times:
#
# * **trace time**: Python runs; shapes, dtypes and static arguments are known; values
#   are not;
# * **run time**: compiled code runs on the device; Python side effects do not happen.

# %%
import jax
import jax.numpy as jnp

from workshop import check
from workshop.hardware import current_preset

preset = current_preset()
print("preset:", preset)

# %% [markdown]
# ## Python print vs jax.debug.print

# %%
@jax.jit
def f(x):
    print("Python print, at trace time: x is", x)
    jax.debug.print("jax.debug.print, at run time: x is {x}", x=x)
    return 2 * x


print("first call:")
f(jnp.array([1.0, 2.0]))
print("second call, same shape (no trace, no Python print):")
f(jnp.array([3.0, 4.0]))
print("third call, new shape (traced again):")
_ = f(jnp.array([1.0, 2.0, 3.0]))

# %% [markdown]
# `jax.make_jaxpr` shows what tracing recorded:

# %%
print(jax.make_jaxpr(lambda x: jnp.sin(x) * 2 + 1)(1.0))

# %% [markdown]
# ## Retracing: new shapes, new static values
#
# A jitted function is traced (and compiled) again for every new input shape or dtype,
# and for every new value of a **static** argument. Static arguments are ordinary Python
# values known at trace time; you need them when a value decides *the structure* of the
# computation, such as a loop length or an array shape. Counting traces with a Python
# side effect (which only runs at trace time):

# %%
traces = []


def power(x, n):
    traces.append((x.shape, n))  # a side effect: runs at trace time only
    result = jnp.ones_like(x)
    for _ in range(n):  # unrolled at trace time: n must be a Python int
        result = result * x
    return result


try:
    jax.jit(power)(jnp.ones(3), 3)
except jax.errors.TracerIntegerConversionError as err:
    print("TracerIntegerConversionError:", str(err).splitlines()[0][:110])

# %% [markdown]
# ## Exercise 1: mark an argument static
#
# Write `jit_with_static_n(fn)` returning `fn` jitted with its argument `n` marked static
# (`static_argnames`). The check counts the traces: one per new value of `n`, none for
# new values of `x`.

# %%
def jit_with_static_n(fn):
    # BEGIN SOLUTION: return fn jitted, with its argument n marked static
    return jax.jit(fn, static_argnames="n")
    # END SOLUTION


# %%
check("intro.power_static", jit_with_static_n)

# %%
traces.clear()
power_jit = jit_with_static_n(power)
for x, n in [(jnp.ones(3), 2), (jnp.zeros(3), 2), (jnp.ones(3), 5), (jnp.ones(4), 2)]:
    power_jit(x, n)
print("4 calls, traces:", traces)

# %% [markdown]
# ## Control flow on traced values
#
# A Python `if x > 0:` needs a real `True`/`False`; under `jit` (or `vmap`, `grad`) `x` is
# a tracer with no value, and JAX raises `TracerBoolConversionError`. The structured
# alternatives are traced too:
#
# * `jnp.where(cond, a, b)`: computes both branches, picks element-wise (cheap branches);
# * `jax.lax.cond(pred, true_fun, false_fun, x)`: runs one branch (under `vmap` both);
# * `jax.lax.while_loop(cond_fun, body_fun, init)`: a loop whose length depends on values;
# * `jax.lax.fori_loop`, `jax.lax.scan`: loops of known length.

# %%
@jax.jit
def relu_python(x):
    if x > 0:
        return x
    return 0.0


try:
    relu_python(1.0)
except jax.errors.TracerBoolConversionError as err:
    print("TracerBoolConversionError:", str(err).splitlines()[0])
print(jax.jit(lambda x: jax.lax.cond(x > 0, lambda x: x, lambda x: 0.0 * x, x))(-2.0))

# %% [markdown]
# ## Exercise 2: a piecewise function that survives jit, vmap and grad
#
# Write `piecewise(x)` returning $x^2$ for $x > 1$ and $2x - 1$ otherwise (the two
# pieces meet smoothly at $x = 1$). The check runs it under `jax.jit`, `jax.vmap` and
# `jax.grad`, so no Python `if` on `x`.

# %%
def piecewise(x):
    # BEGIN SOLUTION: choose between x ** 2 and 2 * x - 1 without a Python if
    return jnp.where(x > 1.0, x**2, 2.0 * x - 1.0)
    # END SOLUTION


# %%
check("intro.piecewise", piecewise)

# %% [markdown]
# ## Exercise 3: Newton's square root with lax.while_loop
#
# Newton's method for $\sqrt a$ iterates $x \leftarrow (x + a/x)/2$. Write
# `newton_sqrt(a)` that starts from $x = a$ and iterates **while**
# $|x^2 - a| > 10^{-6} a$, with `jax.lax.while_loop(cond_fun, body_fun, init)`: the number
# of iterations depends on the value of `a`, which a Python `while` cannot see under `jit`.

# %%
def newton_sqrt(a):
    # BEGIN SOLUTION: Newton steps x -> (x + a / x) / 2 from x = a inside jax.lax.while_loop, while |x*x - a| > 1e-6 * a
    def keep_going(x):
        return jnp.abs(x * x - a) > 1e-6 * a

    def newton_step(x):
        return 0.5 * (x + a / x)

    return jax.lax.while_loop(keep_going, newton_step, a)
    # END SOLUTION


# %%
check("intro.newton_sqrt", newton_sqrt)

# %% [markdown]
# ## Side effects
#
# Inside `jit`, only the returned arrays come out. Appending to a list, writing a file,
# mutating a global or drawing from `np.random` happens once, at trace time, with
# tracers; on later calls nothing happens at all. Return what you need, and pass random
# keys in.

# %%
log = []


@jax.jit
def noisy_double(x):
    log.append(x)  # a tracer, captured at trace time
    return 2 * x


for v in (1.0, 2.0, 3.0):
    noisy_double(v)
print(f"3 calls, {len(log)} log entry:", log)

# %% [markdown]
# ## Finding NaNs
#
# A NaN in a gradient is a classic: $\frac{d}{dx}\sqrt{x}$ is infinite at 0, and the chain
# rule multiplies it by 0, giving NaN. `jnp.where` does **not** save you: `grad`
# differentiates both branches, and `0 * NaN` is NaN. Two tools find the culprit:
#
# * `jax.config.update("jax_debug_nans", True)`: raise at the first operation that
#   produces a NaN (slow; for debugging);
# * `jax.debug.breakpoint()`: stop inside a traced function at run time and inspect
#   values, like `pdb` (interactive, so not executed here).

# %%
def naive_norm(x):
    return jnp.sqrt(jnp.sum(x**2))


print("gradient of |x| at 0:", jax.grad(naive_norm)(jnp.zeros(2)))
jax.config.update("jax_debug_nans", True)
try:
    jax.grad(naive_norm)(jnp.zeros(2))
except FloatingPointError as err:
    print("jax_debug_nans:", str(err).splitlines()[0][:100])
finally:
    jax.config.update("jax_debug_nans", False)

# %% [markdown]
# ## Exercise 4: a norm with a finite gradient at zero
#
# Write `safe_norm(x)` returning $|x|$ whose gradient is $x/|x|$ away from zero and
# **0** (not NaN) at $x = 0$. The trick is the "double where": replace the input of
# `sqrt` by a harmless value where it would be 0, then choose the output with a second
# `jnp.where`.

# %%
def safe_norm(x):
    # BEGIN SOLUTION: sqrt(sum(x ** 2)) with the double-where trick, so that the gradient at 0 is 0
    s = jnp.sum(x**2)
    safe = jnp.where(s > 0, s, 1.0)
    return jnp.where(s > 0, jnp.sqrt(safe), 0.0)
    # END SOLUTION


# %%
check("intro.safe_norm", safe_norm)

# %% [markdown]
# ## Devices
#
# `jax.devices()` lists what JAX can compute on; arrays go to the default device, and
# `jax.device_put` moves them explicitly. On a laptop that is one CPU device; with a GPU,
# the same code runs there unchanged.

# %%
print("backend:", jax.default_backend(), "| devices:", jax.devices())
y = jax.device_put(jnp.arange(4.0), jax.devices()[0])
print("y is on", y.devices())
