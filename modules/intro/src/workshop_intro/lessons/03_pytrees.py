# %% [markdown]
# # Pytrees: parameters as nested containers
#
# Real models have many parameter arrays. JAX handles them as **pytrees**: any nesting
# of lists, tuples, dicts (and registered classes) with arrays at the leaves. Every
# transform accepts pytrees: `jax.grad` of a loss in a dict of parameters returns a
# dict of gradients with the same structure, `jax.jit` and `jax.vmap` take and return
# pytrees. `jax.tree.map(f, tree, *others)` applies `f` leaf by leaf.

# %%
import equinox as eqx
import jax
import jax.numpy as jnp

from workshop import check
from workshop.hardware import current_preset

preset = current_preset()
print("preset:", preset)

# %%
params = {
    "layer1": {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)},
    "layer2": (jnp.ones((3, 1)), jnp.zeros(1)),
}
print("leaves:", [leaf.shape for leaf in jax.tree.leaves(params)])
print("structure:", jax.tree.structure(params))
print("sizes:", jax.tree.map(lambda p: p.size, params))

# %% [markdown]
# `jax.grad` of a function of a pytree returns a pytree of the same structure:

# %%
def model(params, x):
    h = jnp.tanh(x @ params["layer1"]["w"] + params["layer1"]["b"])
    w2, b2 = params["layer2"]
    return (h @ w2 + b2)[0]


def loss(params, x, y):
    return (model(params, x) - y) ** 2


grads = jax.grad(loss)(params, jnp.array([0.5, -1.0]), 2.0)
print(jax.tree.map(jnp.shape, grads))

# %% [markdown]
# ## Exercise 1: one gradient-descent step on a pytree
#
# Write `sgd_step(params, grads, lr)` returning new parameters $p - \mathrm{lr}\cdot g$
# for every leaf, with **the same structure** as `params`. Do not change `params` itself:
# build a new tree with `jax.tree.map`, which maps over several trees in step.

# %%
def sgd_step(params, grads, lr):
    # BEGIN SOLUTION: return a new tree with p - lr * g at every leaf (jax.tree.map walks both trees together)
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)
    # END SOLUTION


# %%
check("intro.sgd_step", sgd_step)

# %%
x_train = jnp.array([0.5, -1.0])
for step in range(3):
    value, grads = jax.value_and_grad(loss)(params, x_train, 2.0)
    params = sgd_step(params, grads, 0.1)
    print(f"step {step}: loss {float(value):.4f}")

# %% [markdown]
# ## Custom nodes
#
# Your own classes can be pytrees too: tell JAX how to take them apart (`flatten`: the
# children and some static auxiliary data) and put them back (`unflatten`).

# %%
@jax.tree_util.register_pytree_node_class
class Gaussian:
    def __init__(self, mean, log_std, name="gaussian"):
        self.mean, self.log_std, self.name = mean, log_std, name

    def tree_flatten(self):
        return (self.mean, self.log_std), self.name  # children, static auxiliary data

    @classmethod
    def tree_unflatten(cls, name, children):
        return cls(*children, name=name)

    def log_prob(self, x):
        return jnp.sum(-0.5 * ((x - self.mean) / jnp.exp(self.log_std)) ** 2 - self.log_std
                       - 0.5 * jnp.log(2 * jnp.pi))


g = Gaussian(jnp.zeros(2), jnp.zeros(2))
grad_g = jax.grad(lambda g: g.log_prob(jnp.array([1.0, -2.0])))(g)
print(type(grad_g).__name__, grad_g.name, "d/dmean:", grad_g.mean, "d/dlog_std:", grad_g.log_std)

# %% [markdown]
# ## Equinox: a model *is* a pytree
#
# Writing `flatten`/`unflatten` by hand gets old. An `eqx.Module` is a dataclass that is
# automatically a pytree: its fields are the children. Layers like `eqx.nn.Linear` and
# `eqx.nn.MLP` are Modules, so a model can be passed straight to `jax.grad` or `jax.jit`.

# %%
class Affine(eqx.Module):
    weight: jax.Array
    bias: jax.Array

    def __call__(self, x):
        return self.weight @ x + self.bias


affine = Affine(jnp.eye(2), jnp.ones(2))
print(jax.tree.leaves(affine))
mlp = eqx.nn.MLP(in_size=2, out_size=1, width_size=8, depth=2, key=jax.random.key(0))
print("MLP leaves:", [type(leaf).__name__ for leaf in jax.tree.leaves(mlp)])

# %% [markdown]
# Notice the last leaves: the MLP's **activation functions** are leaves too. They are not
# arrays, so `jax.jit(f)(mlp)` would fail (it can only trace arrays), and
# `jax.tree.map(lambda p: 2 * p, mlp)` fails on them. Equinox's answer is **filtering**:
#
# * `eqx.filter_jit` / `eqx.filter_grad`: like `jax.jit` / `jax.grad`, but they trace or
#   differentiate only the array leaves and treat everything else as static;
# * `eqx.partition(model, eqx.is_array)` splits a model into `(arrays, the_rest)`, and
#   `eqx.combine(arrays, the_rest)` puts it back together.

# %%
@eqx.filter_jit
def predict(model, x):
    return jax.vmap(model)(x)


print(predict(mlp, jnp.ones((4, 2))).shape)
arrays, rest = eqx.partition(mlp, eqx.is_array)
n_params = sum(leaf.size for leaf in jax.tree.leaves(arrays))
print("trainable parameters:", n_params)

# %% [markdown]
# ## Exercise 2: scale the weights of a model
#
# Write `scale_weights(model, factor)` returning a model of the same kind whose arrays
# are all multiplied by `factor`, and whose other fields (activation functions,
# strings, ...) are unchanged. Partition, map over the arrays, combine.

# %%
def scale_weights(model, factor):
    # BEGIN SOLUTION: partition the model into arrays and the rest, scale the arrays, combine them back
    arrays, rest = eqx.partition(model, eqx.is_array)
    scaled = jax.tree.map(lambda p: factor * p, arrays)
    return eqx.combine(scaled, rest)
    # END SOLUTION


# %%
check("intro.scale_weights", scale_weights)

# %%
half = scale_weights(mlp, 0.5)
print("output before:", float(mlp(jnp.ones(2))[0]), "after halving every weight:", float(half(jnp.ones(2))[0]))
