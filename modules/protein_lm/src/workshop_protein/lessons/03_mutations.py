# %% [markdown]
# # Zero-shot mutation effects
#
# Which single amino-acid substitutions break a protein? Deep mutational scans measure
# thousands of them in the lab. A masked language model gives a prediction for free
# (**zero-shot**, without any labelled data; Meier et al. 2021, "ESM-1v"): if the model
# finds the mutant residue much less likely than the wild type at that position, the
# mutation is probably harmful.
#
# Two scores for a substitution wild type → mutant at position $i$:
#
# * **wild-type marginal**: one forward pass of the unmasked wild type,
#   $\log p(x_i = \text{mt} \mid x) - \log p(x_i = \text{wt} \mid x)$;
# * **masked marginal**: mask position $i$ and compare,
#   $\log p(x_i = \text{mt} \mid x_{-i}) - \log p(x_i = \text{wt} \mid x_{-i})$.
#   One pass per position, the better score in the ESM-1v paper.
#
# Negative: the model likes the mutant less than the wild type.

# %%
import time

import jax
import jax.numpy as jnp
import numpy as np

from workshop import check
from workshop.hardware import current_preset
from workshop_protein.mlm import aa_log_probs
from workshop_protein.models import select_model
from workshop_protein.tokens import AMINO_ACIDS, MASK, tokenize

preset = current_preset()
model, info = select_model(preset=preset)  # prints which model, and why
ubiquitin = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"
seq = ubiquitin if preset != "tiny" else ubiquitin[:30]
tokens = jnp.asarray(tokenize(seq))

# %% [markdown]
# ## Exercise 1: the wild-type marginal
#
# `log_probs` is an `(L, 20)` array: row $i$ holds $\log p(x_i = a \mid x)$ for the 20
# amino acids in the order `AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"`. Write
# `wildtype_marginal(log_probs, seq)` returning the `(L, 20)` table of scores: each row
# minus that row's wild-type entry (the wild-type column becomes 0).

# %%
def wildtype_marginal(log_probs, seq):
    # BEGIN SOLUTION: wt index of every residue; subtract log_probs[i, wt_i] from row i (broadcast with [:, None])
    wt = jnp.array([AMINO_ACIDS.index(a) for a in seq])
    return log_probs - log_probs[jnp.arange(len(seq)), wt][:, None]
    # END SOLUTION


# %%
check("protein.wildtype_marginal", wildtype_marginal)

# %%
log_probs = aa_log_probs(model(tokens).logits[1:-1])   # one pass; drop <cls> and <eos>
wt_table = wildtype_marginal(log_probs, seq)
print(wt_table.shape, "wild-type marginal scores")

# %% [markdown]
# ## Exercise 2: the masked marginal, batched with vmap
#
# Write `masked_marginal_table(log_prob_fn, tokens, wt)`. `log_prob_fn(tokens)` returns
# `(T, 20)` log-probabilities for one token array (the model); `tokens` holds `<cls>`, L
# residues, `<eos>`; `wt` holds the wild-type column index of every residue. For every
# residue $i$, mask **only** that residue (token `i + 1`), run `log_prob_fn`, keep row
# `i + 1`. Do it for all residues at once with `jax.vmap` over `jnp.arange(L)`, then
# subtract the wild-type entries as in exercise 1.

# %%
def masked_marginal_table(log_prob_fn, tokens, wt):
    # BEGIN SOLUTION: one(i) masks token i + 1 and returns row i + 1; vmap over residues; subtract the wild-type column
    L = tokens.shape[0] - 2

    def one(i):
        return log_prob_fn(tokens.at[i + 1].set(MASK))[i + 1]

    lp = jax.vmap(one)(jnp.arange(L))
    return lp - lp[jnp.arange(L), wt][:, None]
    # END SOLUTION


# %%
check("protein.masked_marginal_table", masked_marginal_table)

# %% [markdown]
# Now on the model. `vmap` runs the L masked copies as one batch; a Python loop runs
# them one by one. Both give the same table; we time them (after compiling once):

# %%
def log_prob_fn(t):
    return aa_log_probs(model(t).logits)


wt_idx = jnp.array([AMINO_ACIDS.index(a) for a in seq])
batched = jax.jit(lambda t: masked_marginal_table(log_prob_fn, t, wt_idx))
mm_table = batched(tokens).block_until_ready()
t0 = time.perf_counter()
mm_table = batched(tokens).block_until_ready()
t_vmap = time.perf_counter() - t0

one_row = jax.jit(lambda t, i: log_prob_fn(t.at[i + 1].set(MASK))[i + 1])
one_row(tokens, 0).block_until_ready()
t0 = time.perf_counter()
rows = jnp.stack([one_row(tokens, i) for i in range(len(seq))])
t_loop = time.perf_counter() - t0
loop_table = rows - rows[jnp.arange(len(seq)), wt_idx][:, None]
print(f"{len(seq)} masked passes: vmap {t_vmap:.3f} s, Python loop {t_loop:.3f} s; "
      f"largest difference {float(jnp.abs(mm_table - loop_table).max()):.1e}")

# %% [markdown]
# ## The heatmap
#
# All $L \times 19$ substitutions at once. Red means less likely than the wild type, blue more;
# columns where everything is red are positions the model thinks are constrained (in a
# well-trained model, the buried core and functional sites). Rows red almost everywhere
# (often W and C) say less about the positions than about the model's prior: those
# amino acids are rare, so a weak model finds them unlikely anywhere.

# %%
from workshop_protein.mutations import plot_mutation_heatmap

fig = plot_mutation_heatmap(seq, np.asarray(mm_table), title=f"Masked-marginal scores, {info.name}")
order = np.argsort(np.asarray(mm_table).ravel())
worst = [f"{seq[k // 20]}{k // 20 + 1}{AMINO_ACIDS[k % 20]} {float(np.asarray(mm_table).ravel()[k]):.2f}" for k in order[:5]]
print("most damaging according to the model:", ", ".join(worst))

# %% [markdown]
# How much do the two scores agree? (Spearman's rank correlation over all substitutions.)

# %%
from scipy.stats import spearmanr

off = np.asarray(mm_table) != 0
rho = spearmanr(np.asarray(mm_table)[off], np.asarray(wt_table)[off]).statistic
print(f"Spearman ρ between masked and wild-type marginal scores: {rho:.2f}")

# %% [markdown]
# ## Exercise 3: multi-mutants, additively
#
# Mutations are written like `"A23G"`: wild type, **1-based** position, mutant; a
# multi-mutant joins them with `:` (`"K6R:K48R"`). The simplest score of a multi-mutant
# is the **sum** of its single-mutant scores (it ignores epistasis: interactions between
# the mutations). Write `additive_score(table, seq, mutations)`; raise `ValueError` when
# a stated wild type does not match the sequence (a common sign of shifted numbering).

# %%
def additive_score(table, seq, mutations):
    # BEGIN SOLUTION: split on ':'; check seq[pos - 1] == wt (else ValueError); sum table[pos - 1, index of mt]
    total = 0.0
    for m in mutations.split(":"):
        wt, pos, mt = m[0], int(m[1:-1]), m[-1]
        if seq[pos - 1] != wt:
            raise ValueError(f"{m}: residue {pos} is {seq[pos - 1]}, not {wt}")
        total = total + table[pos - 1, AMINO_ACIDS.index(mt)]
    return total
    # END SOLUTION


# %%
check("protein.additive_score", additive_score)

# %%
for muts in ("K6R", "K11R", "K6R:K11R", "I3A:V5A"):
    if max(int(m[1:-1]) for m in muts.split(":")) <= len(seq):
        print(f"{muts:10s} {float(additive_score(np.asarray(mm_table), seq, muts)):+.2f}")
