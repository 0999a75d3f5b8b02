# %% [markdown]
# # ESM2 as a masked language model
#
# ESM2 was trained on tens of millions of protein sequences with one task: some residues
# are hidden behind a `<mask>` token and the model must say which amino acid was there.
# To do that well it has to learn what proteins look like: which residues fit in a
# buried core, which pairs touch, which motifs recur. In this lesson you tokenise a
# protein, mask it, write the training loss, and read the model's predictions.
#
# **The model.** `load_model()` gives the workshop's small embedded model (trained on one
# bacterial proteome, in minutes, on a CPU); when the weights of the published ESM2-8M
# are cached on this machine we use those instead. Either way `info` says which.

# %%
import jax
import jax.numpy as jnp
import numpy as np

from workshop import check
from workshop.hardware import current_preset
from workshop_protein.models import select_model
from workshop_protein.tokens import ALPHABET, AMINO_ACIDS, MASK, detokenize, tokenize

preset = current_preset()
model, info = select_model(preset=preset)  # prints which model, and why

# %% [markdown]
# ## Tokens
#
# A protein becomes integers: `<cls>` (0) first, one token per residue, `<eos>` (2)
# last. The ids are those of ESM2's alphabet, so pretrained weights read what they
# were trained on. **Token `i + 1` is residue `i`.** Unknown characters are refused with
# their position:

# %%
ubiquitin = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"
seq = ubiquitin if preset != "tiny" else ubiquitin[:40]
tokens = tokenize(seq)
print(tokens[:8], "...", [ALPHABET[t] for t in tokens[:8]])
try:
    tokenize("MQIF*VK")
except ValueError as err:
    print("refused:", err)

# %% [markdown]
# ## Exercise 1: mask residues
#
# Write `mask_tokens(tokens, positions)`: a copy of `tokens` with `<mask>` (`MASK`, 32)
# at the given **0-based residue** positions. Mind the `<cls>` token in front. JAX
# arrays are immutable: use `tokens.at[...].set(...)`.

# %%
def mask_tokens(tokens, positions):
    # BEGIN SOLUTION: residue i is token i + 1 (after <cls>): tokens.at[positions + 1].set(MASK)
    return tokens.at[positions + 1].set(MASK)
    # END SOLUTION


# %%
check("protein.mask_tokens", mask_tokens)

# %% [markdown]
# ## Predicting masked residues
#
# The model maps tokens to **logits**, one vector of 33 scores per token; a softmax
# turns each into probabilities over the alphabet. We mask 15% of ubiquitin's residues
# (as in training) and look at the model's guesses, restricted to the 20 amino acids:

# %%
rng = np.random.default_rng(0)
positions = jnp.asarray(np.sort(rng.choice(len(seq), size=max(1, len(seq) * 15 // 100), replace=False)))
masked = mask_tokens(jnp.asarray(tokens), positions)
print(detokenize(masked).replace("<mask>", "_"))
logits = model(masked).logits                       # (T, 33)
aa = [ALPHABET.index(a) for a in AMINO_ACIDS]
probs = jax.nn.softmax(logits[positions + 1][:, jnp.asarray(aa)], axis=-1)
correct = 0
for p, row in zip(np.asarray(positions), np.asarray(probs)):
    best = np.argsort(-row)[:3]
    correct += AMINO_ACIDS[best[0]] == seq[p]
    print(f"residue {p + 1:3d}: true {seq[p]}, guesses " + ", ".join(f"{AMINO_ACIDS[j]} {row[j]:.2f}" for j in best))
print(f"top-1 correct: {correct}/{len(positions)}")

# %% [markdown]
# ## Exercise 2: the masked-LM loss
#
# Training minimises the **cross-entropy at the masked positions only**: the mean over
# masked positions of $-\log p(\text{true token})$. Write `masked_lm_loss(logits, tokens,
# target)` for a batch: `logits` `(B, T, 33)`, `tokens` `(B, T)` the *true* tokens,
# `target` `(B, T)` boolean, `True` where a residue was masked. Use `jax.nn.log_softmax`
# and `jnp.take_along_axis`.

# %%
def masked_lm_loss(logits, tokens, target):
    # BEGIN SOLUTION: -log_softmax(logits) at the true token; average over the target positions only
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logp, tokens[..., None], axis=-1)[..., 0]
    return jnp.sum(nll * target) / jnp.sum(target)
    # END SOLUTION


# %%
check("protein.masked_lm_loss", masked_lm_loss)

# %% [markdown]
# The exponential of this loss is the **perplexity**: the number of amino acids the
# model is, on average, hesitating between: 20 for a uniform guess, less for a model
# that knows something (the larger published ESM2 models are much lower than our small
# one). On our masked ubiquitin:

# %%
target = jnp.zeros(len(tokens), bool).at[positions + 1].set(True)
loss = masked_lm_loss(logits[None], jnp.asarray(tokens)[None], target[None])
print(f"masked-LM loss {float(loss):.3f} nats, perplexity {float(jnp.exp(loss)):.2f}")
if "val_perplexity" in info.metadata:
    print(f"(on its held-out proteins this model has perplexity {info.metadata['val_perplexity']:.2f}; "
          f"amino-acid frequencies alone: {info.metadata['unigram_perplexity']:.2f})")

# %% [markdown]
# ## Every position, one at a time
#
# Masking **one** position at a time and reading the model's distribution there gives
# $p(x_i \mid x_{-i})$ for every residue: an L × 20 table (L forward passes, run in
# batches under `jax.vmap` by `masked_marginals`). Its **entropy** per position says where
# the model is sure (low: few residues fit) and where it is not (high; $\log 20 \approx 3$
# is uniform).

# %%
from workshop_protein.mlm import entropy, masked_marginals, plot_masked_marginals

table = masked_marginals(model, seq)
ent = entropy(np.exp(table))
print("most certain positions:", ", ".join(f"{seq[i]}{i + 1} ({ent[i]:.2f})" for i in np.argsort(ent)[:5]))
print("least certain positions:", ", ".join(f"{seq[i]}{i + 1} ({ent[i]:.2f})" for i in np.argsort(-ent)[:5]))
fig = plot_masked_marginals(seq, table, title=f"p(amino acid | rest of ubiquitin), {info.name}")
