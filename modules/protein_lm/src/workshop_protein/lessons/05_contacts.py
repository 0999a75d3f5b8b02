# %% [markdown]
# # Contacts from attention, and a 3-D fold
#
# ESM2 never saw a structure, yet some of its attention heads attend from a residue to
# the residues it touches in 3-D. The ESM contact head reads this out with a logistic
# regression on the attention maps. In this lesson you build that pipeline, measure it
# on **real protein structures** (four chains shipped with the module), and then fold a
# 3-D Cα trace from the predicted contacts by gradient descent on the coordinates.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from workshop import check
from workshop.hardware import current_preset
from workshop_protein.contacts import (
    attention_maps, contact_features, contacts_from_coords, fit_contact_head, plot_contact_map, real_structures,
    symmetrize,
)
from workshop_protein.fold import fold_from_contacts, kabsch_rmsd, plot_trace
from workshop_protein.models import select_model
from workshop_protein.tokens import tokenize

preset = current_preset()
model, info = select_model(preset=preset)  # prints which model, and why
structures = real_structures()
for tag, s in structures.items():
    print(tag, len(s["sequence"]), "residues:", s["sequence"][:40] + "...")

# %% [markdown]
# ## Attention maps
#
# `attention_maps(model, tokens)` runs the model and keeps the attention weights of every
# layer and head: shape `(layers, heads, T, T)`, each row a probability distribution over
# the tokens. Here is one head on the lac repressor headpiece (PDB 1LCD), beside the true
# contacts (Cβ atoms closer than 8 Å):

# %%
target = structures["1LCD_A"]
tokens = tokenize(target["sequence"])
maps = attention_maps(model, tokens)
truth = contacts_from_coords(target["cb"])
print("attention maps:", maps.shape, "| true contacts:", int(truth.sum() // 2))
fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
axes[0].imshow(maps[-1, 0, 1:-1, 1:-1], cmap="Blues")
axes[0].set_title("last layer, head 0")
axes[1].imshow(truth, cmap="Greys")
axes[1].set_title("true contacts (1LCD)")
plt.show()

# %% [markdown]
# ## From attention to features: symmetrise and APC
#
# Contacts are symmetric, attention is not: first `A + Aᵀ`. Then each map has a
# background: some residues get attention from everyone. The **average product
# correction** (APC, from coevolution analysis) removes it:
#
# $$F_{ij} = A_{ij} - \frac{\left(\sum_k A_{ik}\right)\left(\sum_k A_{kj}\right)}{\sum_{kl} A_{kl}}$$
#
# ### Exercise 1: APC
#
# Write `apc(a)` for an array of maps of shape `(..., L, L)`: each map corrected on its
# own (sum over the last two axes only).

# %%
def apc(a):
    # BEGIN SOLUTION: subtract (row sum)(column sum) / total from each map
    row = a.sum(-1, keepdims=True)
    col = a.sum(-2, keepdims=True)
    total = a.sum((-1, -2), keepdims=True)
    return a - row * col / total
    # END SOLUTION


# %%
check("protein.apc", apc)

# %% [markdown]
# The features of a residue pair are its corrected values in all `layers × heads` maps;
# `contact_features` does exactly the above (after dropping `<cls>`/`<eos>`). A
# logistic regression over them gives `P(contact)`. ESM fitted it on 20 structures; we
# fit it on three real chains and test on the fourth, 1LCD, which it never sees.

# %%
train_ids = ["1A8O_A", "2XHE_B", "7DDO_C"]
features, contacts = [], []
for tag in train_ids:
    t = tokenize(structures[tag]["sequence"])
    features.append(contact_features(attention_maps(model, t), t))
    contacts.append(contacts_from_coords(structures[tag]["cb"]))
head = fit_contact_head(features, contacts, steps={"tiny": 200}.get(preset, 500))
probs = np.asarray(head(contact_features(maps, tokens)))
print("P(contact) map:", probs.shape)

# %% [markdown]
# ## How good is it? Top-k precision
#
# The usual measure: take the `k` most probable pairs at least `min_separation` apart
# in sequence (neighbours along the chain are trivially close), and count how many are
# true contacts. With `k = L/5`: "top-L/5 precision".
#
# ### Exercise 2: top-k precision
#
# Write `top_precision(probs, truth, k, min_separation)`: over pairs `i < j` with
# `j - i >= min_separation`, the fraction of true contacts among the `k` pairs of highest
# probability.

# %%
def top_precision(probs, truth, k, min_separation):
    # BEGIN SOLUTION: rank the pairs i < j with j - i >= min_separation by probability, keep k
    i, j = np.triu_indices(len(truth), k=min_separation)
    best = np.argsort(-np.asarray(probs)[i, j], kind="stable")[:k]
    return float(np.asarray(truth)[i[best], j[best]].mean())
    # END SOLUTION


# %%
check("protein.top_precision", top_precision)

# %%
L = len(probs)
rng = np.random.default_rng(0)
chance = np.mean([top_precision(rng.random((L, L)), truth, L // 5, 6) for _ in range(50)])
print(f"1LCD (held out), top-L/5 precision at separation >= 6: {top_precision(probs, truth, L // 5, 6):.2f} "
      f"(random guessing: {chance:.2f})")
# The colour scale is the prediction's own (a small model's probabilities stay far below 1);
# the title gives the top-L/5 precision beside the chance rate, the contact density.
plot_contact_map(probs, truth, title="1LCD: predicted (upper) vs true (lower)", model=info.name)
plt.show()

# %% [markdown]
# A small model trained in minutes has learnt little structure; ESM2-650M reaches top-L/5
# precisions around 0.8. With the published weights cached (`load_model("esm2_t6_8M_UR50D")`),
# `load_contact_head(name)` reads ESM's own regression weights.
#
# ## Folding: distance geometry with `jax.grad`
#
# Contacts constrain distances. We look for coordinates `x` (one point per residue)
# minimising an energy: consecutive Cα atoms 3.8 Å apart, contacting pairs within 8 Å,
# the others beyond, no two atoms closer than 4 Å. Its gradient with respect to the
# coordinates comes from `jax.grad`; Adam does the descent; several random starts run
# at once under `vmap`. Everything rests on the distance matrix.
#
# ### Exercise 3: differentiable distances
#
# Write `pairwise_distances(x)`: the `(L, L)` Euclidean distances between the rows of
# `x` `(L, 3)`, with a finite gradient everywhere (the square root of 0 has an infinite
# slope: add a tiny epsilon inside it).

# %%
def pairwise_distances(x):
    # BEGIN SOLUTION: broadcast x against itself, sum the squared differences, add 1e-8 and take the square root
    diff = x[:, None, :] - x[None, :, :]
    return jnp.sqrt((diff**2).sum(-1) + 1e-8)
    # END SOLUTION


# %%
check("protein.pairwise_distances", pairwise_distances)

# %% [markdown]
# A contact map fixes a structure only up to rotation, translation **and mirror image**,
# so we compare with the real structure by the RMSD after the best superposition
# (Kabsch), reflections allowed. First the ideal case, folding from the *true* contacts,
# then from the predicted ones:

# %%
fold_steps, restarts = {"tiny": (300, 2)}.get(preset, (1500, 8))
x_true, _ = fold_from_contacts(truth.astype(np.float32), key=jax.random.key(0), steps=fold_steps, restarts=restarts)
x_pred, _ = fold_from_contacts(probs, key=jax.random.key(0), steps=fold_steps, restarts=restarts)
d = pairwise_distances(jnp.asarray(x_true))
print(f"consecutive Cα distances: {float(jnp.diagonal(d, 1).mean()):.2f} Å on average")
print(f"RMSD to the real 1LCD: {kabsch_rmsd(x_true, target['ca']):.1f} Å from the true contacts, "
      f"{kabsch_rmsd(x_pred, target['ca']):.1f} Å from the predicted ones")
plot_trace(x_true, target["ca"], title="folded from true contacts (colour) vs 1LCD (grey)")
plt.show()

# %% [markdown]
# ## Beyond: ESMFold
#
# ESMFold predicts full atomic structures from one sequence with ESM2-3B and a folding
# trunk. It is PyTorch-only and downloads ~8 GB of weights, so the workshop does not
# depend on it. With internet and a GPU:
#
# ```bash
# pip install "fair-esm[esmfold]"   # plus openfold's dependencies, see the fair-esm README
# python -c "import esm, torch; m = esm.pretrained.esmfold_v1().eval().cuda(); \
#            open('pred.pdb', 'w').write(m.infer_pdb('MKTAYIAKQRQISFVKSHFSRQ'))"
# ```
#
# The resulting PDB can be compared to ours with `kabsch_rmsd` on its Cα atoms.
