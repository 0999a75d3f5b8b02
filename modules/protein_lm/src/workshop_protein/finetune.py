"""Fine-tuning ESM2 on a labelled set of sequences (regression or classification).

The pieces, in the order data flows through them:

* :func:`read_labelled` reads a CSV (a sequence column and a label column) or a FASTA
  file (the label in the header: ``>name label=0.73`` or the header's last word);
* :func:`train_valid_split` holds out a validation set;
* :func:`length_buckets` groups sequences of similar length into batches, so a batch
  pads little; each batch is padded to a multiple of 16 tokens (few distinct shapes,
  few recompilations) and carries a padding mask;
* :class:`Predictor` is the ESM2 backbone and a small head on **mean-pooled**
  embeddings (the mean over residues only: :func:`masked_mean_pool`);
* :func:`train` fits the head alone (``mode="head"``, frozen backbone) or everything
  (``mode="full"``), shards each batch over all devices (data parallel with
  ``jax.sharding``), tracks Spearman's ρ (regression) or accuracy (classification) on
  the validation set and writes checkpoints atomically.

Example::

    data = read_labelled(fetch("protein", "amp_vs_tm.csv"), label="is_antimicrobial")
    train_set, valid_set = train_valid_split(data, 0.2, seed=0)
    predictor = Predictor.init(model, data.task, data.num_outputs, key=jax.random.key(0))
    predictor, history = train(predictor, train_set, valid_set, mode="head", steps=200)
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Bool, Float, Int

from workshop.data import DataError

from . import guards
from .tokens import CLS, EOS, PAD, batch_tokenize, tokenize

__all__ = [
    "LabelledSequences",
    "LabelledDataError",
    "CheckpointError",
    "read_labelled",
    "train_valid_split",
    "length_buckets",
    "make_batch",
    "masked_mean_pool",
    "residue_mask",
    "Predictor",
    "loss_fn",
    "evaluate",
    "predictions",
    "spearman",
    "train",
    "TrainHistory",
    "save_checkpoint",
    "load_checkpoint",
    "data_parallel_mesh",
]


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledSequences:
    """Sequences with one label each.

    Arguments:
        sequences: amino-acid strings.
        labels: ``float32`` values (regression) or ``int32`` class ids (classification).
        task: ``"regression"`` or ``"classification"``.
        classes: the class names, in id order (classification only).
        label_name: what the label is (for figures and reports).
    """

    sequences: tuple[str, ...]
    labels: np.ndarray
    task: str
    classes: tuple[str, ...] = ()
    label_name: str = "label"

    def __post_init__(self) -> None:
        if self.task not in ("regression", "classification"):
            raise ValueError(f"task must be 'regression' or 'classification', got {self.task!r}")
        if len(self.sequences) != len(self.labels):
            raise ValueError(f"{len(self.sequences)} sequences but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def num_outputs(self) -> int:
        return 1 if self.task == "regression" else len(self.classes)

    def subset(self, idx) -> "LabelledSequences":
        idx = np.asarray(idx, dtype=np.int64)
        return replace(self, sequences=tuple(self.sequences[i] for i in idx), labels=self.labels[idx])


class LabelledDataError(DataError, ValueError):
    """A labelled-sequence file that cannot be read unambiguously; the message names the
    file, the line and the column, and says how to fix it. A
    :class:`workshop.data.DataError`, so ``workshop run`` reports it without a traceback.

    Attributes:
        line: the 1-based line of the file (``None`` when the problem is not one line).
        column: the column (CSV) or header key (FASTA), ``None`` when not one column.
    """

    def __init__(self, message: str, *, line: int | None = None, column: str | None = None):
        super().__init__(message)
        self.line = line
        self.column = column


#: Label cells that mean "not measured": refused (a missing label is not a class).
_MISSING_LABELS = {"", "nan", "na", "n/a", "null", "none", "-"}
#: At most this many distinct integer labels are read as classes when ``task`` is not given.
MAX_INTEGER_CLASSES = 10


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _labels(raw: list[str], where: list[tuple[str, int]], task: str | None, label_name: str, path) -> tuple:
    """``(task, labels, classes)`` from the label texts, or a :class:`LabelledDataError`
    naming the first bad row. ``where[k]`` is ``(what, line)`` of row ``k``."""
    if task not in (None, "regression", "classification"):
        raise ValueError(f"task must be 'regression', 'classification' or None (decide from the labels), got {task!r}")
    col = f"column {label_name!r}"
    for text, (what, line) in zip(raw, where):
        if text.lower() in _MISSING_LABELS:
            raise LabelledDataError(f"{path}: {what}, {col}: the label is missing ({text!r}); fill it in or delete "
                                    "the row (a missing label is not a class)", line=line, column=label_name)
    numbers = [_number(t) for t in raw]
    numeric = [v is not None for v in numbers]
    if task == "regression" or (task is None and any(numeric) and not all(numeric)):
        k = numeric.index(False) if not all(numeric) else None
        if k is not None:
            what, line = where[k]
            hint = " (a decimal comma? write 1.5, not 1,5)" if "," in raw[k] and _number(raw[k].replace(",", ".")) \
                is not None else ""
            also = ("; if the labels are class names, pass task='classification'" if task is None else "")
            raise LabelledDataError(f"{path}: {what}, {col}: {raw[k]!r} is not a number{hint}, while "
                                    f"{sum(numeric)} of {len(raw)} labels are numbers; fix the cell{also}",
                                    line=line, column=label_name)
    if all(numeric):
        bad = next((k for k, v in enumerate(numbers) if not math.isfinite(v)), None)
        if bad is not None:
            what, line = where[bad]
            raise LabelledDataError(f"{path}: {what}, {col}: the label is {raw[bad]!r}, not a finite number; fix or "
                                    "delete the row", line=line, column=label_name)
        integers = all(v.is_integer() for v in numbers)
        if task is None:
            task = "classification" if integers and len(set(numbers)) <= MAX_INTEGER_CLASSES else "regression"
        if task == "regression":
            labels = np.array(numbers, np.float32)
            if np.ptp(labels) == 0:
                raise LabelledDataError(f"{path}: every label in {col} is {raw[0]!r}: there is nothing to learn; is "
                                        "it the right column?", column=label_name)
            return task, labels, ()
        if integers:  # 1 and 1.0 are one class
            raw = [str(int(v)) for v in numbers]
    task = "classification"
    classes = sorted(set(raw), key=lambda c: (float(c), c) if _number(c) is not None else (float("inf"), c))
    if len(classes) < 2:
        raise LabelledDataError(f"{path}: every label in {col} is {raw[0]!r}: a classifier needs at least two "
                                "classes; is it the right column?", column=label_name)
    if len(classes) > MAX_INTEGER_CLASSES and len(classes) > len(raw) // 2:
        shown = ", ".join(repr(c) for c in classes[:3])
        raise LabelledDataError(
            f"{path}: {col} has {len(classes)} different labels among {len(raw)} rows ({shown}, ...): names or "
            "identifiers, not classes. Name the label column (label=...), or pass task='regression' if the labels "
            "are measurements", column=label_name)
    ids = {c: i for i, c in enumerate(classes)}
    return task, np.array([ids[c] for c in raw], np.int32), tuple(classes)


def _finish(seqs: list[str], raw: list[str], where: list[tuple[str, int]], task: str | None, label_name: str,
            path) -> LabelledSequences:
    if not seqs:
        raise LabelledDataError(f"{path}: no labelled sequences found (a header row, then one sequence and label "
                                "per row)")
    for s, (what, line) in zip(seqs, where):
        try:
            tokenize(s)
        except ValueError as e:
            raise LabelledDataError(f"{path}: {what}: {e}", line=line) from None
    task, labels, classes = _labels(raw, where, task, label_name, path)
    return LabelledSequences(tuple(seqs), labels, task, classes, label_name)


def _text(path: Path, kind: str) -> str:
    from .embeddings import FastaError, _decode

    try:
        return _decode(path, kind)
    except FastaError as exc:
        raise LabelledDataError(str(exc)) from None


def read_labelled(
    path: str | os.PathLike,
    *,
    sequence: str | None = None,
    label: str | None = None,
    task: str | None = None,
) -> LabelledSequences:
    """Read labelled sequences from a CSV or FASTA file.

    Arguments:
        path: ``.csv``/``.tsv`` (with a header row) or ``.fasta``/``.fa``.
        sequence: CSV column of the sequences (default: the first column named like
            ``sequence``/``seq``, else the first column).
        label: CSV column of the labels (default: the last column); in FASTA the header
            key (``>id label=0.5``; default: ``label``, else the header's last word).
        task: ``"regression"`` or ``"classification"``; default: classification when the
            labels are words or at most 10 distinct integers.

    Raises:
        LabelledDataError: naming the line and column of the first problem: no label
            column, a missing, non-numeric (among numbers), NaN or infinite label, a
            repeated header row, a row with too few or too many cells, a residue that
            is not an amino acid, labels that cannot be classes (one class, or as many
            as rows), a file that is not UTF-8 text.
    """
    path = Path(path)
    if not path.is_file():
        raise LabelledDataError(f"{path}: no such file")
    if path.suffix.lower() in (".fasta", ".fa", ".faa", ".fas"):
        return _read_fasta(path, label, task)
    text = _text(path, "CSV file")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = None
    seqs, raw, where = [], [], []
    for cells in reader:
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue
        line = reader.line_num
        if header is None:
            header, header_line = cells, line
            si, li, sequence, label = _columns(path, header, sequence, label, line)
            continue
        if cells == header:
            raise LabelledDataError(f"{path}: line {line} repeats the header row of line {header_line} (files joined "
                                    "together?); delete it", line=line)
        if len(cells) != len(header):
            raise LabelledDataError(f"{path}: line {line} has {len(cells)} cells, the header {len(header)} "
                                    f"({', '.join(header)}); a missing cell or a stray {delimiter!r}?", line=line)
        what = f"record {len(seqs) + 1} (line {line})"
        seq = "".join(cells[si].split()).upper()
        if not seq:
            raise LabelledDataError(f"{path}: {what}, column {sequence!r}: the sequence is empty", line=line,
                                    column=sequence)
        seqs.append(seq)
        raw.append(cells[li])
        where.append((what, line))
    if header is None:
        raise LabelledDataError(f"{path} is empty: expected a header row and at least one record")
    return _finish(seqs, raw, where, task, label, path)


def _columns(path: Path, header: list[str], sequence: str | None, label: str | None, line: int):
    """The indices and names of the sequence and label columns, checked."""
    if len(header) < 2:
        tab = " (it holds tabs: name the file .tsv)" if "\t" in header[0] else ""
        raise LabelledDataError(f"{path}: line {line}: one column ({header[0]!r}){tab}; a labelled file needs a "
                                "sequence column and a label column", line=line)
    if sequence is None:
        guesses = [h for h in header if h.lower() in ("sequence", "seq", "protein", "primary")]
        sequence = guesses[0] if guesses else header[0]
    label = header[-1] if label is None else label
    for name, what in ((sequence, "sequence="), (label, "label=")):
        found = [i for i, h in enumerate(header) if h == name]
        if not found:
            raise LabelledDataError(f"{path}: line {line}: no column {name!r}; the columns are {header} (name the "
                                    f"right one with {what}...)", line=line, column=name)
        if len(found) > 1:
            raise LabelledDataError(f"{path}: line {line}: {len(found)} columns are named {name!r}; rename all but "
                                    "one", line=line, column=name)
    if sequence == label:
        raise LabelledDataError(f"{path}: the label column is the sequence column {label!r}: the file has no label "
                                f"column, or name it with label=... (the columns are {header})", line=line,
                                column=label)
    return header.index(sequence), header.index(label), sequence, label


def _read_fasta(path: Path, key: str | None, task: str | None) -> LabelledSequences:
    from .embeddings import FastaError, read_fasta

    try:
        records = read_fasta(path)
    except FastaError as exc:
        raise LabelledDataError(str(exc)) from None
    lines = _header_lines(path)
    seqs, raw, where = [], [], []
    for r in records:
        line = lines.get(r.name)
        what = f"record {r.name!r} (line {line})"
        m = re.search(rf"(?:^|\s){re.escape(key or 'label')}=(\S+)", r.description)
        if m:
            raw.append(m.group(1))
        elif key is None and r.description.split():
            raw.append(r.description.split()[-1])
        else:
            raise LabelledDataError(f"{path}: {what} has no label in its header (write '>{r.name} "
                                    f"{key or 'label'}=VALUE')", line=line, column=key or "label")
        seqs.append(r.sequence)
        where.append((what, line))
    return _finish(seqs, raw, where, task, key or "label", path)


def _header_lines(path: Path) -> dict[str, int]:
    """The line of each record's header (``read_fasta`` has already checked the file)."""
    out = {}
    for number, line in enumerate(_text(path, "FASTA file").splitlines(), 1):
        line = line.strip()
        if line.startswith(">") and line[1:].split():
            out.setdefault(line[1:].split()[0], number)
    return out


def train_valid_split(data: LabelledSequences, valid_fraction: float = 0.2, *, seed: int = 0):
    """Shuffle and split into ``(train, valid)``; classification splits keep class ratios."""
    valid_fraction = guards.fraction("valid_fraction", valid_fraction)
    rng = np.random.default_rng(seed)
    groups = [np.arange(len(data))] if data.task == "regression" else [np.flatnonzero(data.labels == c) for c in range(len(data.classes))]
    train_idx, valid_idx = [], []
    for g in groups:
        g = rng.permutation(g)
        n_valid = max(1, int(round(valid_fraction * len(g)))) if len(g) > 1 else 0
        valid_idx.extend(g[:n_valid])
        train_idx.extend(g[n_valid:])
    return data.subset(rng.permutation(train_idx)), data.subset(rng.permutation(valid_idx))


def length_buckets(lengths: Sequence[int], batch_size: int, *, seed: int | None = 0) -> list[np.ndarray]:
    """Batches of indices of similar length: sort by length, cut into batches, shuffle
    the order of the batches (and, with a seed, break ties randomly).

    Returns a list of index arrays, together covering every index once.
    """
    batch_size = guards.count("batch_size", batch_size)
    lengths = np.asarray(lengths)
    rng = np.random.default_rng(seed)
    jitter = rng.random(len(lengths)) if seed is not None else np.zeros(len(lengths))
    order = np.lexsort((jitter, lengths))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if seed is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def make_batch(data: LabelledSequences, idx, *, multiple: int = 16, rows: int | None = None):
    """Tokens, mask, labels and weights of the sequences ``idx``.

    Arguments:
        multiple: pad the token length up to a multiple of this (fewer distinct shapes).
        rows: pad the batch with empty rows (weight 0) up to this many (e.g. to a
            multiple of the device count, or to a fixed batch size).

    Returns:
        ``(tokens, mask, labels, weights)``: ``(B, T)`` int32 tokens, ``(B, T)`` bool
        mask (True on real tokens), ``(B,)`` labels and ``(B,)`` float weights
        (1 for real rows, 0 for padding rows).
    """
    idx = np.asarray(idx)
    seqs = [data.sequences[i] for i in idx]
    longest = max(len(s) for s in seqs) + 2
    length = -(-longest // multiple) * multiple
    tokens, mask = batch_tokenize(seqs, length=length)
    labels, weights = data.labels[idx], np.ones(len(idx), np.float32)
    if rows is not None and rows > len(idx):
        extra = rows - len(idx)
        filler = np.full((extra, length), PAD, np.int32)
        filler[:, 0], filler[:, 1], filler[:, 2] = CLS, tokens[0, 1], EOS  # a valid 1-residue row
        tokens = np.concatenate([tokens, filler])
        mask = np.concatenate([mask, filler != PAD])
        labels = np.concatenate([labels, np.zeros(extra, labels.dtype)])
        weights = np.concatenate([weights, np.zeros(extra, np.float32)])
    return tokens, mask, labels, weights


# --------------------------------------------------------------------------------------
# The model: backbone + head on pooled embeddings
# --------------------------------------------------------------------------------------


def residue_mask(tokens: Int[Array, "... T"]) -> Bool[Array, "... T"]:
    """True on residues; False on ``<cls>``, ``<eos>`` and ``<pad>``."""
    return (tokens != CLS) & (tokens != EOS) & (tokens != PAD)


def masked_mean_pool(hidden: Float[Array, "T D"], mask: Bool[Array, " T"]) -> Float[Array, " D"]:
    """Mean of ``hidden`` over the positions where ``mask`` is True (never over padding)."""
    m = mask.astype(hidden.dtype)[:, None]
    return (hidden * m).sum(0) / jnp.maximum(m.sum(), 1.0)


class Predictor(eqx.Module):
    """An ESM2 backbone and an MLP head on the mean-pooled final embeddings.

    ``predictor(tokens)`` maps ``(T,)`` tokens to ``(num_outputs,)``: one value for
    regression (in standardised label units: see ``label_mean``/``label_std``), class
    logits for classification.
    """

    backbone: eqx.Module
    head: eqx.nn.MLP
    label_mean: Float[Array, ""]
    label_std: Float[Array, ""]
    task: str = eqx.field(static=True)

    @classmethod
    def init(cls, backbone, task: str, num_outputs: int, *, key, hidden: int = 64, labels=None) -> "Predictor":
        """A fresh head on ``backbone``. For regression pass the training ``labels`` so
        predictions are made in standardised units (a better-conditioned loss)."""
        head = eqx.nn.MLP(backbone.embed_size, num_outputs, hidden, depth=1, activation=jax.nn.gelu, key=key)
        # A zero last layer: the untrained predictor says "the mean" (or "all classes
        # equally likely"), an honest starting point for the metrics.
        last = head.layers[-1]
        head = eqx.tree_at(lambda h: (h.layers[-1].weight, h.layers[-1].bias), head,
                           (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)))
        mean, std = (0.0, 1.0) if labels is None or task != "regression" else (float(np.mean(labels)), float(np.std(labels) + 1e-6))
        return cls(backbone, head, jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32), task)

    def embed(self, tokens: Int[Array, " T"]) -> Float[Array, " D"]:
        """The mean-pooled final hidden state over residues."""
        return masked_mean_pool(self.backbone(tokens).hidden, residue_mask(tokens))

    def __call__(self, tokens: Int[Array, " T"]) -> Float[Array, " K"]:
        return self.head(self.embed(tokens))

    def predict(self, tokens: Int[Array, " T"]) -> Float[Array, ""]:
        """The prediction in label units: the value (regression) or the class id."""
        out = self(tokens)
        if self.task == "regression":
            return out[0] * self.label_std + self.label_mean
        return jnp.argmax(out)

    def score(self, tokens: Int[Array, " T"], target_class: int = 1) -> Float[Array, ""]:
        """A scalar to maximise in design: the predicted value, or the log-probability
        of ``target_class``."""
        out = self(tokens)
        if self.task == "regression":
            return out[0] * self.label_std + self.label_mean
        return jax.nn.log_softmax(out)[target_class]


def loss_fn(predictor: Predictor, tokens, labels, weights) -> Float[Array, ""]:
    """Weighted mean loss of a batch: MSE on standardised labels, or cross-entropy."""
    out = jax.vmap(predictor)(tokens)
    if predictor.task == "regression":
        z = (labels - predictor.label_mean) / predictor.label_std
        per = (out[:, 0] - z) ** 2
    else:
        per = optax.softmax_cross_entropy_with_integer_labels(out, labels)
    return (per * weights).sum() / jnp.maximum(weights.sum(), 1.0)


def spearman(x, y) -> float:
    """Spearman's rank correlation (the Pearson correlation of the ranks; ties averaged)."""
    from scipy.stats import rankdata

    rx, ry = rankdata(np.asarray(x)), rankdata(np.asarray(y))
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


@eqx.filter_jit
def _predict_and_loss(predictor: Predictor, tokens, labels, weights):
    return jax.vmap(predictor.predict)(tokens), loss_fn(predictor, tokens, labels, weights)


def _predict_all(predictor: Predictor, data: LabelledSequences, batch_size: int) -> tuple[np.ndarray, float]:
    """Predictions in ``data``'s order and the mean loss. Every batch is padded to
    ``batch_size`` rows (weight 0), so one compiled shape serves them all."""
    values, loss = np.empty(len(data), np.float64), 0.0
    for idx in length_buckets([len(s) for s in data.sequences], batch_size, seed=None):
        tokens, _, labels, weights = make_batch(data, idx, rows=batch_size)
        p, l = _predict_and_loss(predictor, tokens, labels, weights)
        values[idx] = np.asarray(p)[: len(idx)]
        loss += float(l) * len(idx)
    return values, loss / max(len(data), 1)


def predictions(predictor: Predictor, data: LabelledSequences, *, batch_size: int = 32) -> np.ndarray:
    """The prediction for every sequence of ``data``, in its order: values in label
    units (regression) or class ids (classification)."""
    batch_size = guards.count("batch_size", batch_size)
    return _predict_all(predictor, data, batch_size)[0]


def evaluate(predictor: Predictor, data: LabelledSequences, *, batch_size: int = 32) -> dict:
    """Loss and the task's metric (``spearman`` or ``accuracy``) on ``data``."""
    batch_size = guards.count("batch_size", batch_size)
    values, loss = _predict_all(predictor, data, batch_size)
    out = {"loss": loss, "n": len(data)}
    if data.task == "regression":
        out["spearman"] = spearman(values, data.labels)
    else:
        out["accuracy"] = float((values == data.labels).mean())
    return out


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


def data_parallel_mesh(devices=None):
    """A 1-D mesh named ``"batch"`` over ``devices`` (default: all of them)."""
    devices = jax.devices() if devices is None else list(devices)
    return jax.sharding.Mesh(np.array(devices), ("batch",))


def _trainable(predictor: Predictor, mode: str):
    if mode == "full":
        spec = jax.tree_util.tree_map(eqx.is_inexact_array, predictor)
    elif mode == "head":
        spec = jax.tree_util.tree_map(lambda _: False, predictor)
        spec = eqx.tree_at(lambda p: p.head, spec, jax.tree_util.tree_map(eqx.is_inexact_array, predictor.head))
    else:
        raise ValueError(f"mode must be 'head' (frozen backbone) or 'full', got {mode!r}")
    # The label standardisation is data, not a parameter.
    return eqx.tree_at(lambda p: (p.label_mean, p.label_std), spec, (False, False))


@functools.lru_cache(maxsize=16)
def _optimizer_and_step(learning_rate: float):
    """AdamW and its jitted training step; cached so that repeated ``train`` calls with
    the same settings reuse the compiled step."""
    opt = optax.adamw(learning_rate, weight_decay=1e-4)

    @eqx.filter_jit
    def step(static, params, opt_state, tokens, labels, weights):
        def f(p):
            return loss_fn(eqx.combine(p, static), tokens, labels, weights)

        loss, grads = jax.value_and_grad(f)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return opt, step


@dataclass
class TrainHistory:
    """Losses per step and validation metrics at each evaluation."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    valid: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"step": self.step, "loss": self.loss, "valid": self.valid}


def _batches(data: LabelledSequences, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    epoch = 0
    while True:
        yield from length_buckets([len(s) for s in data.sequences], batch_size, seed=seed + epoch)
        epoch += 1


def train(
    predictor: Predictor,
    train_set: LabelledSequences,
    valid_set: LabelledSequences | None = None,
    *,
    mode: str = "head",
    steps: int = 100,
    batch_size: int = 16,
    learning_rate: float | Callable[[int], float] | None = None,
    eval_every: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    devices=None,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> tuple[Predictor, TrainHistory]:
    """Fine-tune ``predictor`` with AdamW.

    Arguments:
        mode: ``"head"`` trains only the head (the backbone stays frozen: no gradient
            flows into it); ``"full"`` trains everything.
        steps, batch_size: optimisation steps and sequences per step.
        learning_rate: default ``1e-3`` for ``"head"``, ``1e-4`` for ``"full"``; an optax
            schedule (step -> rate) is accepted too, e.g. a warm-up.
        eval_every: evaluate on ``valid_set`` every this many steps (and at the end).
        checkpoint: when given, the best model so far (by the validation metric, else
            the last) is written there atomically, with a ``.json`` beside it.
        devices: devices to shard each batch over (default: all); the batch is padded
            with zero-weight rows to a multiple of their number, so the loss is the same
            on any number of devices.

    Returns:
        ``(predictor, history)``.
    """
    steps, batch_size = guards.count("steps", steps), guards.count("batch_size", batch_size)
    eval_every = guards.count("eval_every", eval_every) if eval_every is not None else None
    if mode not in ("head", "full"):
        raise ValueError(f"mode must be 'head' (frozen backbone) or 'full', got {mode!r}")
    if learning_rate is not None and not callable(learning_rate):
        learning_rate = guards.positive("learning_rate", learning_rate)
    if not len(train_set):
        raise ValueError("train_set is empty: there is nothing to train on")
    if train_set.task != predictor.task:
        raise ValueError(f"the predictor was made for {predictor.task}, train_set is {train_set.task}; make it with "
                         f"Predictor.init(backbone, {train_set.task!r}, train_set.num_outputs, ...)")
    lr = learning_rate if learning_rate is not None else (1e-3 if mode == "head" else 1e-4)
    mesh = data_parallel_mesh(devices)
    n_dev = mesh.devices.size
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    sharded = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
    # Every weight lives on every device (replicated); each batch is split across them.
    arrays, rest = eqx.partition(predictor, eqx.is_array)
    predictor = eqx.combine(jax.device_put(arrays, replicated), rest)
    params, static = eqx.partition(predictor, _trainable(predictor, mode))
    opt, step = _optimizer_and_step(lr)
    opt_state = opt.init(params)
    rows = -(-batch_size // n_dev) * n_dev

    history = TrainHistory()
    metric = "spearman" if train_set.task == "regression" else "accuracy"
    best = -np.inf
    eval_every = eval_every or steps
    for k, idx in zip(range(1, steps + 1), _batches(train_set, batch_size, seed)):
        tokens, _, labels, weights = make_batch(train_set, idx, rows=rows)
        tokens, labels, weights = jax.device_put((tokens, labels, weights), sharded)
        params, opt_state, loss = step(static, params, opt_state, tokens, labels, weights)
        history.step.append(k)
        history.loss.append(float(loss))
        if k % eval_every == 0 or k == steps:
            model = eqx.combine(params, static)
            if valid_set is not None and len(valid_set):
                res = evaluate(model, valid_set) | {"step": k}
                history.valid.append(res)
                if log:
                    log(f"step {k}: train loss {float(loss):.4f}, valid loss {res['loss']:.4f}, {metric} {res[metric]:.3f}")
                if checkpoint is not None and res[metric] > best:
                    best = res[metric]
                    save_checkpoint(checkpoint, model, {"step": k, **res, "mode": mode})
            elif checkpoint is not None:
                save_checkpoint(checkpoint, model, {"step": k, "train_loss": float(loss), "mode": mode})
    return eqx.combine(params, static), history


# --------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------


class CheckpointError(DataError, ValueError):
    """A checkpoint that cannot be used: missing, truncated, of another model, or with
    non-finite weights. The message names the file and what to do; a
    :class:`workshop.data.DataError`, so ``workshop run`` reports it without a traceback."""


def _finite(tree) -> bool:
    leaves = jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_inexact_array))
    return all(bool(np.isfinite(np.asarray(x)).all()) for x in leaves)


def save_checkpoint(path: str | os.PathLike, predictor: eqx.Module, metadata: dict | None = None) -> Path:
    """Write ``predictor``'s leaves to ``path`` (and ``metadata`` to ``path.json``)
    atomically: a temporary file is written, then moved into place, so a crash never
    leaves a half-written checkpoint.

    Raises:
        CheckpointError: a weight is NaN or infinite (training diverged); the file
            already at ``path``, if any, is left as it was.
    """
    path = Path(path)
    if not _finite(predictor):
        raise CheckpointError(f"{path}: not written, the model has NaN or infinite weights (training diverged: "
                              "lower the learning rate); the file already there, if any, is unchanged")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        eqx.tree_serialise_leaves(f, predictor)
    os.replace(tmp, path)
    if metadata is not None:
        meta = path.with_name(path.name + ".json")
        tmp = meta.with_name(meta.name + ".tmp")
        tmp.write_text(json.dumps(metadata, indent=2, default=float) + "\n")
        os.replace(tmp, meta)
    return path


def load_checkpoint(path: str | os.PathLike, like: eqx.Module) -> eqx.Module:
    """Read a checkpoint into a model of the same structure as ``like``.

    Raises:
        CheckpointError: the file is missing, truncated, holds another model (another
            architecture, head or module: its arrays differ in shape or number from
            ``like``'s) or NaN/infinite weights. The message names the file and the fix:
            train again with another checkpoint path, or delete the file. The file is
            never modified.
    """
    path = Path(path)
    fix = (f"delete {path.name} (or write the next run's checkpoint elsewhere) and train again from the start")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint; train first (finetune.train(..., checkpoint=...))")
    with open(path, "rb") as f:
        try:
            model = eqx.tree_deserialise_leaves(f, like)
        except Exception as exc:  # equinox: truncated (TreePathError) or another shape (RuntimeError)
            shape = re.search(r"changed shape from (\(.*?\)) in `like` to (\(.*?\))", str(exc))
            why = (f"it holds arrays of shape {shape.group(2)} where this model has {shape.group(1)}: a checkpoint "
                   "of another model (another architecture, head or module)" if shape else
                   f"it ends early or is not a checkpoint ({type(exc).__name__}): truncated by a crash or a full "
                   "disk, or another kind of file")
            raise CheckpointError(f"{path} cannot be read as this model's checkpoint: {why}. To start fresh, {fix}") \
                from None
        extra = len(f.read())
    if extra:
        raise CheckpointError(f"{path} cannot be read as this model's checkpoint: {extra} bytes are left over after "
                              f"this model's weights, so it holds a larger model. To start fresh, {fix}")
    if not _finite(model):
        raise CheckpointError(f"{path} holds NaN or infinite weights (a diverged run) and cannot be used: {fix}, "
                              "with a lower learning rate")
    return model
