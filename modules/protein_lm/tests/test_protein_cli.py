"""``workshop protein embed`` and ``workshop protein score`` through the real launcher, on the embedded model."""

from __future__ import annotations

import csv
import gzip
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from click.testing import CliRunner

from workshop import _plugins
from workshop.cli import main
from workshop_protein.embeddings import embed, hidden_states, read_fasta
from workshop_protein.models import load_model
from workshop_protein.mutations import masked_marginal_scores
from workshop_protein.tokens import AMINO_ACIDS, tokenize

WT = "MKTAYIAKQRQISFVKSHFSRQ"  # A4 and R10, as in the variants below
SEQS = {"ubq_start": "MQIFVKTLTGKTITLEVEPSDTIENV", "wt": WT, "short": "MKVLAAGIVG"}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKSHOP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("WORKSHOP_PROGRESS", str(tmp_path / "progress.json"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("WORKSHOP_OFFLINE", raising=False)
    monkeypatch.delenv("WORKSHOP_PRESET", raising=False)
    monkeypatch.chdir(tmp_path)
    _plugins.set_registry(None)
    yield
    _plugins.set_registry(None)


@pytest.fixture(scope="module")
def model():
    return load_model("embedded")[0]


def workshop(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def write_fasta(path, records):
    path.write_text("".join(f">{name} a description\n{seq[:15]}\n{seq[15:]}\n" for name, seq in records.items()))
    return path


def test_embed_writes_per_residue_and_pooled_embeddings(tmp_path, model):
    fasta = write_fasta(tmp_path / "seqs.fasta", SEQS)
    r = workshop("protein", "embed", fasta, "-o", tmp_path / "out.npz", "--model", "embedded", "--layer", "2",
                 "--batch-size", "2")
    assert r.exit_code == 0, r.output
    assert "Wrote" in r.output and "layer 2 of 4 of embedded" in r.output
    with np.load(tmp_path / "out.npz", allow_pickle=False) as z:
        assert z["names"].tolist() == list(SEQS) and z["sequences"].tolist() == list(SEQS.values())
        assert str(z["model"]) == "embedded" and int(z["layer"]) == 2 and int(z["num_layers"]) == 4
        n, d = len(SEQS), model.embed_size
        assert z["pooled"].shape == (n, d) and z["lengths"].tolist() == [len(s) for s in SEQS.values()]
        assert not z["truncated"].any()
        for i, seq in enumerate(SEQS.values()):
            per_residue = z["residues"][z["offsets"][i] : z["offsets"][i + 1]]
            assert per_residue.shape == (len(seq), d)
            np.testing.assert_allclose(z["pooled"][i], per_residue.mean(axis=0), atol=1e-6)
        # Batched and padded, yet equal to one sequence run alone through layer 2.
        alone = np.asarray(hidden_states(model, jnp.asarray(tokenize(WT)), 2))[1:-1]
        np.testing.assert_allclose(z["residues"][z["offsets"][1] : z["offsets"][2]], alone, atol=1e-4)


def test_the_last_layer_is_the_models_own_output(tmp_path, model):
    fasta = write_fasta(tmp_path / "seqs.fasta", {"wt": WT})
    r = workshop("protein", "embed", fasta, "--model", "embedded")  # default output name and layer -1
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "seqs_embeddings.npz") as z:
        assert int(z["layer"]) == 4
        np.testing.assert_allclose(z["residues"], np.asarray(model(jnp.asarray(tokenize(WT))).hidden)[1:-1], atol=1e-4)


def test_too_long_is_refused_with_advice_or_truncated(tmp_path):
    long_seq = (AMINO_ACIDS * 52)[:1030]
    fasta = write_fasta(tmp_path / "long.fasta", {"long_one": long_seq, "short": SEQS["short"]})
    r = workshop("protein", "embed", fasta, "-o", tmp_path / "x.npz", "--model", "embedded")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "long_one has 1030 residues" in r.output and "at most 1022" in r.output
    assert "--too-long truncate" in r.output and "--too-long window" in r.output
    assert not (tmp_path / "x.npz").exists()
    r = workshop("protein", "embed", fasta, "-o", tmp_path / "x.npz", "--model", "embedded", "--too-long", "truncate")
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "x.npz") as z:
        assert z["lengths"].tolist() == [1022, len(SEQS["short"])]
        assert z["truncated"].tolist() == [True, False]
        assert z["residues"].shape[0] == 1022 + len(SEQS["short"])


def test_windows_cover_a_long_sequence_and_agree_where_one_window_sees_it(model):
    seq = (AMINO_ACIDS * 3)[:50]
    emb = embed(model, [seq, seq[:12]], too_long="window", max_residues=20, progress=False)
    assert emb.per_residue[0].shape == (50, model.embed_size) and not emb.truncated.any()
    first_window = embed(model, [seq[:20]], progress=False).per_residue[0]
    np.testing.assert_allclose(emb.per_residue[0][:10], first_window[:10], atol=1e-4)  # only window 0 covers them
    np.testing.assert_allclose(emb.per_residue[1], embed(model, [seq[:12]], progress=False).per_residue[0], atol=1e-4)


def test_many_lengths_compile_few_shapes(model, monkeypatch):
    from workshop_protein import embeddings

    shapes, compiled = [], embeddings._batch_hidden_states

    def recording(m, tokens, layer):
        shapes.append(tokens.shape)
        return compiled(m, tokens, layer)

    monkeypatch.setattr(embeddings, "_batch_hidden_states", recording)
    seqs = [(AMINO_ACIDS * 2)[:n] for n in range(10, 30)]  # 20 lengths: 12..31 tokens
    emb = embed(model, seqs[::-1], batch_size=4, progress=False)
    assert [len(p) for p in emb.per_residue] == list(range(29, 9, -1))  # the input's order is kept
    assert set(shapes) == {(4, 16), (4, 32)}


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"MKTAYIAKQR\n", "line 1 comes before any '>' header"),
        (b">a\nMKTAYIAKQR\n>b\nMKV\n>a\nMKV\n", "the record name 'a' appears twice (lines 1 and 5)"),
        (b">good\nMKTAYIAKQR\n>bad one\nMKTA\nYIJKQR\n", "record 'bad', residue 7 (line 5): invalid character 'J'"),
        (b">gap\nMKT-AYIAKQR\n", "record 'gap', residue 4 (line 2): invalid character '-'"),
        (b">empty\n>next\nMKV\n", "record 'empty' (line 1) has no sequence"),
        (b">latin1\nMKV\n>caf\xe9\nMKV\n", "is not UTF-8 text: byte 0xe9 on line 3"),
        (gzip.compress(b">x\nMKV\n", mtime=0), "is gzip-compressed"),
    ],
)
def test_fasta_problems_are_usage_errors_naming_the_record(tmp_path, content, message):
    path = tmp_path / "in.fasta"
    path.write_bytes(content)
    r = workshop("protein", "embed", path, "--model", "embedded")
    assert r.exit_code == 2, r.output
    assert message in r.output and "Invalid value for 'FASTA'" in r.output
    assert "Traceback" not in r.output


def test_read_fasta_joins_lines_and_drops_a_final_stop(tmp_path):
    path = tmp_path / "x.fa"
    path.write_text("; a comment\n>p1 first protein\nmkt ay\nIAK*\n\n>p2\nMKV\n")
    records = read_fasta(path)
    assert [(r.name, r.sequence, r.description) for r in records] == [("p1", "MKTAYIAK", "first protein"), ("p2", "MKV", "")]


@pytest.mark.parametrize(
    "args, message",
    [
        (("--model", "esm3"), "unknown model 'esm3'"),
        (("--model", "embedded", "--layer", "9"), "layer 9 does not exist in this 4-layer model"),
        (("--model", "embedded", "--too-long", "cut"), "'cut' is not one of 'error', 'truncate', 'window'"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path, args, message):
    fasta = write_fasta(tmp_path / "seqs.fasta", {"wt": WT})
    r = workshop("protein", "embed", fasta, *args)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_a_model_that_cannot_be_fetched_is_a_data_problem(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_OFFLINE", "1")
    fasta = write_fasta(tmp_path / "seqs.fasta", {"wt": WT})
    r = workshop("protein", "embed", fasta, "--model", "esm2_t6_8M_UR50D")
    assert r.exit_code == 1 and "data problem:" in r.output and "Traceback" not in r.output


def write_variants(path, variants):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "variant", "fitness"])
        for k, v in enumerate(variants):
            w.writerow([f"v{k}", v, f"{0.1 * k:.1f}"])
    return path


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_score_round_trip_with_additive_multi_mutants(tmp_path, model):
    path = write_variants(tmp_path / "dms.csv", ["A4G", "R10W", "A4G:R10W", "WT", "k8e"])
    r = workshop("protein", "score", path, "--sequence", WT, "-o", tmp_path / "scored.csv", "--model", "embedded")
    assert r.exit_code == 0, r.output
    rows = read_csv(tmp_path / "scored.csv")
    assert list(rows[0]) == ["id", "variant", "fitness", "n_mutations", "score_masked_marginal"]
    assert [r["id"] for r in rows] == ["v0", "v1", "v2", "v3", "v4"] and rows[2]["fitness"] == "0.2"
    s = {r["variant"]: float(r["score_masked_marginal"]) for r in rows}
    assert [r["n_mutations"] for r in rows] == ["1", "1", "2", "0", "1"]
    assert s["A4G:R10W"] == pytest.approx(s["A4G"] + s["R10W"], rel=1e-4, abs=1e-5)
    assert s["WT"] == 0.0
    table = masked_marginal_scores(model, WT)
    assert s["A4G"] == pytest.approx(table[3, AMINO_ACIDS.index("G")], rel=1e-4, abs=1e-5)
    assert s["k8e"] == pytest.approx(table[7, AMINO_ACIDS.index("E")], rel=1e-4, abs=1e-5)


def test_a_wild_type_mismatch_names_the_row(tmp_path):
    path = write_variants(tmp_path / "dms.csv", ["A4G", "R10W", "K4G", "A4G:Q10W"])
    r = workshop("protein", "score", path, "--sequence", WT, "--model", "embedded")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "2 of 4 variants do not fit the wild type (22 residues)" in r.output
    assert "row 3 (line 4): 'K4G': the sequence has 'A' at position 4, not 'K'" in r.output
    assert "row 4 (line 5), variant 'A4G:Q10W': 'Q10W': the sequence has 'R' at position 10" in r.output
    assert not (tmp_path / "dms_scores.csv").exists()


def test_score_reads_the_wild_type_from_fasta_and_variants_from_a_fasta(tmp_path):
    (tmp_path / "wt.fasta").write_text(f">wt\n{WT}\n")
    mutant = WT[:3] + "G" + WT[4:9] + "W" + WT[10:]
    (tmp_path / "mutants.fasta").write_text(f">double\n{mutant}\n>same\n{WT}\n")
    r = workshop("protein", "score", tmp_path / "mutants.fasta", "--sequence", tmp_path / "wt.fasta", "--model",
                 "embedded", "--method", "wildtype", "-o", tmp_path / "out.csv")
    assert r.exit_code == 0, r.output
    rows = read_csv(tmp_path / "out.csv")
    assert [(r["name"], r["variant"], r["n_mutations"]) for r in rows] == [("double", "A4G:R10W", "2"), ("same", "WT", "0")]
    assert float(rows[1]["score_wildtype_marginal"]) == 0.0 and float(rows[0]["score_wildtype_marginal"]) != 0.0


@pytest.mark.parametrize(
    "args, message",
    [
        (("--sequence", WT, "--column", "mutant"), "no column 'mutant'; its columns are id, variant, fitness"),
        (("--sequence", "MKTXYIAKQR"), "has 'X' at position 4"),
        (("--sequence", "wildtype.fasta"), "there is no file wildtype.fasta"),
        (("--sequence", "two.fasta"), "holds 2 records (a, b)"),
        (("--sequence", WT, "--method", "best"), "'best' is not one of 'masked', 'wildtype'"),
    ],
)
def test_score_usage_errors(tmp_path, args, message):
    (tmp_path / "two.fasta").write_text(">a\nMKV\n>b\nMKV\n")
    path = write_variants(tmp_path / "dms.csv", ["A4G"])
    r = workshop("protein", "score", path, *args, "--model", "embedded")
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_score_refuses_to_write_over_its_input(tmp_path):
    path = write_variants(tmp_path / "dms.csv", ["A4G"])
    before = path.read_bytes()
    r = workshop("protein", "score", path, "--sequence", WT, "-o", str(path), "--model", "embedded")
    assert r.exit_code == 2 and "is the VARIANTS file itself" in r.output and "-o dms_scores.csv" in r.output
    assert path.read_bytes() == before


def test_help_of_the_protein_commands_imports_neither_jax_nor_numpy():
    for args in (["protein", "--help"], ["protein", "embed", "--help"], ["protein", "score", "--help"]):
        code = (f"import sys; from workshop.cli import main\ntry:\n    main({args!r}, prog_name='workshop')\n"
                "except SystemExit:\n    pass\n"
                "print('JAX-IMPORTED' if 'jax' in sys.modules or 'numpy' in sys.modules else 'light')")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().endswith("light"), args
        assert "Usage: workshop protein" in out.stdout
