"""The protein module's command lines: ``workshop protein embed`` and ``workshop protein score``.

Only click is imported here: JAX and the science code load when a command runs, so
that ``workshop --help`` and ``workshop protein embed --help`` answer at once.

Exit codes (the launcher's): 0 done; 2 an input or option that cannot be used as given
(a FASTA or CSV that cannot be read, a variant that does not fit the wild type, an
unknown model or layer, a sequence longer than the model takes); 1 a problem while
running (the model's weights cannot be fetched, the output cannot be written);
130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

_MODEL_HELP = ("'embedded' or a published ESM2: esm2_t6_8M_UR50D, esm2_t12_35M_UR50D, esm2_t30_150M_UR50D, "
               "esm2_t33_650M_UR50D. Default: the preset's model (ESM2-8M on a CPU, fetched once), or the "
               "embedded model when ESM2 cannot be fetched.")
_PRESET_HELP = "tiny, cpu, gpu or full: chooses the default model (default: detected)."


def _info(message: str) -> None:
    click.echo(message, err=True)


def _load_model(requested: str | None, preset: str | None):
    """``(model, info)`` through ``models.select_model``; bad names are usage errors."""
    from workshop import hardware

    from .models import UnknownModel, select_model

    try:  # the preset only chooses the default model; detecting it imports JAX
        chosen = (hardware.validate_preset(preset) if preset else "cpu") if requested else \
            hardware.resolve_preset(preset, None)[0]
    except hardware.PresetError as exc:
        raise click.BadParameter(str(exc), param_hint="'--preset'") from None
    try:
        return select_model(requested, chosen, log=_info)
    except UnknownModel as exc:
        raise click.BadParameter(str(exc), param_hint="'--model'") from None
    except ValueError as exc:  # a weights file that is not that model's checkpoint
        raise click.ClickException(f"cannot load the model: {exc}") from None


def _write(what: str, path: Path, write) -> Path:
    try:
        return write()
    except OSError as exc:
        raise click.ClickException(f"cannot write the {what} to {path}: {exc.strerror or exc}") from None


def _too_long_message(exc) -> str:
    others = f" ({exc.count} sequences are over the limit)" if exc.count > 1 else ""
    return (f"{exc.name} has {exc.length} residues; ESM2 was trained on at most {exc.limit} residues "
            f"(plus <cls> and <eos>){others}. Use --too-long truncate to embed the first {exc.limit} residues, "
            f"or --too-long window to embed overlapping windows of {exc.limit} and average them.")


@click.command()
@click.argument("fasta", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The .npz file to write (default: FASTA's name with _embeddings.npz, in this folder).")
@click.option("--model", default=None, metavar="NAME", help=_MODEL_HELP)
@click.option("--preset", default=None, help=_PRESET_HELP)
@click.option("--layer", default=-1, show_default=True, type=int,
              help="Layer to read: 0 is the token embedding, 1..N the transformer layers, -1 the last (after "
                   "the final LayerNorm, as ESM's own embeddings).")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1),
              help="Sequences embedded together (of similar lengths).")
@click.option("--too-long", type=click.Choice(["error", "truncate", "window"]), default="error", show_default=True,
              help="A sequence over 1022 residues (ESM2's limit): refuse it, embed its first 1022 residues, or "
                   "embed overlapping windows and average them.")
def embed(fasta: Path, out: Path | None, model: str | None, preset: str | None, layer: int, batch_size: int,
          too_long: str) -> None:
    """Per-residue and mean-pooled embeddings of every protein in FASTA, written to an .npz.

    \b
    Examples:
      workshop protein embed seqs.fasta -o seqs.npz
      workshop protein embed seqs.fasta -o layer3.npz --model esm2_t6_8M_UR50D --layer 3
    \b
    The .npz (read it with numpy.load) holds:
      names, sequences   (N,) strings, in the FASTA's order
      pooled             (N, D) the mean over each protein's residues
      residues, offsets  protein i's (L_i, D) vectors are residues[offsets[i]:offsets[i+1]]
      lengths, truncated (N,) residues embedded, and whether the protein was truncated
      model, layer, num_layers
    """
    from .embeddings import FastaError, TooLong, check_sequences, read_fasta, resolve_layer, save_embeddings
    from .embeddings import embed as embed_sequences
    from .tokens import MAX_RESIDUES

    try:
        records = read_fasta(fasta)
        check_sequences(records, too_long=too_long)
    except FastaError as exc:
        raise click.BadParameter(str(exc), param_hint="'FASTA'") from None
    except TooLong as exc:
        raise click.BadParameter(_too_long_message(exc), param_hint="'FASTA'") from None
    out = out or Path(f"{fasta.stem}_embeddings.npz")
    net, info = _load_model(model, preset)
    try:
        chosen = resolve_layer(net, layer)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--layer'") from None
    _info(f"Embedding {len(records)} protein(s) at layer {chosen} of {net.num_layers}, {batch_size} at a time…")
    emb = embed_sequences(net, records, layer=chosen, batch_size=batch_size, too_long=too_long,
                          progress=sys.stderr.isatty())
    path = _write("embeddings", out, lambda: save_embeddings(out, emb, model_name=info.name))
    cut = [n for n, t in zip(emb.names, emb.truncated) if t]
    if cut:
        _info(f"Truncated to their first {MAX_RESIDUES} residues: {', '.join(cut)}")
    click.echo(f"Wrote {path}: {len(emb.names)} proteins, pooled {emb.pooled.shape[0]}×{emb.pooled.shape[1]}, "
               f"{int(emb.lengths.sum())} residue vectors; layer {emb.layer} of {emb.num_layers} of {info.name}.")


def _wildtype(text: str) -> tuple[str, str]:
    """``(name, sequence)`` of the wild type given as a sequence or a one-record FASTA."""
    from .embeddings import FastaError, read_fasta
    from .tokens import AMINO_ACIDS, MAX_RESIDUES

    path = Path(text).expanduser()
    if path.is_file():
        try:
            records = read_fasta(path)
        except FastaError as exc:
            raise click.BadParameter(str(exc), param_hint="'--sequence'") from None
        if len(records) != 1:
            names = ", ".join(r.name for r in records[:5]) + (", ..." if len(records) > 5 else "")
            raise click.BadParameter(f"{path} holds {len(records)} records ({names}); give a FASTA with the wild "
                                     "type alone", param_hint="'--sequence'")
        name, seq = records[0].name, records[0].sequence
    elif path.suffix.lower() in {".fa", ".fasta", ".faa", ".fas", ".txt"} or "/" in text or "\\" in text:
        raise click.BadParameter(f"there is no file {text}", param_hint="'--sequence'")
    else:
        name, seq = "the wild type", "".join(text.split()).upper()
    bad = next((i for i, a in enumerate(seq) if a not in AMINO_ACIDS), None)
    if bad is not None:
        raise click.BadParameter(f"{name} has {seq[bad]!r} at position {bad + 1}; mutation scores need the 20 "
                                 f"standard amino acids {AMINO_ACIDS}", param_hint="'--sequence'")
    if len(seq) > MAX_RESIDUES:
        raise click.BadParameter(f"{name} has {len(seq)} residues; ESM2 was trained on at most {MAX_RESIDUES}. Give "
                                 "the domain that holds the variants (and number the variants from its first "
                                 "residue)", param_hint="'--sequence'")
    return name, seq


@click.command()
@click.argument("variants", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-s", "--sequence", required=True, metavar="SEQ_OR_FASTA",
              help="The wild type: the sequence itself, or a FASTA file holding it alone.")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The CSV to write (default: VARIANTS' name with _scores.csv, in this folder).")
@click.option("--method", type=click.Choice(["masked", "wildtype"]), default="masked", show_default=True,
              help="masked: masked marginal (one masked pass per position; the better score); "
                   "wildtype: wild-type marginal (one pass).")
@click.option("--model", default=None, metavar="NAME", help=_MODEL_HELP)
@click.option("--preset", default=None, help=_PRESET_HELP)
@click.option("--column", default="variant", show_default=True,
              help="The CSV column holding the variants (A23G, A4G:R10W, or WT).")
def score(variants: Path, sequence: str, out: Path | None, method: str, model: str | None, preset: str | None,
          column: str) -> None:
    """Zero-shot scores of the VARIANTS of a wild type, written as CSV.

    VARIANTS is a CSV (or TSV) with a column of variants, 'A23G' (wild type, 1-based
    position, mutant) or 'A4G:R10W' for a multi-mutant, or a FASTA of mutant sequences
    the length of the wild type. Each variant is checked against the wild type first.
    The output is the input's columns plus n_mutations and score_masked_marginal (or
    score_wildtype_marginal): log p(mutant) - log p(wild type), summed over a
    multi-mutant's substitutions; negative means less likely than the wild type.

    \b
    Examples:
      workshop protein score dms.csv --sequence MKTAYIAKQRQISFVKSHFSRQ -o scored.csv
      workshop protein score dms.csv --sequence wildtype.fasta --column mutant --method wildtype
    """
    from .embeddings import FastaError
    from .variants import METHODS, MissingColumn, VariantError, check_variants, read_variants, score_variants, write_scores

    name, wildtype = _wildtype(sequence)
    try:
        table = read_variants(variants, column=column, wildtype=wildtype)
        parsed = check_variants(table, wildtype)
    except MissingColumn as exc:
        raise click.BadParameter(f"{exc}; name the variants' column with --column", param_hint="'--column'") from None
    except (VariantError, FastaError) as exc:
        raise click.BadParameter(str(exc), param_hint="'VARIANTS'") from None
    out = out or Path(f"{variants.stem}_scores.csv")
    if out.exists() and out.resolve() == variants.resolve():
        raise click.BadParameter(f"{out} is the VARIANTS file itself; writing the scores there would replace "
                                 f"your input. Choose another name, e.g. -o {variants.stem}_scores.csv",
                                 param_hint="'-o'")
    net, info = _load_model(model, preset)
    passes = f"{len(wildtype)} masked passes" if method == "masked" else "one pass"
    _info(f"Scoring {len(table)} variant(s) of {name} ({len(wildtype)} residues) by {METHODS[method]} ({passes})…")
    scores = score_variants(net, wildtype, table.variants, method=method)
    column_name = f"score_{METHODS[method]}"
    path = _write("scores", out, lambda: write_scores(out, table, {"n_mutations": [len(p) for p in parsed],
                                                                    column_name: scores}))
    low, high = int(scores.argmin()), int(scores.argmax())
    click.echo(f"Wrote {path}: {len(table)} variants, column {column_name} ({info.name}); "
               f"lowest {table.variants[low]} {scores[low]:.3f}, highest {table.variants[high]} {scores[high]:.3f}.")
