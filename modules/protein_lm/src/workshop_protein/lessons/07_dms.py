# %% [markdown]
# # Are the mutation scores right? Zero-shot against a deep mutational scan
#
# Lesson 03 gave every substitution a score: $\log p(\text{mt}) - \log p(\text{wt})$ at the
# masked position. A score is only worth something if it agrees with what the protein
# does. A **deep mutational scan** (DMS) measures that for thousands of variants at once:
# here, how well each double mutant of the GB1 domain of protein G still binds IgG
# (Olson et al. 2014, *Current Biology*; the table ships with the module, see
# `datasets/protein_dms.md`).
#
# The yardstick is **Spearman's ρ** between scores and measurements: only the order
# matters, because a log-ratio and a log-enrichment are on different scales. And every
# score must be compared with one that needs no model at all: **BLOSUM62**, the
# substitution matrix of sequence alignment (a table lookup).
#
# Three things go wrong in practice, silently: the residue numbering of the data is not
# the numbering of your sequence; the wild type's own rows sneak into the correlation;
# and the ranking direction gets turned around. The exercises make you meet each one.

# %%
import csv
import gzip

import numpy as np

from workshop import check
from workshop.data import fetch
from workshop.hardware import current_preset
from workshop_protein.dms import load_assay
from workshop_protein.mlm import masked_marginals
from workshop_protein.models import select_model
from workshop_protein.tokens import AMINO_ACIDS
from workshop_protein.zero_shot import score_assay, spearman, spearman_bootstrap

preset = current_preset()
model, info = select_model(preset=preset)  # prints which model, and why

# %% [markdown]
# ## The data, as it comes
#
# The table is a CSV with a few `# key: value` lines on top. Read it as it is, with
# nothing but the standard library:

# %%
def read_table(name):
    """The header lines (a dict), the variants as written, and the measured values of a shipped DMS table."""
    with gzip.open(fetch("protein", f"dms_{name}.csv.gz"), "rt") as f:
        lines = f.read().splitlines()
    header = {}
    for line in lines:
        if line.startswith("#") and ":" in line:
            key, _, value = line[1:].partition(":")
            header[key.strip()] = value.strip()
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    return header, [r["variant"] for r in rows], np.array([float(r["fitness"]) for r in rows])


header, variants, fitness = read_table("gb1")
wild_type, offset = header["wild_type"], int(header["offset"])
print(header["title"])
print(f"{len(variants)} variants, e.g. {variants[:3]}")
print(f"wild type, {len(wild_type)} residues: {wild_type}")
print("numbering:", header["numbering"])
print("values:", header["fitness"])

# %% [markdown]
# Look at the first variant: `Q2A` says residue **2** is Q. But `wild_type[1]` is
# not Q; `wild_type[0]` is. The construct starts at residue 2 of GB1, so the paper's
# residue number is the position in our string plus the **offset** (1 here; TDP-43's
# domain in the same collection starts at residue 290, offset 289).
#
# ## Exercise 1: from the paper's numbering to an index
#
# Write `mutant_position(mutation, offset)`: the 0-based index into the stored sequence
# of the residue that `mutation` names (`"Q2A"` with offset 1 → 0; `"G290A"` with offset
# 289 → 0). The number sits between the first and the last letter and may have several digits.

# %%
def mutant_position(mutation, offset):
    # BEGIN SOLUTION: the number is int(mutation[1:-1]); subtract the offset, then 1 for 0-based
    return int(mutation[1:-1]) - offset - 1
    # END SOLUTION


# %%
check("protein.mutant_position", mutant_position)

# %%
i = mutant_position(variants[0].split(":")[0], offset)
print(f"{variants[0]}: index {i}, and the wild type there is {wild_type[i]!r}")

# %% [markdown]
# ## Exercise 2: scores for every variant of the table
#
# `masked_marginals(model, wild_type)` returns the `(L, 20)` table of
# $\log p(x_i = a \mid x_{-i})$, position $i$ masked alone (L forward passes; columns in
# the order of `AMINO_ACIDS`). Write `variant_scores(log_probs, wild_type, variants, offset)`:
# for each variant (`"Q2A:T11G"`, in the paper's numbering), the **sum over its
# mutations** of $\log p(\text{mt}) - \log p(\text{wt})$ at that mutation's index. Return
# one score per variant (a list or an array).
#
# The data carries a free check of your numbering: every mutation states its wild-type
# residue. Raise `ValueError` when it is not the sequence's residue at the index you computed.

# %%
def variant_scores(log_probs, wild_type, variants, offset):
    # BEGIN SOLUTION: for each part of v.split(':'): i = mutant_position(part, offset); check wild_type[i] == part[0] (else ValueError); add log_probs[i, mt] - log_probs[i, wt]
    scores = []
    for v in variants:
        total = 0.0
        for part in v.split(":"):
            i = mutant_position(part, offset)
            if wild_type[i] != part[0]:
                raise ValueError(f"{part}: residue {part[1:-1]} (index {i}) is {wild_type[i]}, not {part[0]}")
            total += log_probs[i, AMINO_ACIDS.index(part[-1])] - log_probs[i, AMINO_ACIDS.index(part[0])]
        scores.append(total)
    return np.array(scores)
    # END SOLUTION


# %%
check("protein.variant_scores", variant_scores)

# %%
log_probs = masked_marginals(model, wild_type)  # L masked passes, once for all variants
model_scores = variant_scores(log_probs, wild_type, variants, offset)
print(f"{len(model_scores)} scores from {info.name}, from {model_scores.min():.2f} to {model_scores.max():.2f}")

# %% [markdown]
# What if you had forgotten the offset? Every index moves by one residue, and nothing
# crashes: the table has a row there. Only the wild-type letters notice:

# %%
try:
    variant_scores(log_probs, wild_type, variants, 0)
except ValueError as e:
    print("offset 0 refused:", e)

# %% [markdown]
# ## Exercise 3: Spearman's ρ against the measurement
#
# Write `zero_shot_spearman(variants, fitness, scores)`: Spearman's ρ between the
# measured `fitness` and the `scores`, over the rows that are **not the wild type
# itself**. Many tables carry such rows (`'WT'`, or `'_wt'` as MaveDB writes it; any
# case), sometimes hundreds of barcoded replicates: their score is 0 by definition and
# their value is the reference, so they are right for free and inflate ρ. Use
# `scipy.stats.spearmanr` (it gives tied values their average rank) and return ρ as a float.

# %%
def zero_shot_spearman(variants, fitness, scores):
    # BEGIN SOLUTION: keep = rows whose variant.strip().lower() is not 'wt' or '_wt'; spearmanr(fitness[keep], scores[keep]).statistic
    from scipy.stats import spearmanr

    keep = np.array([v.strip().lower() not in ("wt", "_wt") for v in variants])
    fitness, scores = np.asarray(fitness)[keep], np.asarray(scores)[keep]
    return float(spearmanr(fitness, scores).statistic)
    # END SOLUTION


# %%
check("protein.zero_shot_spearman", zero_shot_spearman)

# %% [markdown]
# ## The verdict, next to a baseline
#
# `load_assay("gb1")` reads the same file into the module's `DMSAssay` (positions
# converted to our sequence's numbering, every variant checked against the wild type);
# `score_assay(None, assay)` gives the two baselines that need no model: BLOSUM62
# ($\sum B[\text{wt}, \text{mt}]$) and amino-acid frequency ($\sum \log f(\text{mt}) -
# \log f(\text{wt})$, the composition of the proteome the embedded model was trained on).
# `spearman_bootstrap` adds a 95% interval (pairs resampled with replacement).

# %%
assay = load_assay("gb1")
assert [assay.paper_variant(v) for v in assay.variants] == variants  # the same rows, in the same order
baselines = score_assay(None, assay)
n_boot = 200 if preset == "tiny" else 1000
results = {f"{info.name} masked marginal (yours)": model_scores, **baselines}
for method, s in results.items():
    print(f"{method:36s} ρ = {spearman_bootstrap(s, fitness, n_boot=n_boot)}")

# %% [markdown]
# Read it honestly. If the model's ρ is below BLOSUM62's, or even below 0, your code is
# not wrong (the checks passed): the model is. The small embedded model does poorly here,
# and the numbers say why. How much do its scores just follow amino-acid composition?

# %%
rho_composition = spearman(model_scores, baselines["aa_frequency"])
rho_blosum = spearman(model_scores, baselines["blosum62"])
print(f"ρ between {info.name}'s scores and the amino-acid-frequency baseline: {rho_composition:+.2f}; "
      f"with BLOSUM62: {rho_blosum:+.2f}")

# %% [markdown]
# A score that mostly says "common amino acids are likely" cannot know which residues
# of GB1 touch IgG. The embedded model saw one bacterial proteome; a pretrained ESM2
# saw millions of natural proteins. Run these cells with `select_model("esm2_t6_8M_UR50D")`
# when you are online, and see how much that changes the numbers.
#
# ## The same code on two other scans, and what "higher" means
#
# Your three functions work on any table. Aβ42 (nucleation of amyloid) and TDP-43
# (toxicity of a prion-like domain, offset 289) have single and double mutants; look at
# them apart, and read the header's description of the values before reading ρ:

# %%
for name in ("abeta42", "tdp43"):
    h, v, y = read_table(name)
    wt, off = h["wild_type"], int(h["offset"])
    s = variant_scores(masked_marginals(model, wt), wt, v, off)
    n_mut = np.array([x.count(":") + 1 for x in v])
    print(f"{name} (offset {off}) values: {h['fitness']}")
    for k, split in ((1, "singles"), (2, "doubles")):
        rows = n_mut == k
        print(f"  {split}: n = {rows.sum()}, ρ = {zero_shot_spearman([v[j] for j in np.flatnonzero(rows)], y[rows], s[rows]):+.3f}")

# %% [markdown]
# Higher here means *more aggregation* or *more toxicity*, not a fitter protein. A
# language model's likelihood has no reason to rise with that: a negative ρ on such an
# assay is a finding about the assay, not a sign error. The sign error is a different
# thing: ranking by a score where lower means better (an energy, a loss) without
# negating it first; our log-ratio is higher = more likely.
#
# ## The wild-type rows, measured
#
# The shipped tables have no wild-type rows. What would some do to ρ? Add 200
# replicates of the wild type to GB1 (value 0, the reference of its log-enrichment;
# score 0 by definition) and compare:

# %%
with_wt = variants + ["WT"] * 200
fitness_wt = np.concatenate([fitness, np.zeros(200)])
scores_wt = np.concatenate([model_scores, np.zeros(200)])
naive = spearman(fitness_wt, scores_wt)
print(f"ρ with the wild-type rows left in: {naive:+.3f}; without them: "
      f"{zero_shot_spearman(with_wt, fitness_wt, scores_wt):+.3f}")

# %% [markdown]
# `workshop run protein dms` runs all of this on all three scans, with the wild-type
# marginal and the pseudo-likelihood beside the masked marginal, the baselines with
# their intervals, and heatmaps of measured against predicted single mutants.
