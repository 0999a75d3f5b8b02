"""Fault catalogue of the protein module: every bad input is refused with a message that
names the problem (file, line, column, argument, value) and the fix, and nothing the user
had is lost. Everything here fails before any JAX compilation."""

from __future__ import annotations

import gzip
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from click.testing import CliRunner

from workshop import _plugins
from workshop.cli import EXIT_PROBLEM, main, reported_errors
from workshop.data import DataError
from workshop_protein import contacts, design, embeddings, finetune, fold, mlm, models, zero_shot
from workshop_protein.dms import DMSTableError, read_dms_table
from workshop_protein.finetune import CheckpointError, LabelledDataError, Predictor, load_checkpoint, read_labelled, save_checkpoint
from workshop_protein.models import ModelFileError, read_model, save_model

SEQS = ["MKTAYIAKQR", "GGSLLAKVE", "PEPTIDEKR", "MKVLAAGIV", "ACDEFGHIK", "LMNPQRSTV"]


def _csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _rows(labels, header="sequence,y"):
    return header + "\n" + "".join(f"{s},{y}\n" for s, y in zip(SEQS, labels))


# --- read_labelled: (file text, keyword arguments, expected words in the message) ----------

LABELLED_FAULTS = {
    "no label column": ("sequence\nMKTAYIAKQR\nGGSLLAKVE\n", {}, ["one column", "sequence column and a label column"]),
    "label is the sequence column": (_rows([1, 0, 1, 0, 1, 0]), {"label": "sequence"},
                                     ["label column is the sequence column", "label=..."]),
    "NaN label": (_rows([0.1, "nan", 0.3, 0.4, 0.5, 0.6]), {}, ["line 3", "missing", "fill it in or delete"]),
    "NaN label (regression)": (_rows([0.1, 0.2, "NaN", 0.4, 0.5, 0.6]), {"task": "regression"}, ["line 4", "missing"]),
    "inf label": (_rows([0.1, 0.2, 0.3, "inf", 0.5, 0.6]), {}, ["line 5", "'inf'", "not a finite number"]),
    "-inf label": (_rows([0.1, 0.2, 0.3, 0.4, "-Infinity", 0.6]), {}, ["line 6", "not a finite number"]),
    "one word among numbers": (_rows([0.1, 0.2, "high", 0.4, 0.5, 0.6]), {},
                               ["line 4", "'high' is not a number", "5 of 6", "task='classification'"]),
    "decimal comma": ('sequence,y\n' + "".join(f'{s},"{i},5"\n' if i == 2 else f"{s},{i}.5\n"
                                               for i, s in enumerate(SEQS)), {}, ["decimal comma", "line 4"]),
    "word label for regression": (_rows(["a", "b", "a", "b", "a", "b"]), {"task": "regression"},
                                  ["line 2", "'a' is not a number"]),
    "repeated header row": ("sequence,y\nMKTAYIAKQR,1\nGGSLLAKVE,0\nsequence,y\nPEPTIDEKR,1\n", {},
                            ["line 4 repeats the header row of line 1", "delete it"]),
    "short row": ("sequence,y\nMKTAYIAKQR,1\nGGSLLAKVE\nPEPTIDEKR,0\n", {}, ["line 3 has 1 cells, the header 2"]),
    "stray comma": ("sequence,y\nMKTAYIAKQR,1,\nGGSLLAKVE,0\n", {}, ["line 2 has 3 cells", "stray ','"]),
    "empty label cell": ("sequence,y\nMKTAYIAKQR,1\nGGSLLAKVE,\nPEPTIDEKR,0\n", {}, ["line 3", "label is missing"]),
    "empty sequence cell": ("sequence,y\nMKTAYIAKQR,1\n,0\nPEPTIDEKR,0\n", {}, ["line 3", "sequence is empty"]),
    "one class": (_rows([1, 1, 1, 1, 1, 1]), {}, ["every label", "at least two classes", "right column"]),
    "constant regression": (_rows([2.5] * 6), {"task": "regression"}, ["every label", "nothing to learn"]),
    "identifiers as labels": ("sequence,name\n" + "".join(f"{s}{a},id{i}\n" for i, s in enumerate(SEQS * 4)
                                                          for a in "K"), {},
                              ["24 different labels among 24 rows", "not classes", "label=..."]),
    "not an amino acid": (_rows([1, 0, 1, 0, 1, 0]).replace("PEPTIDEKR", "PEPT1DEKR"), {},
                          ["record 3 (line 4)", "'1'"]),
    "unknown column": (_rows([1, 0, 1, 0, 1, 0]), {"label": "tm"}, ["no column 'tm'", "'sequence', 'y'"]),
    "duplicate column": ("sequence,y,y\n" + "".join(f"{s},1,0\n" for s in SEQS), {"label": "y"},
                         ["2 columns are named 'y'", "rename"]),
    "header only": ("sequence,y\n", {}, ["no labelled sequences"]),
    "tab-separated file named .csv": ("sequence\ty\nMKTAYIAKQR\t1\n", {}, ["one column", "tabs", ".tsv"]),
}


@pytest.mark.parametrize("case", list(LABELLED_FAULTS))
def test_read_labelled_refuses(tmp_path, case):
    text, kwargs, words = LABELLED_FAULTS[case]
    path = _csv(tmp_path, text)
    with pytest.raises(LabelledDataError) as exc:
        read_labelled(path, **kwargs)
    assert str(path) in str(exc.value)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))
    assert path.read_text() == text  # the file is only read
    assert isinstance(exc.value, DataError)  # `workshop run` reports it as a data problem, without a traceback


def test_read_labelled_names_line_and_column_attributes(tmp_path):
    path = _csv(tmp_path, _rows([0.1, 0.2, "inf", 0.4, 0.5, 0.6]))
    with pytest.raises(LabelledDataError) as exc:
        read_labelled(path)
    assert (exc.value.line, exc.value.column) == (4, "y")


@pytest.mark.parametrize("raw,words", [
    (b"sequence,y\nMKTAYIAKQR,caf\xe9\n", ["not UTF-8", "line 2", "encoding"]),
    (gzip.compress(b"sequence,y\nMKTAYIAKQR,1\n", mtime=0), ["gzip-compressed", "gunzip"]),
    (b"", ["is empty"]),
])
def test_read_labelled_refuses_files_that_are_not_text(tmp_path, raw, words):
    path = tmp_path / "data.csv"
    path.write_bytes(raw)
    with pytest.raises(LabelledDataError) as exc:
        read_labelled(path)
    assert all(w in str(exc.value) for w in words), str(exc.value)


def test_read_labelled_missing_file_and_bad_task(tmp_path):
    with pytest.raises(LabelledDataError, match="no such file"):
        read_labelled(tmp_path / "absent.csv")
    with pytest.raises(ValueError, match=r"task must be 'regression', 'classification' or None \(decide from the labels\), got 'regresion'"):
        read_labelled(_csv(tmp_path, _rows([1, 0, 1, 0, 1, 0])), task="regresion")


@pytest.mark.parametrize("text,words", [
    (">p1\nMKTAYIAKQR\n>p2 label=0\nGGSLLAKVE\n", ["record 'p1' (line 1) has no label", ">p1 label=VALUE"]),
    (">p1 label=1\nMKTAYIAKQR\n>p2 label=nan\nGGSLLAKVE\n>p3 label=0\nPEPTIDEKR\n", ["record 'p2' (line 3)", "missing"]),
    (">p1 label=1\nMKTAYIAKQR\n>p1 label=0\nGGSLLAKVE\n", ["'p1' appears twice"]),
    ("MKTAYIAKQR\n", ["before any '>' header"]),
])
def test_read_labelled_fasta_refuses(tmp_path, text, words):
    path = _csv(tmp_path, text, "data.fasta")
    with pytest.raises(LabelledDataError) as exc:
        read_labelled(path)
    assert all(w in str(exc.value) for w in words), str(exc.value)


def test_read_labelled_accepts_what_it_should(tmp_path):
    # 1 and 1.0 are one class; a TSV is read by its suffix; FASTA labels by key or last word.
    d = read_labelled(_csv(tmp_path, _rows([1, "1.0", 0, "0.0", 1, 0])))
    assert d.task == "classification" and d.classes == ("0", "1") and d.labels.tolist() == [1, 1, 0, 0, 1, 0]
    t = read_labelled(_csv(tmp_path, _rows([0.5, 1.5, 2.5, 3.5, 4.5, 5.5]).replace(",", "\t"), "d.tsv"))
    assert t.task == "regression" and t.labels.tolist() == [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]
    f = read_labelled(_csv(tmp_path, ">a 41.5\nMKV\n>b two words 55\nGGG\n>c 60.25\nAC\n", "d.fa"))
    assert f.task == "regression" and f.labels.tolist() == [41.5, 55.0, 60.25]  # the header's last word
    g = read_labelled(_csv(tmp_path, ">a tm=41.5\nMKV\n>b tm=55 x\nGGG\n>c tm=60.25\nAC\n", "g.fa"), label="tm")
    assert g.labels.tolist() == [41.5, 55.0, 60.25]


# --- checkpoints -------------------------------------------------------------------------


def tiny_esm2(num_layers: int):
    """A small ESM2 with random weights, filled in from its shapes (faster than running its initialisers)."""
    rng = np.random.default_rng(num_layers)
    return jax.tree_util.tree_map(
        lambda x: (0.1 * rng.standard_normal(x.shape)).astype(x.dtype) if isinstance(x, jax.ShapeDtypeStruct) else x,
        models._skeleton(num_layers, 16, 2, False))


@pytest.fixture(scope="module")
def backbone():
    return tiny_esm2(1)


@pytest.fixture(scope="module")
def predictor(backbone):
    return Predictor.init(backbone, "classification", 2, key=jax.random.key(1), hidden=8)


def _nan_head(p):
    return eqx.tree_at(lambda q: q.head.layers[0].bias, p, jnp.full_like(p.head.layers[0].bias, jnp.nan))


def test_checkpoint_round_trip_still_works(tmp_path, predictor):
    path = save_checkpoint(tmp_path / "best.eqx", predictor, {"step": 1})
    back = load_checkpoint(path, predictor)
    assert np.array_equal(np.asarray(back.head.layers[0].weight), np.asarray(predictor.head.layers[0].weight))


@pytest.mark.parametrize("case", ["truncated", "empty", "another head", "a deeper backbone", "more arrays",
                                  "NaN weights", "text"])
def test_load_checkpoint_refuses(tmp_path, backbone, predictor, case):
    path = tmp_path / "best.eqx"
    if case in ("truncated", "empty", "text"):
        save_checkpoint(path, predictor)
        data = path.read_bytes()
        path.write_bytes({"truncated": data[: len(data) // 2], "empty": b"", "text": b"step,loss\n1,0.5\n" * 20}[case])
    elif case == "another head":  # three classes where the model has two
        save_checkpoint(path, Predictor.init(backbone, "classification", 3, key=jax.random.key(1), hidden=8))
    elif case == "a deeper backbone":  # layers are stacked: a two-layer backbone has other shapes
        save_checkpoint(path, Predictor.init(tiny_esm2(2), "classification", 2, key=jax.random.key(1), hidden=8))
    elif case == "more arrays":  # this model's arrays and more after them (a file of a larger model)
        with open(path, "wb") as f:
            eqx.tree_serialise_leaves(f, (predictor, jnp.zeros((4, 4))))
    else:
        with open(path, "wb") as f:  # written by hand: save_checkpoint refuses NaN weights
            eqx.tree_serialise_leaves(f, _nan_head(predictor))
    before = path.read_bytes()
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path, predictor)
    message = str(exc.value)
    assert str(path) in message and "delete best.eqx" in message, message
    expected = {"truncated": "ends early", "empty": "ends early", "text": "not a checkpoint",
                "another head": "of shape (3, 8) where this model has (2, 8)", "more arrays": "left over",
                "a deeper backbone": "where this model has (1, ",
                "NaN weights": "NaN or infinite"}[case]
    assert expected in message, message
    assert isinstance(exc.value, DataError) and isinstance(exc.value, ValueError)
    assert path.read_bytes() == before  # never modified


def test_load_checkpoint_missing_file(tmp_path, predictor):
    with pytest.raises(CheckpointError, match="no such checkpoint; train first"):
        load_checkpoint(tmp_path / "absent.eqx", predictor)


def test_save_checkpoint_never_overwrites_with_nan_weights(tmp_path, predictor):
    path = save_checkpoint(tmp_path / "best.eqx", predictor, {"step": 3})
    before, meta = path.read_bytes(), (tmp_path / "best.eqx.json").read_text()
    with pytest.raises(CheckpointError, match="NaN or infinite weights .*lower the learning rate.*unchanged"):
        save_checkpoint(path, _nan_head(predictor), {"step": 4})
    assert path.read_bytes() == before and (tmp_path / "best.eqx.json").read_text() == meta
    assert not (tmp_path / "best.eqx.tmp").exists()


# --- model files (read_model) --------------------------------------------------------------


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, backbone):
    return save_model(tmp_path_factory.mktemp("m") / "model.npz", backbone, metadata={"note": "test"})


def _rewrite(src, dst, change):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    np.savez(dst, **arrays)


def _config(arrays, **edits):
    config = json.loads(bytes(arrays["config_json"]).decode()) | edits
    arrays["config_json"] = np.frombuffer(json.dumps(config).encode(), np.uint8)


MODEL_FAULTS = {
    "truncated": (lambda src, dst: dst.write_bytes(src.read_bytes()[:2000]), "cannot be read"),
    "not a zip": (lambda src, dst: dst.write_text("name,sequence\n"), "not an .npz model file"),
    "another module's npz": (lambda src, dst: np.savez(dst, train=np.zeros((2, 8, 8, 3), np.uint8)),
                             "has no 'config_json' (its arrays are train)"),
    "another format": (lambda src, dst: _rewrite(src, dst, lambda a: _config(a, format="workshop-astro/1")),
                       "format 'workshop-astro/1'"),
    "config for another width": (lambda src, dst: _rewrite(src, dst, lambda a: _config(a, embed_size=32)),
                                 "the architecture needs"),
    "an array missing": (lambda src, dst: _rewrite(src, dst, lambda a: a.pop(sorted(a)[-2])),
                         "weight arrays, the 1-layer ESM2 it declares needs"),
    "NaN weights": (lambda src, dst: _rewrite(src, dst, lambda a: a["leaf_0000"].__setitem__((0, 0), np.nan)),
                    "NaN or infinite weights"),
}


@pytest.mark.parametrize("case", list(MODEL_FAULTS))
def test_read_model_refuses(tmp_path, model_file, case):
    make, expected = MODEL_FAULTS[case]
    path = tmp_path / "model.npz"
    make(model_file, path)
    before = path.read_bytes()
    with pytest.raises(ModelFileError) as exc:
        read_model(path)
    assert str(path) in str(exc.value) and expected in str(exc.value), str(exc.value)
    assert isinstance(exc.value, DataError)
    assert path.read_bytes() == before


def test_read_model_missing_and_good(tmp_path, model_file, backbone):
    with pytest.raises(ModelFileError, match="no such model file"):
        read_model(tmp_path / "absent.npz")
    model, config = read_model(model_file)
    assert config["metadata"] == {"note": "test"} and model.embed_size == backbone.embed_size


# --- DMS and variant readers ------------------------------------------------------------------


def test_dms_reader_refuses_a_bad_offset_and_a_damaged_gzip(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("# wild_type: MKTAYIAKQR\n# offset: first\nvariant,fitness\nM1A,0.5\n")
    with pytest.raises(DMSTableError, match=r"offset \(its '# offset:' line\) is 'first', not a whole number"):
        read_dms_table(table)
    with pytest.raises(DMSTableError, match=r"offset \(offset=\) is 1.5"):
        read_dms_table(table, offset=1.5)
    gz = tmp_path / "t.csv.gz"
    gz.write_bytes(gzip.compress(table.read_bytes())[:30])
    with pytest.raises(DMSTableError, match="damaged gzip file .*download or copy it again"):
        read_dms_table(gz)


# --- numerical APIs: (call, exception type, words) -----------------------------------------


def _guard_cases(model):
    square = np.eye(6, dtype=np.float32)
    return {
        "masked_marginals batch_size 0": (lambda: mlm.masked_marginals(model, "MKTAYIAKQR", batch_size=0),
                                          ValueError, "batch_size must be at least 1, got 0"),
        "masked_marginals position past the end": (lambda: mlm.masked_marginals(model, "MKTAYIAKQR", [3, 10]),
                                                   IndexError, "positions must be 0-based positions in 0..9"),
        "masked_marginals float positions": (lambda: mlm.masked_marginals(model, "MKTAYIAKQR", [1.5]),
                                             TypeError, "positions must be whole 0-based positions"),
        "masked_marginals list for seq": (lambda: mlm.masked_marginals(model, list("MKT")), TypeError,
                                          "seq must be an amino-acid string"),
        "masked_marginals empty seq": (lambda: mlm.masked_marginals(model, "  "), ValueError, "seq is empty"),
        "predict_masked k 0": (lambda: mlm.predict_masked(model, "MKT<mask>YIAK", k=0), ValueError,
                               "k must be at least 1, got 0"),
        "predict_masked no position": (lambda: mlm.predict_masked(model, "MKTAYIAK", positions=[]), ValueError,
                                       "positions is empty"),
        "spearman_bootstrap n_boot 0": (lambda: zero_shot.spearman_bootstrap([1, 2, 3], [3, 2, 1], n_boot=0),
                                        ValueError, "n_boot must be at least 1, got 0"),
        "spearman_bootstrap level 95": (lambda: zero_shot.spearman_bootstrap([1, 2, 3], [3, 2, 1], level=95),
                                        ValueError, "level must be strictly between 0 and 1, got 95.0"),
        "spearman_bootstrap unpaired": (lambda: zero_shot.spearman_bootstrap([1, 2, 3], [3, 2]), ValueError,
                                        "shapes (3,) and (2,)"),
        "sample_variants k -1": (lambda: zero_shot.sample_variants(None, -1, 0), ValueError,
                                 "k must be at least 1, got -1"),
        "fold steps 0": (lambda: fold.fold_from_contacts(square, key=jax.random.key(0), steps=0), ValueError,
                         "steps must be at least 1, got 0"),
        "fold restarts 2.5": (lambda: fold.fold_from_contacts(square, key=jax.random.key(0), restarts=2.5),
                              TypeError, "restarts must be a whole number"),
        "fold non-square map": (lambda: fold.fold_from_contacts(np.ones((6, 5)), key=jax.random.key(0)),
                                ValueError, "probs must be a square (L, L) map with L >= 2, got shape (6, 5)"),
        "fold logits for probabilities": (lambda: fold.fold_from_contacts(square * 5 - 2, key=jax.random.key(0)),
                                          ValueError, "contact probabilities in [0, 1]"),
        "fold NaN map": (lambda: fold.fold_from_contacts(square * np.nan, key=jax.random.key(0)), ValueError,
                         "36 values that are NaN or infinite"),
        "anneal steps 0": (lambda: design.anneal(model, lambda t: 0.0, "MKTAYIAKQR", steps=0, key=jax.random.key(0)),
                           ValueError, "steps must be at least 1, got 0"),
        "anneal end temperature 0": (lambda: design.anneal(model, lambda t: 0.0, "MKTAYIAKQR",
                                                           temperature=(1.0, 0.0), key=jax.random.key(0)),
                                     ValueError, "temperature[1] must be a finite number > 0, got 0.0"),
        "anneal fixed past the end": (lambda: design.anneal(model, lambda t: 0.0, "MKTAYIAKQR", fixed=(10,),
                                                            key=jax.random.key(0)),
                                      IndexError, "fixed must be 0-based positions in 0..9"),
        "contact_precision mismatched maps": (lambda: contacts.contact_precision(np.zeros((8, 8)), np.eye(7)),
                                              ValueError, "probs has shape (8, 8), true_contacts (7, 7)"),
        "contact_precision top 0": (lambda: contacts.contact_precision(np.zeros((8, 8)), np.eye(8), top=0),
                                    ValueError, "top must be at least 1, got 0"),
        "fit_contact_head steps 0": (lambda: contacts.fit_contact_head([np.zeros((8, 8, 3))], [np.eye(8)], steps=0),
                                     ValueError, "steps must be at least 1, got 0"),
        "fit_contact_head mismatched protein": (lambda: contacts.fit_contact_head([np.zeros((8, 8, 3))],
                                                                                  [np.eye(9)]),
                                                ValueError, "protein 0: features of shape (8, 8, 3)"),
        "embed batch_size 0": (lambda: embeddings.embed(model, ["MKT"], batch_size=0), ValueError,
                               "batch_size must be at least 1, got 0"),
        "embed batch_size True": (lambda: embeddings.embed(model, ["MKT"], batch_size=True), TypeError,
                                  "batch_size must be a whole number"),
        "length_buckets batch_size 0": (lambda: finetune.length_buckets([3, 4], 0), ValueError,
                                        "batch_size must be at least 1, got 0"),
        "train_valid_split 1.0": (lambda: finetune.train_valid_split(None, 1.0), ValueError,
                                  "valid_fraction must be strictly between 0 and 1, got 1.0"),
    }


@pytest.fixture(scope="module")
def guard_cases(backbone):
    return _guard_cases(backbone)


@pytest.mark.parametrize("case", list(_guard_cases(None)))
def test_numerical_api_refuses(guard_cases, case):
    call, kind, words = guard_cases[case]
    with pytest.raises(kind) as exc:
        call()
    assert words in str(exc.value), str(exc.value)


@pytest.mark.parametrize("kwargs,kind,words", [
    ({"steps": 0}, ValueError, "steps must be at least 1, got 0"),
    ({"batch_size": 2.0}, TypeError, "batch_size must be a whole number"),
    ({"eval_every": 0}, ValueError, "eval_every must be at least 1, got 0"),
    ({"learning_rate": -1e-3}, ValueError, "learning_rate must be a finite number > 0"),
    ({"mode": "all"}, ValueError, "mode must be 'head' (frozen backbone) or 'full', got 'all'"),
])
def test_train_refuses_bad_settings(tmp_path, predictor, kwargs, kind, words):
    data = finetune.LabelledSequences(tuple(SEQS), np.array([0, 1] * 3, np.int32), "classification", ("0", "1"))
    ckpt = save_checkpoint(tmp_path / "best.eqx", predictor)
    before = ckpt.read_bytes()
    with pytest.raises(kind) as exc:
        finetune.train(predictor, data, checkpoint=ckpt, **({"steps": 5} | kwargs))
    assert words in str(exc.value), str(exc.value)
    assert ckpt.read_bytes() == before


def test_train_refuses_a_task_the_predictor_was_not_made_for(predictor):
    data = finetune.LabelledSequences(tuple(SEQS), np.arange(6, dtype=np.float32), "regression")
    with pytest.raises(ValueError, match="made for classification, train_set is regression; make it with "
                                         r"Predictor.init\(backbone, 'regression'"):
        finetune.train(predictor, data, steps=1)


# --- what a user of the workshop command sees ---------------------------------------------


def test_a_checkpoint_error_in_a_demo_is_a_data_problem_without_traceback(tmp_path, predictor, capsys):
    path = tmp_path / "best.eqx"
    path.write_bytes(b"\x00" * 10)
    with pytest.raises(SystemExit) as exit_:
        with reported_errors("The demo protein gb1"):
            load_checkpoint(path, predictor)
    err = capsys.readouterr().err
    assert exit_.value.code == EXIT_PROBLEM
    assert "data problem: " in err and "Traceback" not in err and "delete best.eqx" in err


@pytest.fixture
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKSHOP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("WORKSHOP_PROGRESS", str(tmp_path / "progress.json"))
    monkeypatch.chdir(tmp_path)
    _plugins.set_registry(None)
    yield
    _plugins.set_registry(None)


@pytest.mark.usefixtures("_isolated")
@pytest.mark.parametrize("command,content,words", [
    (("protein", "embed"), b">p1\nMKT\xff\n", "is not UTF-8 text"),
    (("protein", "score", "--sequence", "MKTAYIAKQR"), b"variant,fitness\nA4G,1\nvariant,fitness\n",
     "variant"),
])
def test_workshop_protein_commands_refuse_bad_files_with_exit_2(tmp_path, command, content, words):
    path = tmp_path / "input.fasta" if command[1] == "embed" else tmp_path / "input.csv"
    path.write_bytes(content)
    out = tmp_path / "out.bin"
    out.write_bytes(b"keep")
    r = CliRunner().invoke(main, [*command, str(path), "-o", str(out)], catch_exceptions=False)
    assert r.exit_code == 2, r.output
    assert words in r.output and "Traceback" not in r.output
    assert out.read_bytes() == b"keep"
