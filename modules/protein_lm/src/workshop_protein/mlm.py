"""Masked language modelling with ESM2: what the model predicts at masked positions.

ESM2 was trained to recover residues hidden behind ``<mask>``. Masking one position
``i`` and reading the model's distribution there gives ``p(x_i | x_{-i})``: the
*masked marginal*. Doing that for every position gives an L × 20 table of
probabilities, whose per-position entropy says where the model is sure (conserved,
structurally constrained positions) and where anything goes.

All tables here are over the 20 standard amino acids in the order of
:data:`~workshop_protein.tokens.AMINO_ACIDS` (``ACDEFGHIKLMNPQRSTVWY``), renormalised
over those 20 (ESM2 also gives a little probability to special and rare tokens).

Example::

    model, info = load_model()
    table = masked_marginals(model, "MKTAYIAKQRQISFVKSHFSRQ")     # (22, 20) log-probs
    probs = np.exp(table); ent = entropy(probs)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from . import guards
from .forward import esm2_logits, esm2_logits_at
from .tokens import AA_TOKENS, AMINO_ACIDS, MASK, tokenize

__all__ = [
    "aa_log_probs",
    "masked_marginals",
    "predict_masked",
    "MaskedPrediction",
    "entropy",
    "pseudo_perplexity",
    "plot_masked_marginals",
]


def aa_log_probs(logits: Float[Array, "... 33"]) -> Float[Array, "... 20"]:
    """Log-probabilities over the 20 standard amino acids (renormalised) from ESM2 logits."""
    return jax.nn.log_softmax(logits[..., AA_TOKENS], axis=-1)


@eqx.filter_jit
def _masked_chunk(model, tokens: Int[Array, " T"], positions: Int[Array, " C"]) -> Float[Array, "C 20"]:
    # One masked copy of the sequence per position, all through one batched forward pass.
    copies = jnp.broadcast_to(tokens, (positions.shape[0], tokens.shape[0]))
    rows = jnp.arange(positions.shape[0])
    copies = copies.at[rows, positions + 1].set(MASK)  # token pos+1 is residue pos (after <cls>)
    return aa_log_probs(esm2_logits_at(model, copies, positions + 1))


#: Memory for one chunk's attention weights (copies × heads × T × T float32), in bytes.
_CHUNK_BYTES = 256 * 2**20


def masked_chunk_size(model, length: int) -> int:
    """How many masked copies of a ``length``-residue protein to run together: as many as
    keep one layer's attention weights within 256 MiB, at most 64."""
    per_copy = 4 * model.num_heads * (length + 2) ** 2
    return int(max(1, min(64, _CHUNK_BYTES // per_copy)))


def masked_marginals(model, seq: str, positions: Sequence[int] | None = None, *, batch_size: int | None = None) -> np.ndarray:
    """``log p(x_i = a | x_{-i})`` for every position ``i`` (0-based) and amino acid ``a``.

    Each position is masked on its own: one forward pass per position, ``batch_size``
    masked copies at a time through :func:`~workshop_protein.forward.esm2_logits`.
    Every chunk has the same shape (the last one is padded, by less than one copy per
    chunk), so a protein compiles once.

    Arguments:
        model: an esm2quinox ESM2.
        seq: the protein sequence.
        positions: 0-based residue positions; default: all.
        batch_size: masked copies evaluated together; default: :func:`masked_chunk_size`.

    Returns:
        ``float32`` array ``(len(positions), 20)`` of log-probabilities, columns in the
        order of :data:`AMINO_ACIDS`.
    """
    tokens = jnp.asarray(tokenize(guards.protein("seq", seq)))
    n = len(tokens) - 2
    pos = np.arange(n, dtype=np.int32) if positions is None else guards.index_positions("positions", positions, n)
    if not pos.size:
        return np.zeros((0, 20), np.float32)
    chunk = guards.count("batch_size", batch_size) if batch_size is not None else masked_chunk_size(model, n)
    chunk = -(-pos.size // -(-pos.size // chunk))  # as many chunks, padded as little as possible
    padded = np.concatenate([pos, np.full(-pos.size % chunk, pos[-1], np.int32)])
    out = [_masked_chunk(model, tokens, jnp.asarray(padded[i:i + chunk])) for i in range(0, padded.size, chunk)]
    return np.concatenate([np.asarray(o) for o in out])[: pos.size]


@dataclass(frozen=True)
class MaskedPrediction:
    """The model's guesses at masked positions.

    Attributes:
        positions: the 0-based positions that were masked.
        probs: ``(len(positions), 20)`` probabilities over :data:`AMINO_ACIDS`.
        entropy: ``(len(positions),)`` entropies in nats.
        top: for each position, the ``k`` most likely amino acids with probabilities.
    """

    positions: tuple[int, ...]
    probs: np.ndarray
    entropy: np.ndarray
    top: tuple[tuple[tuple[str, float], ...], ...]


def predict_masked(model, seq: str, positions: Sequence[int] | None = None, *, k: int = 3) -> MaskedPrediction:
    """Mask ``positions`` together (one forward pass) and return the model's predictions.

    ``<mask>`` written in ``seq`` is masked too; with ``positions=None`` the predictions
    are for those.

    Example::

        >>> pred = predict_masked(model, "MKT<mask>YIAKQR")
        >>> pred.top[0]          # e.g. (('A', 0.21), ('L', 0.12), ('K', 0.08))
    """
    k = guards.count("k", k)
    tokens = np.array(tokenize(guards.protein("seq", seq)))
    if positions is None:
        positions = [int(i) - 1 for i in np.flatnonzero(tokens == MASK)]
        if not positions:
            raise ValueError("no position to predict: write <mask> in the sequence or pass positions=[...]")
    n = len(tokens) - 2
    positions = tuple(int(p) for p in guards.index_positions("positions", positions, n))
    if not positions:
        raise ValueError("positions is empty: give at least one 0-based position to predict")
    tokens[[p + 1 for p in positions]] = MASK
    logits = _forward_logits(model, jnp.asarray(tokens))
    logp = np.asarray(aa_log_probs(logits[np.array(positions) + 1]))
    probs = np.exp(logp)
    ent = entropy(probs)
    top = []
    for row in probs:
        order = np.argsort(-row)[:k]
        top.append(tuple((AMINO_ACIDS[j], float(row[j])) for j in order))
    return MaskedPrediction(positions, probs, ent, tuple(top))


def _forward_logits(model, tokens):
    return esm2_logits(model, tokens[None])[0]


def entropy(probs: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats along ``axis`` (0 log 0 taken as 0). Uniform over 20: log 20 ≈ 3.0."""
    p = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=axis)


def pseudo_perplexity(model, seq: str, *, batch_size: int | None = None) -> float:
    """``exp`` of the mean ``-log p(x_i | x_{-i})`` of the true residues (lower: more natural).

    Only the 20 standard amino acids are scored; other letters are skipped.
    """
    logp = masked_marginals(model, seq, batch_size=batch_size)
    idx = [(i, AMINO_ACIDS.index(a)) for i, a in enumerate(seq.upper()) if a in AMINO_ACIDS]
    if not idx:
        raise ValueError("the sequence has no standard amino acid to score")
    rows, cols = np.array(idx).T
    return float(np.exp(-logp[rows, cols].mean()))


def plot_masked_marginals(seq: str, log_probs: np.ndarray, path=None, *, title: str = "Masked-LM predictions"):
    """Heatmap of ``p(a | x_{-i})`` (positions × amino acids) with the wild type marked, and the entropy.

    Returns the matplotlib figure (saved to ``path`` when given).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    probs = np.exp(np.asarray(log_probs))
    n = probs.shape[0]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(max(6, 0.18 * n + 2), 5.5), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
    # Colour scale up to the largest probability: a weak model never gets near 1.
    im = ax.imshow(probs.T, aspect="auto", cmap="viridis", vmin=0, vmax=float(probs.max()), interpolation="nearest")
    ax.set_yticks(range(20), list(AMINO_ACIDS), fontsize=7)
    ax.set_ylabel("amino acid")
    wt = [(i, AMINO_ACIDS.index(a)) for i, a in enumerate(seq[:n].upper()) if a in AMINO_ACIDS]
    if wt:
        xs, ys = zip(*wt)
        ax.scatter(xs, ys, marker="s", s=12, facecolors="none", edgecolors="white", linewidths=0.8, label="wild type")
        ax.legend(loc="upper right", fontsize=7, framealpha=0.6)
    fig.colorbar(im, ax=[ax, ax2], label="p(amino acid | rest)")
    ax.set_title(title)
    ent = entropy(probs)
    ax2.plot(range(n), ent, color="tab:red")
    ax2.axhline(np.log(20), color="gray", ls="--", lw=0.8)
    ax2.set_ylabel("entropy (nats)")
    ax2.set_xlabel("position (0-based)")
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig
