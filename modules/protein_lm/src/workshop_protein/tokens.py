"""The ESM2 alphabet and tokenisation: protein strings to integer tokens and back.

The token ids are those of the ESM-1b/ESM2 alphabet, so that pretrained ESM2 weights
read the same ids they were trained on::

    0 <cls>  1 <pad>  2 <eos>  3 <unk>
    4 L  5 A  6 G  7 V  8 S  9 E  10 R  11 T  12 I  13 D  14 P  15 K  16 Q  17 N
    18 F  19 Y  20 M  21 H  22 W  23 C  24 X  25 B  26 U  27 Z  28 O  29 .  30 -
    31 <null_1>  32 <mask>

A tokenised sequence is ``<cls> residues... <eos>``: token ``i + 1`` is residue ``i``.

Example::

    >>> tokenize("MKV")
    array([ 0, 20, 15,  7,  2], dtype=int32)
    >>> tokens, mask = batch_tokenize(["MKV", "AC"])
    >>> tokens.shape, mask.sum(axis=1).tolist()
    ((2, 5), [5, 4])
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = [
    "ALPHABET",
    "AMINO_ACIDS",
    "AA_TOKENS",
    "CLS",
    "PAD",
    "EOS",
    "UNK",
    "MASK",
    "MAX_RESIDUES",
    "InvalidSequence",
    "SequenceTooLong",
    "tokenize",
    "batch_tokenize",
    "detokenize",
    "token_id",
]

ALPHABET: tuple[str, ...] = (
    "<cls>", "<pad>", "<eos>", "<unk>",
    "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N",
    "F", "Y", "M", "H", "W", "C", "X", "B", "U", "Z", "O", ".", "-",
    "<null_1>", "<mask>",
)  # fmt: skip
_ID = {tok: i for i, tok in enumerate(ALPHABET)}

CLS, PAD, EOS, UNK, MASK = _ID["<cls>"], _ID["<pad>"], _ID["<eos>"], _ID["<unk>"], _ID["<mask>"]

#: The 20 standard amino acids in alphabetical order (the order of every L×20 table here).
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
#: Their token ids, in the order of :data:`AMINO_ACIDS`.
AA_TOKENS = np.array([_ID[a] for a in AMINO_ACIDS], dtype=np.int32)

#: ESM2 was trained on crops of 1024 tokens: 1022 residues plus <cls> and <eos>.
MAX_RESIDUES = 1022

# Residue letters a sequence may contain: the 20 standard ones and the ambiguity codes
# ESM2 knows (X any, B = D/N, Z = E/Q, U selenocysteine, O pyrrolysine).
_RESIDUES = frozenset("LAGVSERTIDPKQNFYMHWCXBUZO")
# Special tokens that may be written inside a sequence, e.g. "MK<mask>V".
_INLINE = {"<mask>": MASK, "<unk>": UNK}
_ALLOWED = "the 20 amino-acid letters ACDEFGHIKLMNPQRSTVWY, the ambiguity codes X B Z U O, and <mask> or <unk>"

# Concrete advice for the characters people most often paste by accident.
_ADVICE = {
    "*": "'*' marks a stop codon in translated sequences: drop it (seq.rstrip('*'))",
    "-": "'-' is an alignment gap: use the unaligned sequence (seq.replace('-', ''))",
    ".": "'.' is an alignment gap: use the unaligned sequence (seq.replace('.', ''))",
    " ": "remove spaces and line breaks: ''.join(seq.split())",
    "\n": "remove spaces and line breaks: ''.join(seq.split())",
    "\t": "remove spaces and line breaks: ''.join(seq.split())",
    "\r": "remove spaces and line breaks: ''.join(seq.split())",
    ">": "this looks like a FASTA header line: pass only the sequence lines",
}


class InvalidSequence(ValueError):
    """A sequence contains a character that is not in the ESM2 alphabet.

    Attributes:
        char: the offending character (or bracketed token).
        position: its 1-based position in the string given.
    """

    def __init__(self, message: str, *, char: str, position: int):
        super().__init__(message)
        self.char = char
        self.position = position


class SequenceTooLong(ValueError):
    """A sequence is longer than the model was trained on and no crop was asked for."""


def token_id(token: str) -> int:
    """The id of one token: a residue letter (``"A"``) or a special token (``"<mask>"``)."""
    try:
        return _ID[token]
    except KeyError:
        raise KeyError(f"{token!r} is not an ESM2 token; tokens are {', '.join(ALPHABET)}") from None


def _parse(seq: str, lowercase: bool) -> list[int]:
    if not isinstance(seq, str):
        raise TypeError(f"a protein sequence must be a str, got {type(seq).__name__}")
    ids: list[int] = []
    i = 0
    while i < len(seq):
        c = seq[i]
        if c == "<":
            end = seq.find(">", i)
            tok = seq[i : end + 1] if end >= 0 else seq[i:]
            if tok.lower() in _INLINE:
                ids.append(_INLINE[tok.lower()])
                i += len(tok)
                continue
            raise InvalidSequence(
                f"invalid token {tok!r} at position {i + 1}; allowed are {_ALLOWED}",
                char=tok, position=i + 1,
            )
        up = c.upper() if lowercase else c
        if up in _RESIDUES:
            ids.append(_ID[up])
            i += 1
            continue
        msg = f"invalid character {c!r} at position {i + 1}; allowed are {_ALLOWED}"
        if c.islower() and c.upper() in _RESIDUES:
            msg += " (lower case is refused because lowercase=False; pass lowercase=True or seq.upper())"
        elif c in _ADVICE:
            msg += f". Hint: {_ADVICE[c]}"
        raise InvalidSequence(msg, char=c, position=i + 1)
    if not ids:
        raise InvalidSequence("the sequence is empty; give at least one residue", char="", position=0)
    return ids


def _crop(ids: list[int], max_residues: int, crop: str | int | None) -> list[int]:
    n = len(ids)
    if n <= max_residues:
        return ids
    if crop is None:
        raise SequenceTooLong(
            f"the sequence has {n} residues but the model takes at most {max_residues} "
            f"(ESM2 was trained on crops of {MAX_RESIDUES} residues). Pass crop='start', 'center', "
            f"'end' or a 0-based start index to score a window, or split the protein into domains "
            f"(e.g. overlapping windows of {max_residues} residues) and combine the results"
        )
    if crop == "start":
        start = 0
    elif crop == "end":
        start = n - max_residues
    elif crop == "center":
        start = (n - max_residues) // 2
    elif isinstance(crop, (int, np.integer)) and not isinstance(crop, bool):
        start = int(crop)
        if not 0 <= start <= n - max_residues:
            raise ValueError(f"crop start {start} is outside 0..{n - max_residues} for a sequence of {n} residues")
    else:
        raise ValueError(f"crop must be None, 'start', 'center', 'end' or an int start index, got {crop!r}")
    return ids[start : start + max_residues]


def tokenize(
    seq: str,
    *,
    max_residues: int = MAX_RESIDUES,
    crop: str | int | None = None,
    lowercase: bool = True,
) -> np.ndarray:
    """Tokenise one protein as ``<cls> residues <eos>``.

    Arguments:
        seq: the amino-acid sequence, e.g. ``"MKTAYIAKQR"``; ``<mask>`` may stand for a
            residue. Lower-case letters are read as upper case unless ``lowercase=False``.
        max_residues: the longest sequence accepted (ESM2: 1022).
        crop: what to do with a longer sequence: ``None`` raises
            :class:`SequenceTooLong`; ``"start"``, ``"center"``, ``"end"`` or a 0-based
            start index keep a window of ``max_residues`` residues.
        lowercase: accept lower-case letters.

    Returns:
        ``int32`` array of length ``len(residues) + 2``.

    Raises:
        InvalidSequence: naming the bad character, its 1-based position and what is allowed.
        SequenceTooLong: when the sequence is too long and ``crop`` is ``None``.
    """
    ids = _crop(_parse(seq, lowercase), max_residues, crop)
    return np.array([CLS, *ids, EOS], dtype=np.int32)


def batch_tokenize(
    seqs: Sequence[str],
    *,
    length: int | None = None,
    max_residues: int = MAX_RESIDUES,
    crop: str | int | None = None,
    lowercase: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Tokenise several proteins and pad them to one length with ``<pad>``.

    Arguments:
        seqs: the sequences.
        length: total token length (residues + 2) to pad to; default: the longest.
        max_residues, crop, lowercase: as in :func:`tokenize`.

    Returns:
        ``(tokens, mask)``: ``int32`` tokens of shape ``(batch, length)`` and a boolean
        mask of the same shape, ``True`` on real tokens (``<cls>``, residues, ``<eos>``)
        and ``False`` on padding.
    """
    if isinstance(seqs, str):
        raise TypeError("batch_tokenize takes a list of sequences; for one sequence use tokenize(seq)")
    rows = []
    for k, s in enumerate(seqs):
        try:
            rows.append(tokenize(s, max_residues=max_residues, crop=crop, lowercase=lowercase))
        except InvalidSequence as e:
            raise InvalidSequence(f"sequence {k} (0-based): {e}", char=e.char, position=e.position) from None
        except SequenceTooLong as e:
            raise SequenceTooLong(f"sequence {k} (0-based): {e}") from None
    if not rows:
        raise ValueError("batch_tokenize got no sequences")
    longest = max(len(r) for r in rows)
    length = longest if length is None else length
    if length < longest:
        raise ValueError(f"length={length} is shorter than the longest tokenised sequence ({longest} tokens)")
    tokens = np.full((len(rows), length), PAD, dtype=np.int32)
    for k, r in enumerate(rows):
        tokens[k, : len(r)] = r
    return tokens, tokens != PAD


def detokenize(tokens: np.ndarray, *, keep_special: bool = False) -> str:
    """The string of a token array; ``<cls>``, ``<eos>`` and ``<pad>`` are dropped unless asked."""
    out = []
    for t in np.asarray(tokens).tolist():
        tok = ALPHABET[int(t)]
        if not keep_special and t in (CLS, EOS, PAD):
            continue
        out.append(tok)
    return "".join(out)
