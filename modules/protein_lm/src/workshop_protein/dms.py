"""Deep mutational scans (DMS): measured fitness of many variants of one protein.

A DMS table has one row per variant, written as in ProteinGym and MaveDB's protein
notation: ``A23G`` (wild type, position, mutant) or ``A23G:R30W`` for a multi-mutant,
and a measured number (fitness, binding, toxicity, ...). :class:`DMSAssay` holds such a
table with its wild-type sequence; positions in ``variants`` are always 1-based in
``wild_type``, and ``offset`` converts them to the paper's numbering
(paper residue = position + offset).

Three published scans ship with the module (``datasets/protein_dms.md``)::

    assay = load_assay("gb1")          # also "gb1_additive_singles", "abeta42", "tdp43"
    print(assay.summary())

and :func:`read_dms_table` reads your own CSV/TSV. It refuses what it cannot read
unambiguously (missing or duplicated columns, text in the fitness column, infinite
fitness, a variant whose wild-type residue is not the sequence's, a position outside the
sequence, the same variant twice) with a :class:`DMSTableError` naming the line and
column; it drops only what is safe to drop (empty fitness, stop codons, synonymous
variants, the wild type itself, repeated header lines, blank lines) and says so in
``assay.dropped``::

    assay = read_dms_table("my_scan.csv", wild_type=seq, variant_column="mutant",
                           fitness_column="DMS_score", offset=0)
    print(assay.dropped)               # e.g. "12 rows dropped: 12 fitness missing (lines 5, 9, ...)"
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np

from .tokens import AMINO_ACIDS

__all__ = [
    "ASSAYS",
    "MEASURED_ASSAYS",
    "DMSTableError",
    "DroppedRows",
    "DMSAssay",
    "load_assay",
    "read_dms_table",
]

#: The assays shipped with the module (``load_assay(name)``).
ASSAYS = ("gb1", "gb1_additive_singles", "abeta42", "tdp43")
#: Those whose values are measurements (``gb1_additive_singles`` is estimated from doubles).
MEASURED_ASSAYS = ("gb1", "abeta42", "tdp43")

_PART = re.compile(r"^([A-Za-z*])(-?\d+)([A-Za-z*=])$")
_WILD_TYPE_WORDS = {"wt", "_wt", "wildtype", "wild_type", "wild-type", "wild type"}
_MISSING_WORDS = {"", "nan", "na", "n/a", "null", "none"}


class DMSTableError(ValueError):
    """A DMS table cannot be read unambiguously; the message names the line and the column.

    Attributes:
        line: the 1-based line of the file (``None`` when the problem is not one line).
        column: the column's name (``None`` when not one column).
    """

    def __init__(self, message: str, *, line: int | None = None, column: str | None = None):
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class DroppedRows:
    """What a reader left out, and why: ``reasons`` maps a reason to the 1-based lines dropped for it."""

    reasons: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.reasons.values())

    def count(self, reason: str) -> int:
        return len(self.reasons.get(reason, ()))

    def __bool__(self) -> bool:
        return self.total > 0

    def __str__(self) -> str:
        if not self:
            return "no rows dropped"
        parts = []
        for reason, lines in self.reasons.items():
            shown = ", ".join(str(n) for n in lines[:5]) + (", ..." if len(lines) > 5 else "")
            parts.append(f"{len(lines)} {reason} (line{'s' if len(lines) > 1 else ''} {shown})")
        return f"{self.total} row{'s' if self.total > 1 else ''} dropped: " + "; ".join(parts)


def _canonical(text: str, wild_type: str, offset: int) -> str:
    """``"R30W:A23G"`` -> ``"A23G:R30W"`` in wild-type positions; ValueError on anything else."""
    muts = []
    for part in text.split(":"):
        m = _PART.match(part.strip())
        if not m:
            raise ValueError(f"cannot read {part.strip()!r}: write wild type, position, mutant (e.g. 'A23G'), "
                             "and join several with ':' (e.g. 'A23G:R30W')")
        wt, number, mt = m.group(1).upper(), int(m.group(2)), m.group(3).upper()
        pos = number - offset
        if not 1 <= pos <= len(wild_type):
            raise ValueError(f"{part.strip()!r}: residue {number} is position {pos} of the wild type "
                             f"(offset {offset}), outside 1..{len(wild_type)}")
        if wild_type[pos - 1] != wt:
            raise ValueError(f"{part.strip()!r}: the wild type has {wild_type[pos - 1]!r} at position {pos}"
                             f"{f' (residue {number})' if offset else ''}, not {wt!r}; is the numbering offset? "
                             "(pass offset=first residue number - 1)")
        for a in (wt, mt):
            if a not in AMINO_ACIDS + "*=":
                raise ValueError(f"{part.strip()!r}: {a!r} is not one of the 20 amino acids {AMINO_ACIDS}")
        muts.append((pos, wt, mt))
    if len({p for p, _, _ in muts}) != len(muts):
        raise ValueError(f"{text!r} mutates the same position twice")
    return ":".join(f"{wt}{pos}{mt}" for pos, wt, mt in sorted(muts))


@dataclass(frozen=True, eq=False)
class DMSAssay:
    """One deep mutational scan: a wild type and the measured fitness of its variants.

    Arguments:
        name: a short name (``"gb1"``).
        wild_type: the wild-type sequence the variants refer to.
        variants: ``"A23G"`` / ``"A23G:R30W"``, positions 1-based in ``wild_type``, sorted
            within a variant.
        fitness: one number per variant (higher: more of what the assay measures).
        offset: the paper's residue number of position ``p`` is ``p + offset``.
        metadata: what the numbers are, where they come from (``title``, ``fitness``,
            ``citation``, ...).
        dropped: rows the reader left out and why.

    ``n_mutations`` (substitutions per variant) is computed; every variant is checked
    against ``wild_type`` when the assay is made.
    """

    name: str
    wild_type: str
    variants: tuple[str, ...]
    fitness: np.ndarray
    offset: int = 0
    metadata: dict = field(default_factory=dict)
    dropped: DroppedRows = field(default_factory=DroppedRows)
    n_mutations: np.ndarray = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "variants", tuple(self.variants))
        fitness = np.asarray(self.fitness, dtype=np.float64)
        if fitness.shape != (len(self.variants),):
            raise ValueError(f"{len(self.variants)} variants but fitness has shape {fitness.shape}")
        bad = np.flatnonzero(~np.isfinite(fitness))
        if bad.size:
            shown = ", ".join(f"{self.variants[i]} ({fitness[i]})" for i in bad[:5])
            raise ValueError(f"{bad.size} variant(s) have no finite fitness: {shown}{', ...' if bad.size > 5 else ''}; "
                             "leave them out (read_dms_table drops such rows and lists them in assay.dropped)")
        for v in self.variants:
            if _canonical(v, self.wild_type, 0) != v:
                raise ValueError(f"variant {v!r} is not written canonically (sorted by position, e.g. 'A4G:R10W')")
        object.__setattr__(self, "fitness", fitness)
        object.__setattr__(self, "n_mutations", np.array([v.count(":") + 1 for v in self.variants], dtype=np.int64))

    def __len__(self) -> int:
        return len(self.variants)

    @property
    def title(self) -> str:
        return self.metadata.get("title", self.name)

    def subset(self, which, name: str | None = None) -> DMSAssay:
        """The assay restricted to ``which`` (a boolean mask or indices)."""
        idx = np.flatnonzero(which) if np.asarray(which).dtype == bool else np.asarray(which, dtype=np.int64)
        return DMSAssay(name or self.name, self.wild_type, tuple(self.variants[i] for i in idx), self.fitness[idx],
                        self.offset, dict(self.metadata), self.dropped)

    def singles(self) -> DMSAssay:
        return self.subset(self.n_mutations == 1)

    def doubles(self) -> DMSAssay:
        return self.subset(self.n_mutations == 2)

    def paper_variant(self, variant: str) -> str:
        """A variant in the paper's numbering (``offset`` added): ``"Q1A"`` of GB1 -> ``"Q2A"``."""
        parts = [_PART.match(p) for p in variant.split(":")]
        return ":".join(f"{m.group(1)}{int(m.group(2)) + self.offset}{m.group(3)}" for m in parts)

    def mutant_sequence(self, variant: str) -> str:
        s = list(self.wild_type)
        for p in variant.split(":"):
            m = _PART.match(p)
            s[int(m.group(2)) - 1] = m.group(3)
        return "".join(s)

    def single_table(self) -> np.ndarray:
        """Measured fitness of the single mutants as an ``(L, 20)`` table (NaN: not measured or wild type)."""
        table = np.full((len(self.wild_type), 20), np.nan)
        for v, y, n in zip(self.variants, self.fitness, self.n_mutations):
            if n == 1:
                table[int(v[1:-1]) - 1, AMINO_ACIDS.index(v[-1])] = y
        return table

    def summary(self) -> str:
        counts = ", ".join(f"{int((self.n_mutations == k).sum())} with {k} mutation{'s' if k > 1 else ''}"
                           for k in np.unique(self.n_mutations))
        text = (f"{self.name}: {self.title}; wild type {len(self.wild_type)} residues "
                f"(position 1 = residue {1 + self.offset}); {len(self)} variants ({counts})")
        return f"{text}; {self.dropped}" if self.dropped else text


def _read_lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DMSTableError(f"{path}: a damaged gzip file ({e}): download or copy it again") from None
    try:
        return raw.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise DMSTableError(f"{path}: not UTF-8 text ({e}); save the table as UTF-8 CSV") from None


def read_dms_table(
    path,
    *,
    wild_type: str | None = None,
    variant_column: str = "variant",
    fitness_column: str = "fitness",
    offset: int | None = None,
    name: str | None = None,
    delimiter: str | None = None,
) -> DMSAssay:
    """Read a DMS table (CSV or TSV, optionally gzipped) into a :class:`DMSAssay`.

    Leading lines ``# key: value`` are read as metadata (the shipped tables give
    ``wild_type``, ``offset``, ``name``, ``title``, ``fitness``, ``citation`` there).

    Arguments:
        path: the file.
        wild_type: the sequence the variants refer to (default: the ``wild_type`` header line).
        variant_column, fitness_column: the columns to read (others are ignored).
        offset: the residue number of the sequence's first residue, minus 1 (default: the
            ``offset`` header line, else 0): ``A25G`` with ``offset=2`` is position 23.
        name: the assay's name (default: the ``name`` header line, else the file name).
        delimiter: ``","`` or ``"\\t"``; default: tab when the header has tabs and no commas.

    Returns:
        The assay; ``assay.dropped`` lists what was left out and why.

    Raises:
        DMSTableError: naming the line and column of the first problem.
    """
    path = Path(path)
    lines = _read_lines(path)
    meta, first = _metadata(lines)
    if first == len(lines):
        raise DMSTableError(f"{path}: no header line (the file is empty or only comments)", line=first or None)
    wild_type, offset = _wild_type_and_offset(path, meta, wild_type, offset)
    header_text = lines[first]
    if delimiter is None:
        delimiter = "\t" if "\t" in header_text and "," not in header_text else ","
    rows = csv.reader(io.StringIO("\n".join(lines[first:])), delimiter=delimiter)
    header = [h.strip() for h in next(rows)]
    columns = (variant_column, fitness_column)
    _check_columns(path, header, first + 1, columns)
    variants, fitness, dropped = _read_rows(path, rows, first, header, columns, wild_type, offset)
    report = DroppedRows({k: tuple(v) for k, v in dropped.items()})
    if not variants:
        raise DMSTableError(f"{path}: no variant left to read ({report})")
    name = name or meta.get("name") or path.name.split(".")[0]
    return DMSAssay(name, wild_type, tuple(variants), np.array(fitness), offset, meta, report)


def _metadata(lines: list[str]) -> tuple[dict[str, str], int]:
    # The leading '# key: value' lines, and the index of the first line after them.
    meta, first = {}, 0
    while first < len(lines) and lines[first].startswith("#"):
        key, sep, value = lines[first][1:].partition(":")
        if sep:
            meta[key.strip()] = value.strip()
        first += 1
    return meta, first


def _wild_type_and_offset(path: Path, meta: dict, wild_type: str | None, offset) -> tuple[str, int]:
    # The arguments, else the header lines; refused by name when unusable.
    wild_type = (wild_type if wild_type is not None else meta.get("wild_type", "")).strip().upper()
    if not wild_type:
        raise DMSTableError(f"{path}: give the wild-type sequence (wild_type=...); the file has no '# wild_type:' line")
    if bad := sorted(set(wild_type) - set(AMINO_ACIDS)):
        raise DMSTableError(f"{path}: the wild type contains {''.join(bad)!r}; only the 20 amino acids {AMINO_ACIDS}")
    given = meta.get("offset", 0) if offset is None else offset
    try:
        if isinstance(given, bool) or (isinstance(given, float) and not given.is_integer()):
            raise ValueError
        return wild_type, int(given)
    except (TypeError, ValueError):
        where = "its '# offset:' line" if offset is None else "offset="
        raise DMSTableError(f"{path}: the offset ({where}) is {given!r}, not a whole number: the residue number of "
                            "the wild type's first residue, minus 1") from None


def _check_columns(path: Path, header: list[str], header_line: int, columns: tuple[str, ...]) -> None:
    # Each column must be there exactly once.
    for col in columns:
        found = [i for i, h in enumerate(header) if h == col]
        if not found:
            raise DMSTableError(f"{path}: line {header_line}: no column {col!r}; the columns are {header}"
                                f"{' (is the delimiter right? pass delimiter=...)' if len(header) == 1 else ''}",
                                line=header_line, column=col)
        if len(found) > 1:
            raise DMSTableError(f"{path}: line {header_line}: columns {', '.join(str(i + 1) for i in found)} are all "
                                f"named {col!r}; rename all but one", line=header_line, column=col)


def _read_rows(path: Path, rows, first: int, header: list[str], columns: tuple[str, str], wild_type: str,
               offset: int) -> tuple[list[str], list[float], dict[str, list[int]]]:
    # The variants and their fitness, row by row; rows left out are listed by reason.
    variant_column, fitness_column = columns
    iv, jf = header.index(variant_column), header.index(fitness_column)
    dropped: dict[str, list[int]] = {}
    variants, fitness, seen = [], [], {}
    for row in rows:
        line = first + rows.line_num
        cells = [c.strip() for c in row]
        if not any(cells):
            dropped.setdefault("blank lines", []).append(line)
            continue
        if cells == header:
            dropped.setdefault("repeated header lines", []).append(line)
            continue
        if len(cells) != len(header):
            raise DMSTableError(f"{path}: line {line} has {len(cells)} fields, the header {len(header)}",
                                line=line, column=None)
        where = f"{path}: line {line}, column"
        text, value = cells[iv], cells[jf]
        if not text:
            raise DMSTableError(f"{where} {variant_column!r}: empty variant", line=line, column=variant_column)
        if text.lower() in _WILD_TYPE_WORDS:
            dropped.setdefault("wild-type rows (all zero-shot scores are 0 there)", []).append(line)
            continue
        try:
            variant = _canonical(text, wild_type, offset)
        except ValueError as e:
            raise DMSTableError(f"{where} {variant_column!r}: {e}", line=line, column=variant_column) from None
        if "*" in variant:
            dropped.setdefault("variants with a stop codon (models score amino acids only)", []).append(line)
            continue
        if "=" in variant or any(p[0] == p[-1] for p in variant.split(":")):
            dropped.setdefault("variants with a synonymous substitution", []).append(line)
            continue
        if value.lower() in _MISSING_WORDS:
            dropped.setdefault("rows with fitness missing", []).append(line)
            continue
        y = _fitness_value(value, f"{where} {fitness_column!r}", line, fitness_column)
        if variant in seen:
            raise DMSTableError(f"{where} {variant_column!r}: {text!r} is {variant!r} again (first on line "
                                f"{seen[variant]}); average or remove the repeats yourself", line=line,
                                column=variant_column)
        seen[variant] = line
        variants.append(variant)
        fitness.append(y)
    return variants, fitness, dropped


def _fitness_value(value: str, where: str, line: int, column: str) -> float:
    # A finite number, or an error naming the cell and the likely cause.
    try:
        y = float(value)
    except ValueError:
        hint = " (a decimal comma? write 1.5, not 1,5)" if re.fullmatch(r"-?\d+,\d+", value) else ""
        raise DMSTableError(f"{where}: {value!r} is not a number{hint}", line=line, column=column) from None
    if math.isinf(y):
        raise DMSTableError(f"{where}: fitness is {value} (often the log of a zero count); "
                            "fix the table, e.g. with pseudo-counts", line=line, column=column)
    return y


def load_assay(name: str) -> DMSAssay:
    """One of the shipped assays (:data:`ASSAYS`), read from the verified embedded file."""
    from workshop.data import fetch

    if name not in ASSAYS:
        raise ValueError(f"unknown assay {name!r}; the shipped assays are {', '.join(ASSAYS)}")
    assay = read_dms_table(fetch("protein", f"dms_{name}.csv.gz"))
    if assay.dropped:
        raise ValueError(f"the shipped table dms_{name}.csv.gz should need no cleaning, yet {assay.dropped}")
    return assay
