# %% [markdown]
# # Designing sequences by simulated annealing
#
# With a predictor of a property (lesson 04) we can search for sequences it scores
# high. The space is huge (20^L), so we walk through it one mutation at a time:
#
# 1. pick a position, mask it, and let **ESM2 propose** an amino acid there (proposals
#    stay protein-like);
# 2. **score** the new sequence with the fine-tuned predictor;
# 3. **accept or reject** it with the Metropolis rule at a temperature that falls over
#    time: early on the search wanders, at the end it only climbs.
#
# The goal here: start from a transmembrane segment and make the classifier of
# lesson 04 call it **antimicrobial**. Then post your best design on the room's
# leaderboard.

# %%
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from workshop import check
from workshop.data import fetch
from workshop.hardware import current_preset
from workshop_protein.design import anneal, format_leaderboard, submit
from workshop_protein.finetune import Predictor, read_labelled, train, train_valid_split
from workshop_protein.models import select_model
from workshop_protein.tokens import tokenize

preset = current_preset()
model, info = select_model(preset=preset)  # prints which model, and why
data = read_labelled(fetch("protein", "amp_vs_tm.csv"), label="is_antimicrobial")
train_set, valid_set = train_valid_split(data, 0.2, seed=0)
classifier = Predictor.init(model, data.task, data.num_outputs, key=jax.random.key(0))
classifier, history = train(classifier, train_set, valid_set, mode="head",
                            steps={"tiny": 30, "cpu": 300}.get(preset, 1000), batch_size=16)
print(f"classifier validation accuracy: {history.valid[-1]['accuracy']:.2f}")

# %% [markdown]
# `classifier.score(tokens)` is the log-probability the classifier gives "antimicrobial"
# (class 1): the objective we maximise.
#
# ## The Metropolis rule
#
# A move changes the objective by `delta` (positive: better). Accept it
#
# * always when `delta >= 0`;
# * otherwise with probability `exp(delta / T)`: draw `u` uniform in [0, 1) and accept
#   when `u < exp(delta / T)`. A hot search (`T` large) accepts almost anything; a cold
#   one almost never goes downhill.
#
# ### Exercise 1: accept or reject
#
# Write `metropolis_accept(delta, temperature, u)` returning True or False. Use
# `jnp.where`/`jnp.exp` (no Python `if` on `delta`) so it also works inside `jit`.

# %%
def metropolis_accept(delta, temperature, u):
    # BEGIN SOLUTION: True when delta >= 0, else when u < exp(delta / temperature)
    return (delta >= 0) | (u < jnp.exp(jnp.minimum(delta, 0.0) / temperature))
    # END SOLUTION


# %%
check("protein.metropolis_accept", metropolis_accept)

# %% [markdown]
# ## Cooling
#
# A geometric schedule multiplies the temperature by the same factor at every step,
# from `start` at step 0 to `end` at the last step, `steps - 1`.
#
# ### Exercise 2: a geometric schedule
#
# Write `geometric_temperature(step, steps, start, end)`.

# %%
def geometric_temperature(step, steps, start, end):
    # BEGIN SOLUTION: start * (end / start) raised to the fraction of the way, step / (steps - 1)
    return start * (end / start) ** (step / (steps - 1))
    # END SOLUTION


# %%
check("protein.geometric_temperature", geometric_temperature)

# %% [markdown]
# ## Annealing
#
# `anneal` runs the whole loop (ESM2 proposal → score → your two rules, written the
# same way) inside one `jax.lax.scan`. `naturalness` adds the model's mean
# log-probability of the sequence to the objective, so the design does not drift into
# sequences no protein would have.

# %%
start = next(s for s, y in zip(data.sequences, data.labels) if y == 0)
steps = {"tiny": 40, "cpu": 300}.get(preset, 1000)
result = anneal(model, classifier.score, start, steps=steps, key=jax.random.key(1),
                temperature=(0.5, 0.01), naturalness=0.1)
p_start = float(jnp.exp(classifier.score(tokenize(start))))
p_best = float(jnp.exp(classifier.score(tokenize(result.best_sequence))))
print("start :", start, f"P(antimicrobial) = {p_start:.2f}")
print("design:", result.best_sequence, f"P(antimicrobial) = {p_best:.2f}")
print(f"objective {result.start_score:.3f} -> {result.best_score:.3f}; accepted {result.accepted:.0%} of proposals")
plt.plot(result.scores)
plt.xlabel("step")
plt.ylabel("objective of the current sequence")
plt.show()

# %% [markdown]
# ## The leaderboard
#
# Post your best design. The instructor sets `WORKSHOP_LEADERBOARD` to a file everyone
# can write (a shared folder); without it the board is a file next to this notebook.
# Try other starts, more steps, other temperatures or `naturalness`, and beat your
# neighbours (the score is `log P(antimicrobial)`, 0 is the maximum).

# %%
board = os.environ.get("WORKSHOP_LEADERBOARD", "leaderboard.json")
submit(board, os.environ.get("USER", "me"), result.best_sequence, np.log(p_best), start=start)
print(format_leaderboard(board, 10))
