"""Zero-shot mutation effects from a masked language model (Meier et al. 2021, ESM-1v).

A substitution ``wt -> mt`` at position ``i`` is scored by how much more (or less)
likely the model finds the mutant residue than the wild type there:

* **masked marginal** (the better score in the ESM-1v paper): mask position ``i`` and
  compare ``log p(x_i = mt | x_{-i}) - log p(x_i = wt | x_{-i})``. One forward pass
  per position: L passes for the full L × 20 table.
* **wild-type marginal**: no mask, a single forward pass of the wild type, and
  ``log p(x_i = mt | x) - log p(x_i = wt | x)``. Cheap (one pass for everything),
  slightly worse.

Scores are log-ratios: negative means the model finds the mutant less plausible than
the wild type (likely deleterious), zero for the wild type itself. A multi-mutant is
scored additively: the sum of its single-mutant scores (a first-order approximation
that ignores epistasis).

Mutations are written ``A23G`` (wild type, 1-based position, mutant) and joined with
``:`` for a multi-mutant (``A23G:K45R``), as in ProteinGym/DMS tables.

Example::

    model, info = load_model()
    table = masked_marginal_scores(model, seq)              # (L, 20)
    score_mutations(table, seq, ["A23G", "A23G:K45R"])      # -> array of 2 scores
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import jax.numpy as jnp
import numpy as np

from .mlm import _forward_logits, aa_log_probs, masked_marginals
from .tokens import AMINO_ACIDS, tokenize

__all__ = [
    "Mutation",
    "parse_mutations",
    "wildtype_marginal_scores",
    "masked_marginal_scores",
    "single_mutant_scores",
    "score_mutations",
    "apply_mutations",
    "plot_mutation_heatmap",
]

_MUT = re.compile(r"^([A-Z])(\d+)([A-Z])$")


@dataclass(frozen=True)
class Mutation:
    """One substitution: wild type, 0-based position, mutant."""

    wt: str
    pos: int
    mt: str

    def __str__(self) -> str:
        return f"{self.wt}{self.pos + 1}{self.mt}"


def parse_mutations(text: str, seq: str | None = None) -> tuple[Mutation, ...]:
    """Parse ``"A23G"`` or ``"A23G:K45R"`` (1-based positions) and check them against ``seq``.

    Raises ``ValueError`` naming the bad part (wrong format, unknown amino acid, a
    position past the end, a wild type that does not match the sequence, or the same
    position mutated twice).
    """
    muts = []
    for part in str(text).strip().split(":"):
        m = _MUT.match(part.strip().upper())
        if not m:
            raise ValueError(f"cannot read the mutation {part!r}: write wild type, 1-based position, mutant, e.g. 'A23G'")
        wt, pos, mt = m.group(1), int(m.group(2)) - 1, m.group(3)
        for a in (wt, mt):
            if a not in AMINO_ACIDS:
                raise ValueError(f"{part!r}: {a!r} is not one of the 20 amino acids {AMINO_ACIDS}")
        if pos < 0:
            raise ValueError(f"{part!r}: positions are 1-based (the first residue is 1)")
        if seq is not None:
            if pos >= len(seq):
                raise ValueError(f"{part!r}: position {pos + 1} is past the end of the sequence ({len(seq)} residues)")
            if seq[pos].upper() != wt:
                raise ValueError(
                    f"{part!r}: the sequence has {seq[pos]!r} at position {pos + 1}, not {wt!r} "
                    "(positions are 1-based; is the numbering offset from the sequence?)"
                )
        muts.append(Mutation(wt, pos, mt))
    if len({m.pos for m in muts}) != len(muts):
        raise ValueError(f"{text!r} mutates the same position twice")
    return tuple(muts)


def apply_mutations(seq: str, mutations: str | Iterable[Mutation]) -> str:
    """The mutant sequence."""
    muts = parse_mutations(mutations, seq) if isinstance(mutations, str) else tuple(mutations)
    s = list(seq)
    for m in muts:
        s[m.pos] = m.mt
    return "".join(s)


def _wt_index(seq: str) -> np.ndarray:
    idx = np.array([AMINO_ACIDS.find(a) for a in seq.upper()])
    if (idx < 0).any():
        bad = int(np.flatnonzero(idx < 0)[0])
        raise ValueError(
            f"mutation scores need the 20 standard amino acids; position {bad + 1} is {seq[bad]!r}"
        )
    return idx


def _log_ratio(logp: np.ndarray, seq: str) -> np.ndarray:
    wt = _wt_index(seq)
    return logp - logp[np.arange(len(seq)), wt][:, None]


def wildtype_marginal_scores(model, seq: str) -> np.ndarray:
    """``log p(mt | x) - log p(wt | x)`` from one unmasked pass: an ``(L, 20)`` table.

    Columns follow :data:`AMINO_ACIDS`; the wild-type entry of every row is 0.
    """
    _wt_index(seq)
    logits = _forward_logits(model, jnp.asarray(tokenize(seq)))
    logp = np.asarray(aa_log_probs(logits[1:-1]))
    return _log_ratio(logp, seq)


def masked_marginal_scores(model, seq: str, *, batch_size: int | None = None) -> np.ndarray:
    """``log p(mt | x_{-i}) - log p(wt | x_{-i})`` with position ``i`` masked: an ``(L, 20)`` table.

    The L masked passes run ``batch_size`` at a time (default: as many as fit, see
    :func:`~workshop_protein.mlm.masked_chunk_size`). Columns follow
    :data:`AMINO_ACIDS`; the wild-type entry of every row is 0.
    """
    _wt_index(seq)
    return _log_ratio(masked_marginals(model, seq, batch_size=batch_size), seq)


def single_mutant_scores(model, seq: str, method: str = "masked_marginal", *, batch_size: int | None = None) -> np.ndarray:
    """The full ``(L, 20)`` table by ``method``: ``"masked_marginal"`` or ``"wildtype_marginal"``."""
    if method == "masked_marginal":
        return masked_marginal_scores(model, seq, batch_size=batch_size)
    if method == "wildtype_marginal":
        return wildtype_marginal_scores(model, seq)
    raise ValueError(f"method must be 'masked_marginal' or 'wildtype_marginal', got {method!r}")


def score_mutations(table: np.ndarray, seq: str, mutations: Sequence[str] | str) -> np.ndarray:
    """Additive scores of (multi-)mutants from a single-mutant table.

    Arguments:
        table: ``(L, 20)`` scores from :func:`masked_marginal_scores` or
            :func:`wildtype_marginal_scores` for ``seq``.
        seq: the wild-type sequence.
        mutations: ``"A23G"``, ``"A23G:K45R"``, or a list of them.

    Returns:
        One score per entry of ``mutations`` (a float array).
    """
    table = np.asarray(table)
    if table.shape != (len(seq), 20):
        raise ValueError(f"the table has shape {table.shape}; for this sequence it must be ({len(seq)}, 20)")
    items = [mutations] if isinstance(mutations, str) else list(mutations)
    out = np.empty(len(items))
    for k, text in enumerate(items):
        out[k] = sum(table[m.pos, AMINO_ACIDS.index(m.mt)] for m in parse_mutations(text, seq))
    return out


def plot_mutation_heatmap(
    seq: str,
    table: np.ndarray,
    path=None,
    *,
    title: str = "Mutation effects (masked marginal)",
    quality: str | None = None,
):
    """Heatmap of an ``(L, 20)`` score table on a diverging scale centred at 0.

    Red: the mutant is less likely than the wild type (likely deleterious); blue: more
    likely; white: no change. The limits are symmetric (``±`` the largest magnitude), so
    equal colours mean equal magnitudes on both sides. Wild-type cells (0 by definition)
    are outlined in black.

    Arguments:
        seq: the wild-type sequence.
        table: ``(L, 20)`` scores, columns in :data:`AMINO_ACIDS` order.
        path: save the figure there (and close it) when given.
        title: the title (name the model in it).
        quality: an optional line under the title saying how good the scores are, e.g.
            ``"Spearman 0.42 vs BLOSUM62 0.30 on GB1 DMS"``.

    Returns:
        The matplotlib figure; its first axes hold the image (``norm.vmin == -norm.vmax``).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Patch, Rectangle

    table = np.asarray(table, np.float64)
    n = table.shape[0]
    wt = _wt_index(seq[:n])
    lim = float(np.nanmax(np.abs(table))) if np.isfinite(table).any() else 0.0
    lim = lim or 1.0
    fig, ax = plt.subplots(figsize=(max(6, 0.18 * n + 2), 4.4))
    im = ax.imshow(table.T, aspect="auto", cmap="RdBu", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_yticks(range(20), list(AMINO_ACIDS), fontsize=7)
    ax.set_ylabel("mutant amino acid")
    ax.set_xlabel("wild-type residue and position (1-based)")
    step = max(1, n // 40)
    ax.set_xticks(range(0, n, step), [f"{seq[i]}{i + 1}" for i in range(0, n, step)], rotation=90, fontsize=7)
    boxes = [Rectangle((i - 0.5, w - 0.5), 1, 1) for i, w in enumerate(wt)]
    ax.add_collection(PatchCollection(boxes, facecolor="none", edgecolor="black", linewidth=0.7))
    ax.legend(handles=[Patch(facecolor="white", edgecolor="black", label="wild type (score 0)")],
              loc="upper left", bbox_to_anchor=(1.0, 1.12), fontsize=7, frameon=False)
    bar = fig.colorbar(im, ax=ax, pad=0.02)
    bar.set_label("log p(mutant) − log p(wild type)\nred: less likely than wild type", fontsize=8)
    ax.set_title(title if not quality else f"{title}\n{quality}", fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
    return fig
