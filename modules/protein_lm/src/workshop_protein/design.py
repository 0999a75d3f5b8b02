"""Designing sequences with a high predicted property: simulated annealing with ESM2
proposals, and a small leaderboard for a room competition.

Each step of :func:`anneal`:

1. pick a residue position at random and mask it;
2. **propose** a new amino acid from ESM2's masked-LM distribution at that position
   (so proposals stay protein-like), at temperature ``proposal_temperature``;
3. **score** the new sequence: ``objective = predictor score + naturalness ×
   mean log-probability`` (the second term is optional);
4. **Metropolis acceptance**: always accept a better sequence, accept a worse one with
   probability ``exp(Δ / T)``; the temperature ``T`` falls geometrically, so the search
   explores first and then climbs.

Everything runs in one ``jax.lax.scan`` under ``jit``.

Example::

    result = anneal(model, score_fn, "MKTAYIAKQR", steps=200, key=jax.random.key(0))
    submit(leaderboard_path, "team-rocket", result.best_sequence, result.best_score)
    print(format_leaderboard(leaderboard_path))
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import guards
from .tokens import AA_TOKENS, MASK, detokenize, tokenize

__all__ = [
    "metropolis_accept",
    "temperature_schedule",
    "AnnealResult",
    "propose_residue",
    "anneal",
    "mean_log_probability",
    "submit",
    "top",
    "format_leaderboard",
    "print_leaderboard",
]


def metropolis_accept(delta, temperature, u):
    """Accept a move that changes the objective by ``delta`` (higher is better) when
    ``u < exp(delta / T)`` for a uniform ``u`` in [0, 1): always when ``delta >= 0``."""
    return (delta >= 0) | (u < jnp.exp(jnp.minimum(delta, 0.0) / temperature))


def temperature_schedule(step, steps: int, start: float, end: float):
    """Geometric cooling from ``start`` (step 0) to ``end`` (the last step)."""
    frac = step / jnp.maximum(steps - 1, 1)
    return start * (end / start) ** frac


def mean_log_probability(model, tokens) -> jax.Array:
    """The mean log-probability ESM2 gives each residue of ``tokens`` (unmasked: one
    forward pass), a cheap measure of how protein-like a sequence looks."""
    logits = model(tokens).logits
    logp = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(logp, tokens[:, None], axis=-1)[:, 0]
    return picked[1:-1].mean()


@dataclass(frozen=True)
class AnnealResult:
    """What :func:`anneal` found.

    Attributes:
        best_sequence, best_score: the best sequence seen and its objective.
        start_score: the objective of the starting sequence.
        scores: the objective of the current sequence after every step.
        accepted: the fraction of proposals accepted.
        sequence: the final current sequence.
    """

    best_sequence: str
    best_score: float
    start_score: float
    scores: np.ndarray
    accepted: float
    sequence: str


def propose_residue(model, tokens: jax.Array, pos, key, temperature: float = 1.0) -> jax.Array:
    """``tokens`` with the residue at token index ``pos`` redrawn from ESM2's distribution there.

    The position is masked first, so the proposal does not see the residue it replaces;
    ``temperature`` flattens (above 1) or sharpens (below 1) the distribution over the 20
    amino acids. Traceable: :func:`anneal` calls it inside its scan.
    """
    aa = jnp.asarray(AA_TOKENS)
    logits = model(tokens.at[pos].set(MASK)).logits[pos, aa] / temperature
    return tokens.at[pos].set(aa[jax.random.categorical(key, logits)])


def anneal(
    model,
    score_fn: Callable[[jax.Array], jax.Array],
    start: str,
    *,
    steps: int = 200,
    key,
    temperature: tuple[float, float] = (1.0, 0.01),
    proposal_temperature: float = 1.0,
    naturalness: float = 0.0,
    fixed: tuple[int, ...] = (),
) -> AnnealResult:
    """Simulated annealing over sequences of ``start``'s length.

    Arguments:
        model: an ESM2 model (proposes residues, and measures naturalness).
        score_fn: ``tokens (T,) -> scalar`` to maximise, e.g. ``predictor.score``.
        start: the starting sequence.
        steps: proposals to make.
        key: a JAX random key.
        temperature: ``(start, end)`` of the geometric cooling of the acceptance.
        proposal_temperature: temperature of ESM2's proposal distribution.
        naturalness: weight of :func:`mean_log_probability` in the objective.
        fixed: 0-based residue positions that must not change.

    Returns:
        An :class:`AnnealResult`.
    """
    steps = guards.count("steps", steps)
    if len(temperature) != 2:
        raise ValueError(f"temperature must be (start, end), got {temperature!r}")
    temperature = (guards.positive("temperature[0]", temperature[0]), guards.positive("temperature[1]", temperature[1]))
    proposal_temperature = guards.positive("proposal_temperature", proposal_temperature)
    tokens0 = jnp.asarray(tokenize(guards.protein("start", start)))
    L = len(tokens0) - 2
    fixed = guards.index_positions("fixed", fixed, L)
    free = np.setdiff1d(np.arange(L), fixed)
    if len(free) == 0:
        raise ValueError("every position is fixed: nothing to design")
    free = jnp.asarray(free)

    def objective(tokens):
        value = score_fn(tokens)
        if naturalness:
            value = value + naturalness * mean_log_probability(model, tokens)
        return value

    def step(carry, inputs):
        tokens, value, best_tokens, best_value = carry
        k, t = inputs
        k_pos, k_aa, k_acc = jax.random.split(k, 3)
        pos = free[jax.random.randint(k_pos, (), 0, len(free))] + 1  # +1: <cls>
        new = propose_residue(model, tokens, pos, k_aa, proposal_temperature)
        new_value = objective(new)
        temp = temperature_schedule(t, steps, *temperature)
        ok = metropolis_accept(new_value - value, temp, jax.random.uniform(k_acc))
        tokens = jnp.where(ok, new, tokens)
        value = jnp.where(ok, new_value, value)
        better = value > best_value
        best_tokens = jnp.where(better, tokens, best_tokens)
        best_value = jnp.where(better, value, best_value)
        return (tokens, value, best_tokens, best_value), (value, ok)

    @jax.jit
    def run(tokens0, key):
        v0 = objective(tokens0)
        inputs = (jax.random.split(key, steps), jnp.arange(steps))
        (tokens, _, best_tokens, best_value), (values, oks) = jax.lax.scan(step, (tokens0, v0, tokens0, v0), inputs)
        return tokens, best_tokens, best_value, v0, values, oks.mean()

    tokens, best_tokens, best_value, v0, values, acc = run(tokens0, key)
    return AnnealResult(
        best_sequence=detokenize(np.asarray(best_tokens)),
        best_score=float(best_value),
        start_score=float(v0),
        scores=np.asarray(values),
        accepted=float(acc),
        sequence=detokenize(np.asarray(tokens)),
    )


# --------------------------------------------------------------------------------------
# Leaderboard: a small JSON file shared by the room
# --------------------------------------------------------------------------------------


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    data = json.loads(path.read_text() or "[]")
    if not isinstance(data, list):
        raise ValueError(f"{path} is not a leaderboard (expected a JSON list)")
    return data


def submit(path: str | os.PathLike, name: str, sequence: str, score: float, **extra) -> dict:
    """Add an entry ``{name, sequence, score, time}`` to the leaderboard at ``path``
    (created when missing). The file is rewritten atomically (temporary file, then
    ``os.replace``), so a reader never sees half a file.

    Returns the entry written.
    """
    path = Path(path)
    if not name.strip():
        raise ValueError("give a name for the leaderboard")
    tokenize(sequence)  # refuses sequences that are not proteins
    entry = {"name": name.strip(), "sequence": sequence, "score": float(score),
             "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}
    entries = _read(path) + [entry]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entries, indent=1) + "\n")
    os.replace(tmp, path)
    return entry


def top(path: str | os.PathLike, n: int = 10, *, best_per_name: bool = True) -> list[dict]:
    """The ``n`` best entries, highest score first (one per name unless asked)."""
    entries = sorted(_read(Path(path)), key=lambda e: (-e["score"], e["time"]))
    if best_per_name:
        seen, kept = set(), []
        for e in entries:
            if e["name"] not in seen:
                seen.add(e["name"])
                kept.append(e)
        entries = kept
    return entries[:n]


def format_leaderboard(path: str | os.PathLike, n: int = 10) -> str:
    """The top ``n`` as a text table."""
    rows = top(path, n)
    if not rows:
        return "the leaderboard is empty"
    width = max(len(r["name"]) for r in rows)
    lines = [f"{'#':>2}  {'name':<{width}}  {'score':>9}  sequence"]
    for i, r in enumerate(rows, 1):
        seq = r["sequence"] if len(r["sequence"]) <= 40 else r["sequence"][:37] + "..."
        lines.append(f"{i:>2}  {r['name']:<{width}}  {r['score']:>9.4f}  {seq}")
    return "\n".join(lines)


def print_leaderboard(path: str | os.PathLike, n: int = 10) -> None:
    """Print the top ``n`` of the leaderboard at ``path`` (for the instructor's screen)."""
    print(format_leaderboard(path, n))
