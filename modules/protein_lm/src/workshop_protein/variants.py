"""Scoring a table of protein variants against their wild type (a DMS-style CSV, or a FASTA).

A variant is written as in ProteinGym and most deep mutational scans: ``A23G`` (wild
type, 1-based position, mutant), several joined by ``:`` for a multi-mutant
(``A4G:R10W``); ``WT`` (or ``_wt``) marks the wild type itself. A FASTA of full mutant
sequences works too: each record is compared with the wild type, position by position.

Every variant is checked against the wild-type sequence before the model runs, and a
mismatch names the row, so that an off-by-one numbering is caught, not scored.

Scores come from :mod:`workshop_protein.mutations`: the single-mutant table of the wild
type (masked marginal: L masked passes; wild-type marginal: one pass), and a
multi-mutant's score is the sum of its singles.

Example::

    table = read_variants("dms.csv", column="mutant")
    scores = score_variants(model, wildtype, table.variants, method="masked")
    write_scores("scored.csv", table, {"score_masked_marginal": scores})
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .embeddings import FastaError, _decode, read_fasta
from .mutations import Mutation, parse_mutations, score_mutations, single_mutant_scores
from .tokens import AMINO_ACIDS, MAX_RESIDUES

__all__ = ["VariantTable", "VariantError", "MissingColumn", "METHODS", "read_variants", "check_variants", "score_variants", "write_scores"]

#: Short method names and the scores of :mod:`workshop_protein.mutations` they use.
METHODS = {"masked": "masked_marginal", "wildtype": "wildtype_marginal"}
_WILD_TYPE = {"wt", "_wt", "wildtype", "wild_type", "wild-type"}
_FASTA_SUFFIXES = {".fa", ".fasta", ".faa", ".fas"}


class VariantError(ValueError):
    """A variant table that cannot be scored (the message names the file, row and variant)."""


class MissingColumn(VariantError):
    """The CSV has no column of that name (``columns`` lists those it has)."""

    def __init__(self, message: str, columns: Sequence[str]):
        super().__init__(message)
        self.columns = tuple(columns)


@dataclass(frozen=True)
class VariantTable:
    """The variants of a file, with everything needed to write them back with scores.

    Attributes:
        source: the file read.
        columns: its columns, in order (``("name", "variant")`` for a FASTA).
        rows: one ``{column: text}`` per variant.
        column: the column holding the variants.
        where: for each row, how a message names it (``"row 3 (line 4)"``, ``"record 'm1' (line 7)"``).
    """

    source: str
    columns: tuple[str, ...]
    rows: tuple[dict[str, str], ...]
    column: str
    where: tuple[str, ...]

    @property
    def variants(self) -> list[str]:
        return [r[self.column] for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)


def _is_fasta(path: Path, text: str) -> bool:
    return path.suffix.lower() in _FASTA_SUFFIXES or text.lstrip().startswith(">")


def _mutations_between(wildtype: str, mutant: str) -> str:
    diffs = [f"{w}{i + 1}{m}" for i, (w, m) in enumerate(zip(wildtype, mutant)) if w != m]
    return ":".join(diffs) or "WT"


def read_variants(path: str | os.PathLike, *, column: str = "variant", wildtype: str | None = None) -> VariantTable:
    """Read variants from a CSV/TSV (one per row, in ``column``) or a FASTA of mutant sequences.

    Arguments:
        path: a ``.csv`` or ``.tsv`` file with a header row (the delimiter is detected),
            or a FASTA file (``.fasta``, ``.fa``, ``.faa``, or content starting with ``>``).
        column: the CSV column holding the variants (``"A23G"``, ``"A4G:R10W"``, ``"WT"``).
        wildtype: the wild-type sequence; needed for a FASTA, whose records are compared
            with it to name their substitutions.

    Raises:
        VariantError: no such column, an empty cell, or (FASTA) a record whose length
            differs from the wild type's; the message names the row.
        embeddings.FastaError: a FASTA that cannot be read.
    """
    path = Path(path)
    try:
        text = _decode(path, "variants file")
    except FastaError as exc:  # not text at all: neither a CSV nor a FASTA
        raise VariantError(str(exc)) from None
    if not text.strip():
        raise VariantError(f"{path} is empty: give a CSV with a header row and a '{column}' column, or a FASTA")
    if _is_fasta(path, text):
        if wildtype is None:
            raise VariantError(f"{path} is a FASTA of mutant sequences: the wild type is needed to compare them with")
        rows, where = [], []
        for r in read_fasta(path):
            if len(r.sequence) != len(wildtype):
                raise VariantError(
                    f"{path}: record {r.name!r} has {len(r.sequence)} residues, the wild type {len(wildtype)}: only "
                    "substitutions can be scored (no insertions or deletions)"
                )
            rows.append({"name": r.name, "variant": _mutations_between(wildtype.upper(), r.sequence)})
            where.append(f"record {r.name!r}")
        return VariantTable(str(path), ("name", "variant"), tuple(rows), "variant", tuple(where))
    delimiter = "\t" if path.suffix.lower() == ".tsv" else _sniff(text)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header: list[str] | None = None
    rows, where = [], []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = [c.strip() for c in cells]
            if column not in header:
                raise MissingColumn(f"{path} has no column {column!r}; its columns are {', '.join(header)}", header)
            continue
        line = reader.line_num
        label = f"row {len(rows) + 1} (line {line})"
        if len(cells) > len(header):
            raise VariantError(f"{path}, {label}: {len(cells)} cells for {len(header)} columns (a stray delimiter?)")
        row = dict(zip(header, [c.strip() for c in cells] + [""] * (len(header) - len(cells))))
        if not row[column]:
            raise VariantError(f"{path}, {label}: the {column!r} cell is empty (write 'WT' for the wild type)")
        rows.append(row)
        where.append(label)
    if header is None or not rows:
        raise VariantError(f"{path} has no variants (a header row, then one variant per row)")
    return VariantTable(str(path), tuple(header), tuple(rows), column, tuple(where))


def _sniff(text: str) -> str:
    first = text.lstrip().splitlines()[0]
    try:
        return csv.Sniffer().sniff(first, delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def check_variants(table: VariantTable, wildtype: str, *, show: int = 5) -> list[tuple[Mutation, ...]]:
    """Parse every variant and check it against ``wildtype``: the mutations of each row.

    Raises:
        VariantError: naming the first ``show`` bad rows (wrong format, a position past
            the end, a wild-type residue that differs from the sequence) and how many there are.
    """
    parsed, problems = [], []
    for text, where in zip(table.variants, table.where):
        if text.strip().lower() in _WILD_TYPE:
            parsed.append(())
            continue
        try:
            parsed.append(parse_mutations(text, wildtype))
        except ValueError as exc:  # the message starts with the bad part; name the whole variant when it differs
            problems.append(f"{where}: {exc}" if str(exc).startswith(repr(text)) else f"{where}, variant {text!r}: {exc}")
    if problems:
        more = f"\n  ... and {len(problems) - show} more" if len(problems) > show else ""
        raise VariantError(f"{table.source}: {len(problems)} of {len(table)} variants do not fit the wild type "
                           f"({len(wildtype)} residues):\n  " + "\n  ".join(problems[:show]) + more)
    return parsed


def score_variants(model, wildtype: str, variants: Sequence[str], *, method: str = "masked", batch_size: int = 16) -> np.ndarray:
    """Zero-shot scores of variants of ``wildtype``: log p(mutant) - log p(wild type), summed over a multi-mutant.

    Arguments:
        model: an esm2quinox ESM2.
        wildtype: the wild-type sequence (the 20 standard amino acids, at most 1022).
        variants: ``"A23G"``, ``"A4G:R10W"`` or ``"WT"`` (scored 0), as :func:`check_variants` accepts.
        method: ``"masked"`` (masked marginal: one masked pass per position, the better
            score) or ``"wildtype"`` (wild-type marginal: one pass).
        batch_size: masked passes run together.

    Returns:
        One float per variant; negative: less likely than the wild type.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    wildtype = wildtype.upper()
    bad = next((i for i, a in enumerate(wildtype) if a not in AMINO_ACIDS), None)
    if bad is not None:
        raise ValueError(f"the wild type has {wildtype[bad]!r} at position {bad + 1}; scores need the 20 standard "
                         "amino acids")
    if len(wildtype) > MAX_RESIDUES:
        raise ValueError(f"the wild type has {len(wildtype)} residues; ESM2 was trained on at most {MAX_RESIDUES}. "
                         "Score the domain that holds the variants (and renumber them from its first residue)")
    out = np.zeros(len(variants))
    mutants = [i for i, v in enumerate(variants) if v.strip().lower() not in _WILD_TYPE]
    if mutants:
        table = single_mutant_scores(model, wildtype, METHODS[method], batch_size=batch_size)
        out[mutants] = score_mutations(table, wildtype, [variants[i] for i in mutants])
    return out


def write_scores(path: str | os.PathLike, table: VariantTable, columns: Mapping[str, Sequence]) -> Path:
    """Write ``table`` back as CSV with extra ``columns`` (name -> one value per row).

    A column that already exists (scoring a scored file again) has its values replaced.
    The file is replaced atomically.
    """
    header = list(table.columns) + [c for c in columns if c not in table.columns]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for k, row in enumerate(table.rows):
            extra = {c: _cell(v[k]) for c, v in columns.items()}
            w.writerow([extra.get(c, row.get(c, "")) for c in header])
    tmp.replace(path)
    return path


def _cell(x) -> str:
    if isinstance(x, (float, np.floating)):
        return f"{float(x):.6g}"
    return str(x)
