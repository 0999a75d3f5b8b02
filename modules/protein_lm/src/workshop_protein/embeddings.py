"""Protein embeddings from ESM2: one vector per residue, and one per protein.

An ESM2 model turns a sequence into a ``(length, width)`` array at every layer: the
hidden states. They are the usual input of downstream models (a classifier on the
mean-pooled vector, a per-residue predictor on the rest).

Layers are numbered as in ESM (fair-esm's ``repr_layers``): layer 0 is the token
embedding the first transformer layer reads, layer ``k`` the output of the ``k``-th
layer, and the last one (``num_layers``, or ``-1``) is taken after the final
LayerNorm, exactly ``model(tokens).hidden``.

ESM2 was trained on at most 1022 residues (1024 tokens with ``<cls>`` and ``<eos>``);
a longer sequence is refused unless ``too_long="truncate"`` (its first 1022 residues)
or ``too_long="window"`` (overlapping windows of 1022, averaged where they overlap).

Sequences are batched by length and padded to a few fixed lengths (:func:`length_bucket`),
so that ``jit`` compiles once per bucket, not once per sequence length.

Example::

    model, info = load_model("embedded")
    records = read_fasta("seqs.fasta")
    emb = embed(model, records, layer=-1)
    emb.per_residue[0].shape, emb.pooled.shape       # (L0, D), (N, D)
    save_embeddings("seqs.npz", emb, model_name=info.name)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from . import guards
from .tokens import CLS, EOS, MASK, MAX_RESIDUES, PAD, InvalidSequence, SequenceTooLong, token_id, tokenize

__all__ = [
    "FastaRecord",
    "FastaError",
    "read_fasta",
    "TooLong",
    "Embeddings",
    "input_embedding",
    "hidden_states",
    "resolve_layer",
    "check_sequences",
    "length_bucket",
    "embed",
    "save_embeddings",
    "load_embeddings",
    "TOO_LONG_CHOICES",
]

TOO_LONG_CHOICES = ("error", "truncate", "window")
FORMAT = "workshop-protein-embeddings/1"


# --------------------------------------------------------------------------------------
# FASTA
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FastaRecord:
    """One FASTA record: ``name`` (the header's first word), the rest of the header, the sequence."""

    name: str
    sequence: str
    description: str = ""


class FastaError(ValueError):
    """A FASTA file that cannot be read as proteins (the message names the file, record and line)."""


def _decode(path: Path, kind: str = "FASTA file") -> str:
    """The text of a file that must be UTF-8, with a clear error when it is not."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raise FastaError(f"{path} is gzip-compressed: decompress it first (gunzip {path.name}), then give the {kind}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FastaError(
            f"{path} is not UTF-8 text: byte 0x{raw[exc.start]:02x} on line {line}. A {kind} is plain "
            "text; is this a binary or compressed file, or one saved in another encoding?"
        ) from None


def read_fasta(path: str | os.PathLike) -> list[FastaRecord]:
    """Read the protein records of a FASTA file.

    Sequence lines are joined, spaces dropped and letters upper-cased; a final ``*``
    (a stop codon in translated sequences) is dropped.

    Arguments:
        path: the FASTA file.

    Returns:
        The records, in file order.

    Raises:
        FastaError: the file is empty, not UTF-8 text, does not start with a ``>`` header,
            has a record without a name or sequence, repeats a name, or has a character
            that is not an amino acid (naming the record, the residue position and line).

    Example::

        >>> [(r.name, r.sequence) for r in read_fasta("two.fasta")]  # doctest: +SKIP
        [('ubiquitin', 'MQIFVKTLTG...'), ('gfp', 'MSKGEELFTG...')]
    """
    path = Path(path)
    text = _decode(path)
    if not text.strip():
        raise FastaError(f"{path} is empty: a FASTA file holds records, each a '>name' line followed by sequence lines")
    records: list[FastaRecord] = []
    seen: dict[str, int] = {}
    header: tuple[str, str, int] | None = None
    chunks: list[tuple[int, str]] = []  # (line number, residues) of the current record

    def finish() -> None:
        if header is None:
            return
        name, description, at = header
        seq = "".join(c for _, c in chunks)
        if seq.endswith("*"):
            seq = seq[:-1]
        if not seq:
            raise FastaError(f"{path}: record {name!r} (line {at}) has no sequence")
        try:
            tokenize(seq, max_residues=len(seq))
        except InvalidSequence as exc:
            line, done = at, 0
            for line, c in chunks:  # the line of the bad residue
                if exc.position <= done + len(c):
                    break
                done += len(c)
            raise FastaError(f"{path}: record {name!r}, residue {exc.position} (line {line}): {exc}") from None
        records.append(FastaRecord(name, seq.upper(), description))

    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            finish()
            words = line[1:].split(maxsplit=1)
            if not words:
                raise FastaError(f"{path}: the header on line {number} has no name (write '>name description')")
            name = words[0]
            if name in seen:
                raise FastaError(f"{path}: the record name {name!r} appears twice (lines {seen[name]} and {number}); "
                                 "names must be unique")
            seen[name] = number
            header, chunks = (name, words[1] if len(words) > 1 else "", number), []
        elif header is None:
            raise FastaError(f"{path}: line {number} comes before any '>' header ({line[:30]!r}); a FASTA file starts "
                             "with a '>name' line. For a bare sequence, add a header line such as '>my_protein'")
        else:
            chunks.append((number, "".join(line.split())))
    finish()
    return records


# --------------------------------------------------------------------------------------
# Hidden states of one layer
# --------------------------------------------------------------------------------------


def input_embedding(model, tokens: Int[Array, " T"]) -> Float[Array, "T D"]:
    """The token embedding ESM2's first layer reads (layer 0), padding set to zero.

    It includes ESM2's token-dropout rescaling (``<mask>`` embeddings zeroed, the rest
    scaled by the fraction of masks), so pretrained weights see what they were trained on.
    """
    x = jax.vmap(model.embedding)(tokens)
    not_pad = tokens != PAD
    if model.token_dropout:
        is_mask = tokens == MASK
        x = jnp.where(is_mask[:, None], 0.0, x)
        observed = is_mask.sum() / not_pad.sum()
        x = x * (1 - 0.15 * 0.8) / (1 - observed)
    return jnp.where(not_pad[:, None], x, 0.0)


def resolve_layer(model, layer: int) -> int:
    """``layer`` as a number in ``0..num_layers`` (negative counts from the end: -1 is the last).

    Raises ``ValueError`` saying the valid range.
    """
    n = model.num_layers
    if not isinstance(layer, (int, np.integer)) or isinstance(layer, bool) or not -(n + 1) <= layer <= n:
        raise ValueError(f"layer {layer!r} does not exist in this {n}-layer model: choose 0..{n} or -{n + 1}..-1 "
                         f"(0 is the token embedding, {n} or -1 the last layer)")
    return int(layer) % (n + 1)


def hidden_states(model, tokens: Int[Array, " T"], layer: int) -> Float[Array, "T D"]:
    """The ``(T, D)`` hidden states of one sequence at ``layer`` (``0..num_layers``).

    Runs only the first ``layer`` transformer layers (ESM2's own layers, under
    ``lax.scan``); the last layer is followed by the final LayerNorm, as in ESM.
    """
    is_pad = tokens == PAD
    x = input_embedding(model, tokens)
    if layer:
        dynamic, static = eqx.partition(model.layers, eqx.is_array)
        first = jax.tree_util.tree_map(lambda a: a[:layer], dynamic)

        def step(x, params):
            return eqx.combine(params, static)(x, is_pad=is_pad), None

        x, _ = jax.lax.scan(step, x, first)
    if layer == model.num_layers:
        x = jax.vmap(model.layer_norm)(x)
    return x


@eqx.filter_jit
def _batch_hidden_states(model, tokens: Int[Array, "B T"], layer: int) -> Float[Array, "B T D"]:
    return jax.vmap(lambda t: hidden_states(model, t, layer))(tokens)


# --------------------------------------------------------------------------------------
# Embedding many sequences
# --------------------------------------------------------------------------------------

# Token lengths sequences are padded to: about 1.5x apart, so padding wastes at most a
# third and a FASTA of any lengths compiles at most a dozen shapes.
_BUCKETS = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


def length_bucket(n_tokens: int) -> int:
    """The padded token length for a sequence of ``n_tokens`` tokens (residues + 2)."""
    for b in _BUCKETS:
        if n_tokens <= b:
            return b
    return -(-n_tokens // 256) * 256


class TooLong(SequenceTooLong):
    """A sequence is longer than the model takes and ``too_long="error"``.

    Attributes:
        name: the record's name (or ``"sequence K"``).
        length: its number of residues.
        limit: the most residues the model takes.
        count: how many sequences are over the limit.
    """

    def __init__(self, message: str, *, name: str, length: int, limit: int, count: int = 1):
        super().__init__(message)
        self.name, self.length, self.limit, self.count = name, length, limit, count


@dataclass(frozen=True)
class Embeddings:
    """What :func:`embed` returns (and :func:`load_embeddings` reads back).

    Attributes:
        names: one name per sequence (record names; ``"seq1"``, ... for plain strings).
        sequences: the sequences as given.
        per_residue: one ``(L_i, D)`` float32 array per sequence (``L_i`` residues
            embedded: all of them, or the first ``limit`` when truncated).
        pooled: ``(N, D)`` float32: the mean of each ``per_residue`` array over residues
            (``<cls>``, ``<eos>`` and padding excluded).
        layer: the layer the vectors come from (``0..num_layers``).
        num_layers: the model's number of layers.
        truncated: ``(N,)`` bool: the sequence was cut to the model's limit.
        model_name: the model's name, when known.
    """

    names: tuple[str, ...]
    sequences: tuple[str, ...]
    per_residue: tuple[np.ndarray, ...]
    pooled: np.ndarray
    layer: int
    num_layers: int
    truncated: np.ndarray
    model_name: str = ""

    @property
    def lengths(self) -> np.ndarray:
        """Residues embedded per sequence."""
        return np.array([len(r) for r in self.per_residue], dtype=np.int64)


def _named(sequences) -> tuple[list[str], list[str]]:
    if isinstance(sequences, str):
        raise TypeError("embed takes a list of sequences (or FASTA records); for one sequence pass [seq]")
    names, seqs = [], []
    for k, item in enumerate(sequences):
        if isinstance(item, FastaRecord):
            names.append(item.name)
            seqs.append(item.sequence)
        elif isinstance(item, str):
            names.append(f"seq{k + 1}")
            seqs.append(item)
        else:
            raise TypeError(f"item {k} is a {type(item).__name__}; give protein strings or FastaRecord objects")
    if not seqs:
        raise ValueError("no sequences to embed")
    return names, seqs


def _checked(sequences, too_long: str, max_residues: int) -> tuple[list[str], list[str], list[np.ndarray]]:
    if too_long not in TOO_LONG_CHOICES:
        raise ValueError(f"too_long must be one of {', '.join(TOO_LONG_CHOICES)}; got {too_long!r}")
    names, seqs = _named(sequences)
    residues = []
    for name, s in zip(names, seqs):
        try:
            residues.append(tokenize(s, max_residues=max(len(s), 1))[1:-1])
        except InvalidSequence as exc:
            raise InvalidSequence(f"{name}: {exc}", char=exc.char, position=exc.position) from None
    over = [k for k, r in enumerate(residues) if len(r) > max_residues]
    if over and too_long == "error":
        k = over[0]
        others = f" ({len(over)} sequences are over the limit)" if len(over) > 1 else ""
        raise TooLong(
            f"{names[k]} has {len(residues[k])} residues; ESM2 was trained on at most {max_residues} "
            f"(plus <cls> and <eos>){others}. Pass too_long='truncate' to embed the first {max_residues} "
            f"residues, or too_long='window' to embed overlapping windows",
            name=names[k], length=len(residues[k]), limit=max_residues, count=len(over),
        )
    return names, seqs, residues


def check_sequences(sequences, *, too_long: str = "error", max_residues: int = MAX_RESIDUES) -> None:
    """Raise what :func:`embed` would raise about ``sequences`` (bad characters, too long), without a model.

    Lets a caller refuse unusable input before loading (or downloading) a model.
    """
    _checked(sequences, too_long, max_residues)


def _windows(n: int, size: int) -> list[int]:
    """Starts of windows of ``size`` residues covering ``0..n``, overlapping by half a window."""
    if n <= size:
        return [0]
    step = max(1, size // 2)
    starts = list(range(0, n - size + 1, step))
    if starts[-1] != n - size:
        starts.append(n - size)
    return starts


def _batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped by length (shortest first), ``batch_size`` at a time."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _rows(n: int, batch_size: int) -> int:
    """Rows of a batch of ``n`` sequences: a power of two up to ``batch_size`` (few shapes)."""
    rows = 1
    while rows < n:
        rows *= 2
    return min(rows, batch_size)


def embed(
    model,
    sequences: Sequence[str] | Sequence[FastaRecord],
    *,
    layer: int = -1,
    batch_size: int = 8,
    progress: bool = True,
    too_long: str = "error",
    max_residues: int = MAX_RESIDUES,
) -> Embeddings:
    """Per-residue and mean-pooled embeddings of many proteins at one layer.

    Arguments:
        model: an esm2quinox ESM2 (the embedded model or a pretrained ESM2).
        sequences: protein strings, or :class:`FastaRecord` objects (their names then
            appear in messages and outputs).
        layer: ``0..num_layers``, or negative from the end (``-1``: the last layer,
            after the final LayerNorm). See the module's docstring.
        batch_size: sequences run together (padded to a common length).
        progress: show a progress bar (residues embedded).
        too_long: a sequence longer than ``max_residues``: ``"error"`` (raise
            :class:`TooLong`), ``"truncate"`` (embed its first ``max_residues``), or
            ``"window"`` (windows of ``max_residues`` overlapping by half, averaged).
        max_residues: the model's limit; ESM2 was trained on 1022 residues.

    Returns:
        :class:`Embeddings`.

    Raises:
        TooLong: with ``too_long="error"``, naming the first sequence over the limit.
        tokens.InvalidSequence: a character that is not an amino acid.
        ValueError: an unknown ``layer`` or ``too_long``.
    """
    batch_size = guards.count("batch_size", batch_size)
    layer = resolve_layer(model, layer)
    names, seqs, residues = _checked(sequences, too_long, max_residues)
    # Pieces: (sequence index, first residue, residues); a long sequence may give several.
    pieces: list[tuple[int, int, np.ndarray]] = []
    for k, r in enumerate(residues):
        if len(r) <= max_residues:
            pieces.append((k, 0, r))
        elif too_long == "truncate":
            pieces.append((k, 0, r[:max_residues]))
        else:
            pieces.extend((k, s, r[s : s + max_residues]) for s in _windows(len(r), max_residues))
    kept = [min(len(r), max_residues) if too_long == "truncate" else len(r) for r in residues]
    sums = [None] * len(seqs)
    counts = [np.zeros(n, np.float32) for n in kept]
    bar = _progress_bar(sum(len(p[2]) for p in pieces), progress)
    filler = np.array([CLS, token_id("A"), EOS], np.int32)
    try:
        for idx in _batches([len(p[2]) for p in pieces], batch_size):
            T = length_bucket(max(len(pieces[i][2]) for i in idx) + 2)
            tokens = np.full((_rows(len(idx), batch_size), T), PAD, np.int32)
            tokens[:, :3] = filler  # rows beyond the batch: a valid 1-residue sequence
            for row, i in enumerate(idx):
                r = pieces[i][2]
                tokens[row, : len(r) + 2] = np.concatenate([[CLS], r, [EOS]])
                tokens[row, len(r) + 2 :] = PAD
            hidden = np.asarray(_batch_hidden_states(model, jnp.asarray(tokens), layer), dtype=np.float32)
            for row, i in enumerate(idx):
                k, start, r = pieces[i]
                h = hidden[row, 1 : len(r) + 1]
                if sums[k] is None:
                    sums[k] = np.zeros((kept[k], h.shape[-1]), np.float32)
                sums[k][start : start + len(r)] += h
                counts[k][start : start + len(r)] += 1
            bar.update(sum(len(pieces[i][2]) for i in idx))
    finally:
        bar.close()
    per_residue = tuple(s / c[:, None] for s, c in zip(sums, counts))
    pooled = np.stack([p.mean(axis=0) for p in per_residue]).astype(np.float32)
    truncated = np.array([too_long == "truncate" and len(r) > max_residues for r in residues])
    return Embeddings(tuple(names), tuple(seqs), per_residue, pooled, layer, model.num_layers, truncated)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, show: bool):
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="embedding", unit="res", unit_scale=True, dynamic_ncols=True)


# --------------------------------------------------------------------------------------
# The .npz file
# --------------------------------------------------------------------------------------


def save_embeddings(path: str | os.PathLike, embeddings: Embeddings, *, model_name: str | None = None) -> Path:
    """Write embeddings to an ``.npz`` file (plain arrays: ``np.load(path)`` reads it without pickle).

    Keys:

    * ``names``, ``sequences``: ``(N,)`` strings;
    * ``pooled``: ``(N, D)`` float32, one mean-pooled vector per sequence;
    * ``residues``: ``(sum of L_i, D)`` float32, every sequence's per-residue vectors one
      after the other, and ``offsets``: ``(N + 1,)`` int64; sequence ``i``'s vectors are
      ``residues[offsets[i]:offsets[i + 1]]`` (``lengths``: ``(N,)``, the ``L_i``);
    * ``truncated``: ``(N,)`` bool;
    * ``model`` (the model's name), ``layer``, ``num_layers``, ``format``: scalars.

    Arguments:
        path: the file to write (replaced atomically).
        embeddings: what :func:`embed` returned.
        model_name: the model's name (default: ``embeddings.model_name``).
    """
    e = embeddings
    lengths = e.lengths
    arrays = {
        "format": np.array(FORMAT),
        "model": np.array(model_name if model_name is not None else e.model_name),
        "layer": np.array(e.layer, np.int64),
        "num_layers": np.array(e.num_layers, np.int64),
        "names": np.array(e.names, dtype=str),
        "sequences": np.array(e.sequences, dtype=str),
        "pooled": np.asarray(e.pooled, np.float32),
        "residues": np.concatenate(e.per_residue).astype(np.float32),
        "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "lengths": lengths,
        "truncated": np.asarray(e.truncated, bool),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    tmp.replace(path)
    return path


def load_embeddings(path: str | os.PathLike) -> Embeddings:
    """Read a file written by :func:`save_embeddings`."""
    with np.load(path, allow_pickle=False) as z:
        if "format" not in z.files or str(z["format"]) != FORMAT:
            raise ValueError(f"{path} is not an embeddings file written by save_embeddings")
        offsets, residues = z["offsets"], z["residues"]
        per_residue = tuple(residues[a:b] for a, b in zip(offsets[:-1], offsets[1:]))
        return Embeddings(tuple(z["names"].tolist()), tuple(z["sequences"].tolist()), per_residue, z["pooled"],
                          int(z["layer"]), int(z["num_layers"]), z["truncated"], str(z["model"]))
