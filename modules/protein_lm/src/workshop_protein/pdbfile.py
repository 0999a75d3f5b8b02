"""Cα traces as PDB files, so a fold can be opened in PyMOL, ChimeraX or Mol*.

The PDB format is fixed-column text: every field of an ``ATOM`` record sits in given
columns (wwPDB format 3.3, "Coordinate Section"). A Cα trace needs only these:

=========  ==============================  ================================
columns    field                           here
=========  ==============================  ================================
 1-6       record name                     ``ATOM  ``
 7-11      atom serial number              1, 2, ... (right-justified)
13-16      atom name                       `` CA `` (Cα, not calcium ``CA  ``)
18-20      residue name                    three-letter code (``UNK`` for X)
22         chain identifier                ``A``
23-26      residue sequence number         1-based position
31-54      x, y, z (3 × Real(8.3))         Å, three decimals
55-60      occupancy (Real(6.2))           1.00
61-66      temperature factor (Real(6.2))  ``bfactors`` (a per-residue number)
77-78      element symbol, right-justified `` C``
=========  ==============================  ================================

Consecutive Cα atoms are 3.8 Å apart, too far for a viewer to guess a bond, so the
writer adds ``CONECT`` records along the chain: the trace then shows as a connected line
in every viewer, in any representation.

Example::

    write_ca_pdb("fold.pdb", coords, "MKTAYIAKQR", remarks=["folded from predicted contacts"])
    coords_back, sequence_back = read_ca_pdb("fold.pdb")
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Iterable

import numpy as np

__all__ = ["write_ca_pdb", "read_ca_pdb", "THREE_LETTER"]

#: One-letter to three-letter amino-acid codes (``X`` is ``UNK``, an unknown residue).
THREE_LETTER = {
    "A": "ALA", "R": "ARG", "N": "ASN", "D": "ASP", "C": "CYS", "Q": "GLN", "E": "GLU", "G": "GLY",
    "H": "HIS", "I": "ILE", "L": "LEU", "K": "LYS", "M": "MET", "F": "PHE", "P": "PRO", "S": "SER",
    "T": "THR", "W": "TRP", "Y": "TYR", "V": "VAL", "X": "UNK",
}
_ONE_LETTER = {three: one for one, three in THREE_LETTER.items()}


def _fits(values: np.ndarray, width: int, decimals: int) -> bool:
    # The largest magnitudes a fixed-width field can hold: 8.3 -> [-999.999, 9999.999].
    return bool(np.all(values < 10 ** (width - decimals - 1)) and np.all(values > -(10 ** (width - decimals - 2))))


def write_ca_pdb(
    path: str | os.PathLike,
    coords,
    sequence: str,
    *,
    bfactors=None,
    remarks: Iterable[str] = (),
    chain: str = "A",
) -> Path:
    """Write a Cα trace as a PDB file (``REMARK``, ``ATOM``, ``TER``, ``CONECT``, ``END``).

    Arguments:
        path: the file to write.
        coords: ``(L, 3)`` Cα coordinates in Å.
        sequence: the ``L`` residues, one-letter codes.
        bfactors: optional ``(L,)`` numbers for the temperature-factor column (e.g. a
            per-residue error in Å); viewers can colour by it. Default 0.
        remarks: free-text lines, written as ``REMARK 999`` records (wrapped at 68 characters).
        chain: the one-character chain identifier.

    Returns:
        The path written.

    Raises:
        ValueError: shapes disagree, an unknown residue letter, or a number that does
            not fit its fixed-width column.
    """
    x = np.asarray(coords, np.float64)
    L = len(sequence)
    if x.shape != (L, 3):
        raise ValueError(f"coords has shape {x.shape}; for a sequence of {L} residues it must be ({L}, 3)")
    if not 1 <= L <= 9999:
        raise ValueError(f"a PDB chain holds 1 to 9999 residues, not {L}")
    if len(chain) != 1:
        raise ValueError(f"the chain identifier is one character, not {chain!r}")
    unknown = sorted(set(sequence.upper()) - set(THREE_LETTER))
    if unknown:
        raise ValueError(f"unknown residue letters {unknown}; use the 20 amino acids or X")
    if not np.all(np.isfinite(x)) or not _fits(x, 8, 3):
        raise ValueError("coordinates must be finite and within [-999.999, 9999.999] Å to fit the PDB columns")
    b = np.zeros(L) if bfactors is None else np.asarray(bfactors, np.float64)
    if b.shape != (L,):
        raise ValueError(f"bfactors has shape {b.shape}; it must be ({L},)")
    if not np.all(np.isfinite(b)) or not _fits(b, 6, 2):
        raise ValueError("bfactors must be finite and within [-99.99, 999.99] to fit the PDB columns")

    lines = []
    for remark in remarks:
        for piece in textwrap.wrap(str(remark), 68) or [""]:
            lines.append(f"REMARK 999 {piece}".rstrip())
    for k, (aa, (cx, cy, cz), bk) in enumerate(zip(sequence.upper(), x, b), start=1):
        lines.append(
            f"ATOM  {k:5d}  CA  {THREE_LETTER[aa]} {chain}{k:4d}    "
            f"{cx:8.3f}{cy:8.3f}{cz:8.3f}{1.0:6.2f}{bk:6.2f}          {'C':>2s}  "
        )
    last = THREE_LETTER[sequence[-1].upper()]
    lines.append(f"TER   {L + 1:5d}      {last} {chain}{L:4d}")
    for k in range(1, L):
        lines.append(f"CONECT{k:5d}{k + 1:5d}")
    lines.append("END")
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


def read_ca_pdb(path: str | os.PathLike, *, chain: str | None = None) -> tuple[np.ndarray, str]:
    """The Cα atoms of a PDB file: ``(coords (L, 3), sequence)``, in file order.

    Reads the fixed columns of ``ATOM`` records named `` CA `` (first model only, first
    alternate location only), from any chain or only ``chain``; residues unknown to
    :data:`THREE_LETTER` read as ``X``. Works on the files :func:`write_ca_pdb` writes and
    on full-atom files (e.g. from ESMFold or the PDB).
    """
    coords, seq = [], []
    for line in Path(path).read_text().splitlines():
        if line.startswith("ENDMDL"):
            break
        if not line.startswith("ATOM  ") or line[12:16] != " CA " or line[16] not in (" ", "A"):
            continue
        if chain is not None and line[21] != chain:
            continue
        coords.append([float(line[30:38]), float(line[38:46]), float(line[46:54])])
        seq.append(_ONE_LETTER.get(line[17:20], "X"))
    return np.asarray(coords, np.float64).reshape(-1, 3), "".join(seq)
