# %% [markdown]
# # Fine-tuning ESM2 on labelled sequences
#
# A protein language model turns a sequence into embeddings that already know a lot
# about proteins. To predict a property (thermostability, activity, function) we add a
# small **head** on top and train it on labelled examples:
#
# * **frozen backbone**: only the head learns (fast, little data needed);
# * **full fine-tuning**: every weight learns (slower, more data, usually better).
#
# Our labelled data are real: 412 peptides, each **antimicrobial** (1) or a
# **transmembrane** segment (0), from the modlAMP package. For a regression example the
# same file has a column `gravy`: the mean Kyte–Doolittle hydropathy of the sequence.
# That one is a **sequence-derived proxy target** (computed from the letters, not
# measured), useful to see regression work, not a biological finding.

# %%
import jax
import jax.numpy as jnp
import numpy as np

from workshop import check
from workshop.data import fetch
from workshop.hardware import current_preset
from workshop_protein.finetune import (
    Predictor, evaluate, length_buckets, read_labelled, residue_mask, train, train_valid_split,
)
from workshop_protein.models import select_model
from workshop_protein.tokens import batch_tokenize

preset = current_preset()
model, info = select_model(preset=preset)  # prints which model, and why
steps = {"tiny": 30, "cpu": 300, "gpu": 1000, "full": 2000}[preset]

# %% [markdown]
# ## The data
#
# `read_labelled` reads a CSV (a sequence column and a label column) or a FASTA file
# (`>name label=0.7`), checks every sequence, and decides from the labels whether the
# task is classification or regression. We hold out 20% for validation, keeping the
# class ratio.

# %%
data = read_labelled(fetch("protein", "amp_vs_tm.csv"), label="is_antimicrobial")
train_set, valid_set = train_valid_split(data, 0.2, seed=0)
print(data.task, data.classes, len(train_set), "train /", len(valid_set), "valid")
print("lengths:", min(map(len, data.sequences)), "to", max(map(len, data.sequences)), "residues")
print(train_set.sequences[0], "->", train_set.labels[0])

# %% [markdown]
# ## Padding, masks and pooling
#
# A batch holds sequences of different lengths, padded with `<pad>` to the longest.
# The model gives one embedding per token; the head wants **one vector per protein**.
# The usual choice is the *mean over residues*. It must ignore the padding (and
# `<cls>`/`<eos>`): otherwise a protein's embedding would change with the length of its
# batch-mates.
#
# ### Exercise 1: masked mean pooling
#
# Write `masked_mean_pool(hidden, mask)`: `hidden` has shape `(T, D)`, `mask` is a
# boolean `(T,)`; return the `(D,)` mean of the rows where `mask` is True.

# %%
def masked_mean_pool(hidden, mask):
    # BEGIN SOLUTION: the mean of hidden over the rows where mask is True
    m = mask.astype(hidden.dtype)[:, None]
    return (hidden * m).sum(0) / m.sum()
    # END SOLUTION


# %%
check("protein.masked_mean_pool", masked_mean_pool)

# %% [markdown]
# With the mask, a protein gets the same embedding alone or padded in a batch:

# %%
seqs = [train_set.sequences[0], max(train_set.sequences, key=len)]
tokens, mask = batch_tokenize(seqs)
alone, _ = batch_tokenize(seqs[:1])
h_padded = model(tokens[0]).hidden
h_alone = model(alone[0]).hidden
pooled_padded = masked_mean_pool(h_padded, residue_mask(tokens[0]))
pooled_alone = masked_mean_pool(h_alone, residue_mask(alone[0]))
print("padded to", tokens.shape[1], "tokens; max difference:", float(jnp.abs(pooled_padded - pooled_alone).max()))
print("without the mask the difference would be:", float(jnp.abs(h_padded.mean(0) - h_alone.mean(0)).max()))

# %% [markdown]
# ## Length bucketing
#
# Padding costs compute. Batching sequences of similar length (*bucketing*) wastes
# less: here is the fraction of padding tokens with random batches and with buckets.

# %%
lengths = np.array([len(s) for s in train_set.sequences]) + 2
rng = np.random.default_rng(0)
def padding_fraction(batches):
    return sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches) / sum(len(b) * lengths[b].max() for b in batches)
random_batches = np.array_split(rng.permutation(len(lengths)), len(lengths) // 16)
print(f"padding with random batches: {padding_fraction(random_batches):.0%}")
print(f"padding with length buckets: {padding_fraction(length_buckets(lengths, 16)):.0%}")

# %% [markdown]
# ## A head on the frozen backbone
#
# `Predictor` = backbone + a small MLP on the pooled embedding. `train(mode="head")`
# computes gradients for the head only: the backbone is frozen. Each batch is sharded
# over all visible devices (`jax.sharding`, data parallel), so the same call uses 8 GPUs
# when they are there; the best model is checkpointed atomically.

# %%
predictor = Predictor.init(model, data.task, data.num_outputs, key=jax.random.key(0))
before = evaluate(predictor, valid_set)
predictor, history = train(predictor, train_set, valid_set, mode="head", steps=steps, batch_size=16,
                           eval_every=max(1, steps // 2), checkpoint="checkpoints/amp_head.eqx", log=print)
after = evaluate(predictor, valid_set)
print(f"validation accuracy: {before['accuracy']:.2f} before, {after['accuracy']:.2f} after {steps} steps")
print(f"training loss: {np.mean(history.loss[:5]):.3f} (first 5 steps) -> {np.mean(history.loss[-5:]):.3f} (last 5)")

# %% [markdown]
# ## Regression and Spearman's ρ
#
# For a measured property (a melting temperature, an activity) we care that the model
# **ranks** proteins right, so the usual metric is Spearman's rank correlation: the
# Pearson correlation of the ranks.
#
# ### Exercise 2: Spearman's ρ
#
# Write `spearman_rho(x, y)` for two 1-D arrays without ties. (A rank: the position of
# each value in sorted order, `x.argsort().argsort()`.)

# %%
def spearman_rho(x, y):
    # BEGIN SOLUTION: the Pearson correlation of the ranks of x and y
    rx = np.asarray(x).argsort().argsort()
    ry = np.asarray(y).argsort().argsort()
    return float(np.corrcoef(rx, ry)[0, 1])
    # END SOLUTION


# %%
check("protein.spearman_rho", spearman_rho)

# %% [markdown]
# Now regress the proxy target (GRAVY hydropathy) with a fresh head, and score it with
# your function on the validation set:

# %%
gravy = read_labelled(fetch("protein", "amp_vs_tm.csv"), label="gravy", task="regression")
g_train, g_valid = train_valid_split(gravy, 0.2, seed=0)
regressor = Predictor.init(model, "regression", 1, key=jax.random.key(1), labels=g_train.labels)
regressor, g_hist = train(regressor, g_train, mode="head", steps=steps, batch_size=16, learning_rate=3e-3)
g_tokens, _ = batch_tokenize(list(g_valid.sequences))
g_pred = np.asarray(jax.vmap(regressor.predict)(g_tokens))
print(f"Spearman rho on {len(g_valid)} held-out peptides (proxy target GRAVY): "
      f"{spearman_rho(g_pred, g_valid.labels):.2f}")

# %% [markdown]
# ## Full fine-tuning, more devices, your own data
#
# * `train(..., mode="full")` updates the backbone too (use a smaller learning rate:
#   the default is `1e-4`).
# * On a machine with several accelerators nothing changes: `train` builds a mesh over
#   `jax.devices()` and shards each batch along it.
# * Your data: a CSV with a `sequence` column and a label column, or a FASTA file with
#   `label=` in each header: `read_labelled("my.csv", label="tm")`.
# * The larger benchmark for thermostability is FLIP's *Meltome* split; see the
#   module's datasheet (`datasets/protein_finetune_data.md`) for why it is not
#   downloaded automatically.
# * `workshop run protein finetune` runs all of this end to end, with figures.
