# %% [markdown]
# # Attention and the transformer layer
#
# ESM2 is a stack of identical **transformer layers** reading a protein one token per
# residue. Each layer lets every residue look at every other residue through
# **attention**, then transforms each residue on its own with a small MLP. In this
# lesson you write attention yourself, then open up a layer of ESM2 (in Equinox,
# through `esm2quinox`) and find the same computation inside.
#
# For one head, with queries $Q$ (T×d), keys $K$ (T×d) and values $V$ (T×d_v):
#
# $$\mathrm{attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d}}\right) V$$
#
# Row $i$ of the softmax is how much residue $i$ attends to each residue $j$; it sums to 1.
# A **mask** removes some pairs (padding, or the future in a language model of text):
# their logits become $-\infty$ before the softmax, so their weights are 0.

# %%
import jax
import jax.numpy as jnp
import numpy as np

from workshop import check
from workshop.hardware import current_preset

preset = current_preset()
print("preset:", preset)

# %% [markdown]
# ## Why divide by $\sqrt{d}$?
#
# If the entries of $q$ and $k$ are independent with variance 1, the dot product $q\cdot k$
# has variance $d$. Large logits make the softmax nearly one-hot: all attention on one
# key, and gradients that vanish. Dividing by $\sqrt{d}$ brings the variance back to 1.
# Measured:

# %%
key = jax.random.key(0)
for d in (4, 64, 1024):
    q, k = jax.random.normal(key, (2, 2000, d))
    dots = jnp.sum(q * k, axis=-1)
    print(f"d={d:5d}: var(q·k) = {float(dots.var()):8.1f}, var(q·k/√d) = {float((dots / jnp.sqrt(d)).var()):.2f}")

# %% [markdown]
# ## Exercise 1: scaled dot-product attention
#
# Write `attention(q, k, v, mask)` for one head. `q` is `(T_q, d)`, `k` is `(T_k, d)`,
# `v` is `(T_k, d_v)`; `mask` is `None` or a boolean `(T_q, T_k)` array, `True` where
# query $i$ may attend to key $j$. Return `(output, weights)`: the `(T_q, d_v)` output and
# the `(T_q, T_k)` attention weights. Use `jax.nn.softmax` (numerically safe) over the
# keys, and `jnp.where(mask, logits, -jnp.inf)` for the mask.

# %%
def attention(q, k, v, mask=None):
    # BEGIN SOLUTION: logits = q @ k.T / sqrt(d); mask them to -inf where mask is False; softmax over keys; weights @ v
    logits = q @ k.T / jnp.sqrt(q.shape[-1])
    if mask is not None:
        logits = jnp.where(mask, logits, -jnp.inf)
    weights = jax.nn.softmax(logits, axis=-1)
    return weights @ v, weights
    # END SOLUTION


# %%
check("protein.scaled_dot_product_attention", attention)

# %% [markdown]
# ## Multi-head attention
#
# One head gives each residue one way of looking at the others. **Multi-head**
# attention splits the width $E$ into $h$ heads of size $E/h$, each with its own
# projections of the same input, runs attention in every head at once (`jax.vmap` over
# the head axis), concatenates the heads and mixes them with an output projection:
#
# $$\mathrm{MHA}(x) = \mathrm{concat}_h\big(\mathrm{attention}(x W_Q^{(h)}, x W_K^{(h)}, x W_V^{(h)})\big)\, W_O$$
#
# ## Exercise 2: multi-head attention
#
# Write `mha(x, wq, wk, wv, wo, num_heads, mask)`: `x` is `(T, E)`, each weight is
# `(E, E)`. Project, reshape each projection to `(T, num_heads, E // num_heads)`, apply
# your `attention` to every head with `jax.vmap(..., in_axes=(1, 1, 1, None))`, bring
# the heads back together into `(T, E)`, multiply by `wo`.

# %%
def mha(x, wq, wk, wv, wo, num_heads, mask=None):
    # BEGIN SOLUTION: project, split into heads (T, h, E//h), vmap attention over the head axis, concatenate, project with wo
    t, e = x.shape
    q, k, v = (x @ w for w in (wq, wk, wv))
    split = lambda a: a.reshape(t, num_heads, e // num_heads)
    heads, _ = jax.vmap(attention, in_axes=(1, 1, 1, None), out_axes=1)(split(q), split(k), split(v), mask)
    return heads.reshape(t, e) @ wo
    # END SOLUTION


# %%
check("protein.multi_head_attention", mha)

# %% [markdown]
# ## Inside an ESM2 layer
#
# An ESM2 layer is a **pre-LayerNorm** transformer layer with two residual branches:
#
# ```
# x = x + MHA(LayerNorm(x))        # residues exchange information
# x = x + MLP(LayerNorm(x))        # each residue transformed alone (E -> 4E -> E, GELU)
# ```
#
# One difference from your `mha`: ESM2 rotates queries and keys by an angle that grows
# with the position (**rotary position embeddings**), so that $q_i \cdot k_j$ depends on
# the offset $i - j$: attention alone does not know the order of the residues.
#
# Let us load the workshop's model and run its first layer by hand. The layers are
# stored **stacked** (one array with a leading layer axis, run with `jax.lax.scan`), so
# layer 0 is the slice `[0]` of every array.

# %%
import equinox as eqx

from workshop_protein.models import select_model
from workshop_protein.tokens import PAD, tokenize

model, info = select_model(preset=preset)  # prints which model, and why
layer0 = jax.tree_util.tree_map(lambda a: a[0] if eqx.is_array(a) else a, model.layers)
print(layer0.attn.num_heads, "heads;", layer0.attn.query_proj.weight.shape, "query projection (out, in)")

# %% [markdown]
# Run the embedding and layer 0, then recompute the layer from its parts with your
# `attention` (and the layer's own rotary embedding) and compare:

# %%
tokens = jnp.asarray(tokenize("MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEG"))
x = jax.vmap(model.embedding)(tokens)
is_pad = tokens == PAD
by_layer = layer0(x, is_pad=is_pad)


def my_layer(layer, x):
    h = layer.attn.num_heads
    t, e = x.shape
    y = jax.vmap(layer.layer_norm1)(x)
    q = jax.vmap(layer.attn.query_proj)(y).reshape(t, h, e // h)
    k = jax.vmap(layer.attn.key_proj)(y).reshape(t, h, e // h)
    v = jax.vmap(layer.attn.value_proj)(y).reshape(t, h, e // h)
    rot = jax.vmap(layer.rotary_embed, in_axes=1, out_axes=1)  # rotate every head
    heads, weights = jax.vmap(attention, in_axes=(1, 1, 1, None), out_axes=(1, 0))(rot(q), rot(k), v, None)
    x = x + jax.vmap(layer.attn.output_proj)(heads.reshape(t, e))
    y = jax.vmap(layer.layer_norm2)(x)
    y = jax.vmap(layer.linear2)(jax.nn.gelu(jax.vmap(layer.linear1)(y), approximate=False))
    return x + y, weights


mine, weights = my_layer(layer0, x)
print("largest difference to the library's layer:", float(jnp.abs(mine - by_layer).max()))

# %% [markdown]
# The attention weights of each head are a `T × T` map. In trained protein models some
# heads attend along the chain (to the neighbours), others to residues far apart in the
# sequence that touch in 3-D: the structure half of this module turns those maps into
# contact maps.

# %%
import matplotlib.pyplot as plt

n_show = min(4, weights.shape[0])
fig, axes = plt.subplots(1, n_show, figsize=(3 * n_show, 3))
for h, ax in enumerate(np.atleast_1d(axes)):
    ax.imshow(np.asarray(weights[h]), cmap="magma")
    ax.set_title(f"layer 0, head {h}")
    ax.set_xlabel("key position")
np.atleast_1d(axes)[0].set_ylabel("query position")
plt.tight_layout()
plt.show()
