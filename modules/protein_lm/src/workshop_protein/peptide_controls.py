"""Peptides that are neither antimicrobial nor transmembrane: what does a classifier
trained on those two classes say about them?

A classifier fine-tuned on antimicrobial peptides (AMPs) against transmembrane
segments has seen only those two kinds, yet it must split its probability between
them for any input. If it calls fragments of ordinary proteins antimicrobial, a high
P(antimicrobial) for a designed peptide is not evidence of activity. The controls:

* :func:`protein_fragments`: windows cut from ordinary proteins that ship with the
  module (:func:`ordinary_proteins`: the four PDB chains of ``structures_ca.npz``, the
  GB1 domain and the TDP-43 prion-like domain of the DMS tables), with lengths drawn
  from the training peptides' lengths;
* :func:`shuffled`: the same residues in random order (composition kept, order lost);
* :func:`composition_sampled`: residues drawn independently with the amino-acid
  frequencies of a bacterial proteome
  (:data:`~workshop_protein.baselines.PROTEOME_COUNTS`), a synthetic "neither" class
  for training that contains no real fragment, so every real fragment stays held out.

:func:`positive_rates` is the fraction called antimicrobial above a threshold: on
these inputs, a false-positive rate.

Example::

    fragments = protein_fragments(ordinary_proteins(), lengths, 200, seed=0)
    p = class_probabilities(predictor, [f.sequence for f in fragments])[:, 1]
    positive_rates(p)   # {"p>0.5": ..., "p>0.9": ...}
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import equinox as eqx
import jax
import numpy as np
from jaxtyping import Float

from .tokens import AMINO_ACIDS, batch_tokenize

__all__ = [
    "ordinary_proteins",
    "Fragment",
    "protein_fragments",
    "shuffled",
    "composition_sampled",
    "with_extra_class",
    "class_probabilities",
    "positive_rates",
    "rate_interval_by_protein",
    "plot_probabilities",
]


def ordinary_proteins() -> dict[str, str]:
    """Sequences of proteins that are neither AMPs nor transmembrane segments, all
    shipped with the module: ``{name: sequence}``."""
    from .contacts import real_structures
    from .dms import load_assay

    out = {tag: s["sequence"] for tag, s in real_structures().items()}
    out["GB1"] = load_assay("gb1").wild_type
    out["TDP-43 PrLD"] = load_assay("tdp43").wild_type
    return out


@dataclass(frozen=True)
class Fragment:
    """A window ``sequence = protein[start : start + len(sequence)]`` of ``source``."""

    source: str
    start: int
    sequence: str


def protein_fragments(proteins: dict[str, str], lengths: Sequence[int], n: int, *, seed: int = 0) -> list[Fragment]:
    """``n`` windows of ``proteins``, each protein giving a share proportional to its
    length; each window's length is drawn from ``lengths`` (e.g. the training
    peptides'), its start uniformly. Windows of one protein may overlap."""
    rng = np.random.default_rng(seed)
    lengths = np.asarray(lengths)
    total = sum(len(s) for s in proteins.values())
    out = []
    for name, seq in proteins.items():
        fits = lengths[lengths <= len(seq)]
        if len(fits) == 0:
            continue
        for _ in range(max(1, round(n * len(seq) / total))):
            L = int(rng.choice(fits))
            start = int(rng.integers(0, len(seq) - L + 1))
            out.append(Fragment(name, start, seq[start : start + L]))
    return out


def shuffled(sequences: Sequence[str], *, seed: int = 0) -> list[str]:
    """Each sequence with its residues in a random order (its composition unchanged)."""
    rng = np.random.default_rng(seed)
    return ["".join(rng.permutation(list(s))) for s in sequences]


def composition_sampled(lengths: Sequence[int], frequencies: dict[str, float], *, seed: int = 0) -> list[str]:
    """One sequence per entry of ``lengths``, residues drawn independently with
    ``frequencies`` (``{amino acid: count or frequency}``, normalised here)."""
    rng = np.random.default_rng(seed)
    p = np.array([frequencies[a] for a in AMINO_ACIDS], np.float64)
    letters = np.array(list(AMINO_ACIDS))
    return ["".join(letters[rng.choice(20, size=int(L), p=p / p.sum())]) for L in lengths]


def with_extra_class(data, sequences: Sequence[str], name: str):
    """``data`` (a classification :class:`~workshop_protein.finetune.LabelledSequences`)
    with ``sequences`` appended as a new class ``name`` (the last class id)."""
    if data.task != "classification":
        raise ValueError("a new class needs a classification task")
    labels = np.concatenate([data.labels, np.full(len(sequences), len(data.classes), data.labels.dtype)])
    return replace(data, sequences=tuple(data.sequences) + tuple(sequences), labels=labels,
                   classes=tuple(data.classes) + (name,))


@eqx.filter_jit
def _softmax(predictor, tokens):
    return jax.nn.softmax(jax.vmap(predictor)(tokens), axis=-1)


def class_probabilities(predictor, sequences: Sequence[str], *, batch_size: int = 32) -> Float[np.ndarray, "N K"]:
    """The softmax of a classification predictor over its classes, for every sequence
    (in order). Batches of similar length, padded to a multiple of 16 tokens and to
    ``batch_size`` rows, so a handful of compiled shapes serve any input."""
    from .finetune import length_buckets

    out = None
    for idx in length_buckets([len(s) for s in sequences], batch_size, seed=None):
        seqs = [sequences[i] for i in idx]
        length = -(-(max(len(s) for s in seqs) + 2) // 16) * 16
        tokens, _ = batch_tokenize(seqs + [seqs[0]] * (batch_size - len(seqs)), length=length)
        p = np.asarray(_softmax(predictor, tokens), np.float64)[: len(seqs)]
        out = np.empty((len(sequences), p.shape[1])) if out is None else out
        out[idx] = p
    return out


def positive_rates(probabilities, thresholds: Sequence[float] = (0.5, 0.9)) -> dict[str, float]:
    """The fraction of ``probabilities`` above each threshold: ``{"p>0.5": ..., "p>0.9": ...}``."""
    p = np.asarray(probabilities)
    return {f"p>{t:g}": float(np.mean(p > t)) for t in thresholds}


def rate_interval_by_protein(
    probabilities, sources: Sequence[str], threshold: float, *, n: int = 2000, level: float = 0.95, seed: int = 0
) -> list[float]:
    """A bootstrap interval of the rate above ``threshold`` that resamples whole
    proteins (windows of one protein overlap, so they are not independent draws): with
    few proteins the interval is wide, as it should be."""
    rng = np.random.default_rng(seed)
    p, sources = np.asarray(probabilities), np.asarray(sources)
    names = np.unique(sources)
    hits = np.array([np.sum(p[sources == s] > threshold) for s in names])
    sizes = np.array([np.sum(sources == s) for s in names])
    draws = rng.integers(0, len(names), size=(n, len(names)))
    rates = hits[draws].sum(1) / sizes[draws].sum(1)
    lo, hi = np.quantile(rates, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


def plot_probabilities(panels: dict[str, dict[str, np.ndarray]], *, title: str, path=None, highlight: str = ""):
    """One strip plot per panel (``{panel title: {group: P(antimicrobial) values}}``):
    each group's values with the fraction above 0.5 and 0.9 written over it; the group
    named ``highlight`` is drawn as stars."""
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(g for panel in panels.values() for g in panel))
    fig, axes = plt.subplots(1, len(panels), figsize=(1.25 * len(groups) * len(panels) + 1.5, 4.6), sharey=True,
                             squeeze=False)
    rng = np.random.default_rng(0)
    for ax, (panel, values) in zip(axes[0], panels.items()):
        for x, g in enumerate(groups):
            if g not in values or len(values[g]) == 0:
                continue
            v = np.asarray(values[g])
            star = g == highlight
            ax.scatter(x + (np.zeros(len(v)) if star else rng.uniform(-0.25, 0.25, len(v))), v, s=60 if star else 8,
                       marker="*" if star else "o", alpha=1 if star else 0.5,
                       color="tab:red" if star else f"C{x % 10}", zorder=3)
            r = positive_rates(v)
            ax.text(x, 1.03, f"{r['p>0.5']:.0%}\n{r['p>0.9']:.0%}", ha="center", va="bottom", fontsize=7)
        for t in (0.5, 0.9):
            ax.axhline(t, color="k", lw=0.7, ls=":")
        ax.set_xticks(range(len(groups)), groups, rotation=35, ha="right", fontsize=8)
        ax.set_ylim(-0.03, 1.18)
        ax.set_title(panel, fontsize=9, pad=24)
    axes[0][0].set_ylabel("P(antimicrobial)\n(numbers: fraction > 0.5, > 0.9)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
