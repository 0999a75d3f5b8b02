"""Baselines for zero-shot mutation scores that need no model: BLOSUM62 and amino-acid frequencies.

A language model's mutation score is only worth something if it beats what a table
lookup gives. Two such lookups, each as an ``(L, 20)`` table in the layout of
:func:`workshop_protein.mutations.masked_marginal_scores` (rows: positions, columns:
:data:`~workshop_protein.tokens.AMINO_ACIDS`), so that
:func:`~workshop_protein.mutations.score_mutations` scores multi-mutants additively:

* **BLOSUM62** (Henikoff & Henikoff 1992): ``B[wt, mt]``, the log-odds (half-bit units)
  of seeing ``wt`` and ``mt`` aligned in conserved blocks. The matrix below is the NCBI
  BLOSUM62 file (``ftp.ncbi.nih.gov/blast/matrices/BLOSUM62``, public domain), rows and
  columns in NCBI's order ``ARNDCQEGHILKMFPSTWYV``; ``datasets/protein_dms.py`` checks
  it entry by entry against the copy of that file in Biopython 1.85's source.
* **amino-acid frequency**: ``log f(mt) - log f(wt)``, with ``f`` the composition of the
  proteome the embedded model was pretrained on (2,086 proteins, 674,730 residues of
  the bacterial genome ``938293.PRJEB85.HG003687`` shipped as test data in pyhmmer
  0.12.3; proteins of at least 30 standard residues, as in
  ``datasets/protein_pretrain_embedded.py``). It is the score a model that learned
  nothing but composition would give, so the embedded model should beat it.

Example::

    table = blosum62_table(seq)                         # (L, 20)
    score_mutations(table, seq, ["A23G", "A23G:K45R"])
"""

from __future__ import annotations

import numpy as np

from .tokens import AMINO_ACIDS

__all__ = [
    "BLOSUM62_ORDER",
    "BLOSUM62_ROWS",
    "PROTEOME_COUNTS",
    "blosum62",
    "blosum62_matrix",
    "proteome_frequencies",
    "blosum62_table",
    "frequency_table",
]

#: The order of rows and columns of :data:`BLOSUM62_ROWS` (the NCBI file's order).
BLOSUM62_ORDER = "ARNDCQEGHILKMFPSTWYV"

#: The NCBI BLOSUM62 matrix over the 20 standard amino acids (public domain), one row per
#: amino acid of :data:`BLOSUM62_ORDER`. The file's B, Z, X and * rows are not needed here.
BLOSUM62_ROWS: dict[str, tuple[int, ...]] = {
    #     A   R   N   D   C   Q   E   G   H   I   L   K   M   F   P   S   T   W   Y   V
    "A": (4, -1, -2, -2, 0, -1, -1, 0, -2, -1, -1, -1, -1, -2, -1, 1, 0, -3, -2, 0),
    "R": (-1, 5, 0, -2, -3, 1, 0, -2, 0, -3, -2, 2, -1, -3, -2, -1, -1, -3, -2, -3),
    "N": (-2, 0, 6, 1, -3, 0, 0, 0, 1, -3, -3, 0, -2, -3, -2, 1, 0, -4, -2, -3),
    "D": (-2, -2, 1, 6, -3, 0, 2, -1, -1, -3, -4, -1, -3, -3, -1, 0, -1, -4, -3, -3),
    "C": (0, -3, -3, -3, 9, -3, -4, -3, -3, -1, -1, -3, -1, -2, -3, -1, -1, -2, -2, -1),
    "Q": (-1, 1, 0, 0, -3, 5, 2, -2, 0, -3, -2, 1, 0, -3, -1, 0, -1, -2, -1, -2),
    "E": (-1, 0, 0, 2, -4, 2, 5, -2, 0, -3, -3, 1, -2, -3, -1, 0, -1, -3, -2, -2),
    "G": (0, -2, 0, -1, -3, -2, -2, 6, -2, -4, -4, -2, -3, -3, -2, 0, -2, -2, -3, -3),
    "H": (-2, 0, 1, -1, -3, 0, 0, -2, 8, -3, -3, -1, -2, -1, -2, -1, -2, -2, 2, -3),
    "I": (-1, -3, -3, -3, -1, -3, -3, -4, -3, 4, 2, -3, 1, 0, -3, -2, -1, -3, -1, 3),
    "L": (-1, -2, -3, -4, -1, -2, -3, -4, -3, 2, 4, -2, 2, 0, -3, -2, -1, -2, -1, 1),
    "K": (-1, 2, 0, -1, -3, 1, 1, -2, -1, -3, -2, 5, -1, -3, -1, 0, -1, -3, -2, -2),
    "M": (-1, -1, -2, -3, -1, 0, -2, -3, -2, 1, 2, -1, 5, 0, -2, -1, -1, -1, -1, 1),
    "F": (-2, -3, -3, -3, -2, -3, -3, -3, -1, 0, 0, -3, 0, 6, -4, -2, -2, 1, 3, -1),
    "P": (-1, -2, -2, -1, -3, -1, -1, -2, -2, -3, -3, -1, -2, -4, 7, -1, -1, -4, -3, -2),
    "S": (1, -1, 1, 0, -1, 0, 0, 0, -1, -2, -2, 0, -1, -2, -1, 4, 1, -3, -2, -2),
    "T": (0, -1, 0, -1, -1, -1, -1, -2, -2, -1, -1, -1, -1, -2, -1, 1, 5, -2, -2, 0),
    "W": (-3, -3, -4, -4, -2, -2, -3, -2, -2, -3, -2, -3, -1, 1, -4, -3, -2, 11, 2, -3),
    "Y": (-2, -2, -2, -3, -2, -1, -2, -3, 2, -1, -1, -2, -1, 3, -3, -2, -2, 2, 7, -1),
    "V": (0, -3, -3, -3, -1, -2, -2, -3, -3, 3, 1, -2, 1, -1, -2, -2, 0, -3, -1, 4),
}  # fmt: skip

#: Residue counts of the embedded model's pretraining proteome (see the module docstring).
PROTEOME_COUNTS: dict[str, int] = {
    "A": 40561, "C": 4871, "D": 46914, "E": 51151, "F": 30316, "G": 41495, "H": 8894,
    "I": 62889, "K": 58475, "L": 61428, "M": 16845, "N": 41664, "P": 18842, "Q": 16691,
    "R": 23803, "S": 43109, "T": 32532, "V": 39783, "W": 4667, "Y": 29800,
}  # fmt: skip


def blosum62(a: str, b: str) -> int:
    """The BLOSUM62 score of aligning amino acids ``a`` and ``b`` (e.g. ``blosum62("W", "W") == 11``)."""
    try:
        return BLOSUM62_ROWS[a.upper()][BLOSUM62_ORDER.index(b.upper())]
    except (KeyError, ValueError):
        raise ValueError(f"BLOSUM62 is tabulated here for the 20 amino acids {AMINO_ACIDS}; got {a!r}, {b!r}") from None


def blosum62_matrix() -> np.ndarray:
    """BLOSUM62 as a ``(20, 20)`` integer array, rows and columns in the order of :data:`AMINO_ACIDS`."""
    return np.array([[blosum62(a, b) for b in AMINO_ACIDS] for a in AMINO_ACIDS], dtype=np.int64)


def proteome_frequencies() -> np.ndarray:
    """Amino-acid frequencies of :data:`PROTEOME_COUNTS` in the order of :data:`AMINO_ACIDS` (they sum to 1)."""
    counts = np.array([PROTEOME_COUNTS[a] for a in AMINO_ACIDS], dtype=np.float64)
    return counts / counts.sum()


def _wt_index(seq: str) -> np.ndarray:
    idx = np.array([AMINO_ACIDS.find(a) for a in seq.upper()])
    if (idx < 0).any():
        bad = int(np.flatnonzero(idx < 0)[0])
        raise ValueError(f"baseline tables need the 20 standard amino acids; position {bad + 1} is {seq[bad]!r}")
    return idx


def blosum62_table(seq: str) -> np.ndarray:
    """``B[wt_i, a]`` for every position ``i`` and amino acid ``a``: an ``(L, 20)`` float table.

    Unlike the model tables, the wild-type entry is ``B[wt, wt]`` (positive), not 0; only
    substitutions (``a != wt``) are ever scored.
    """
    return blosum62_matrix()[_wt_index(seq)].astype(np.float64)


def frequency_table(seq: str) -> np.ndarray:
    """``log f(a) - log f(wt_i)`` with the frequencies of :func:`proteome_frequencies`: an ``(L, 20)`` table."""
    logf = np.log(proteome_frequencies())
    return logf[None, :] - logf[_wt_index(seq)][:, None]
