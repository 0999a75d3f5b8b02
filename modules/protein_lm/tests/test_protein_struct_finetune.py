"""Fine-tuning: reading CSV/FASTA, splits, length buckets and masks, pooling, the loss
going down (head and full), checkpoints, and data parallel giving the 1-device loss."""

import json
import os
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import esm2quinox
from workshop_protein.finetune import (
    LabelledSequences,
    Predictor,
    evaluate,
    length_buckets,
    load_checkpoint,
    loss_fn,
    make_batch,
    masked_mean_pool,
    read_labelled,
    save_checkpoint,
    spearman,
    train,
    train_valid_split,
)
from workshop_protein.tokens import PAD, tokenize

AA = "ACDEFGHIKLMNPQRSTVWY"


def toy_regression(n=48, seed=0):
    """A learnable target: the fraction of hydrophobic residues."""
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list(AA), size=rng.integers(8, 15))) for _ in range(n)]  # one padded shape: fast
    y = np.array([sum(c in "AILMFVW" for c in s) / len(s) for s in seqs], np.float32)
    return LabelledSequences(tuple(seqs), y, "regression", label_name="hydrophobic_fraction")


@pytest.fixture(scope="module")
def backbone():
    return esm2quinox.ESM2(num_layers=1, embed_size=32, num_heads=2, token_dropout=False, key=jax.random.key(0))


def test_read_csv_and_fasta(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("name,sequence,tm\nA,MKV,41.5\nB,acdef,55.0\nC,GGG,60.25\n")
    d = read_labelled(csv, label="tm")
    assert d.task == "regression" and d.sequences == ("MKV", "ACDEF", "GGG")
    np.testing.assert_allclose(d.labels, [41.5, 55.0, 60.25])
    fa = tmp_path / "d.fasta"
    fa.write_text(">p1 label=yes\nMKV\nLL\n>p2 label=no\nGGG\n>p3 label=yes\nAC\n")
    f = read_labelled(fa)
    assert f.task == "classification" and f.classes == ("no", "yes")
    assert f.sequences[0] == "MKVLL" and f.labels.tolist() == [1, 0, 1]
    bad = tmp_path / "bad.csv"
    bad.write_text("sequence,y\nMK*V,1\n")
    with pytest.raises(ValueError, match="record 1"):
        read_labelled(bad)


def test_split_buckets_and_batches():
    d = toy_regression(50)
    tr, va = train_valid_split(d, 0.2, seed=1)
    assert len(tr) + len(va) == 50 and len(va) == 10
    assert not set(tr.sequences) & set(va.sequences) or len(set(d.sequences)) < 50
    lengths = [len(s) for s in d.sequences]
    batches = length_buckets(lengths, 8, seed=0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(50))
    # bucketing keeps the spread of lengths inside a batch small
    spread = np.mean([np.ptp(np.array(lengths)[b]) for b in batches])
    assert spread < np.ptp(lengths) / 2
    tokens, mask, labels, weights = make_batch(d, batches[0], rows=12)
    assert tokens.shape[0] == 12 and tokens.shape[1] % 16 == 0
    assert weights.tolist() == [1.0] * len(batches[0]) + [0.0] * (12 - len(batches[0]))
    np.testing.assert_array_equal(mask, tokens != PAD)


def test_masked_mean_pool_ignores_padding():
    h = jnp.arange(12.0).reshape(4, 3)
    m = jnp.array([True, True, False, False])
    np.testing.assert_allclose(masked_mean_pool(h, m), h[:2].mean(0))


def test_padding_does_not_change_the_prediction(backbone):
    p = Predictor.init(backbone, "regression", 1, key=jax.random.key(1))
    t = tokenize("MKTAYIAKQR")
    padded = np.concatenate([t, np.full(6, PAD, np.int32)])
    np.testing.assert_allclose(p.embed(t), p.embed(padded), atol=1e-5)
    assert float(jnp.abs(p.embed(t)).max()) > 0
    # the untrained head starts from "the mean": a zero output
    np.testing.assert_array_equal(p(t), 0.0)


@pytest.mark.parametrize("mode", ["head", "full"])
def test_finetuning_decreases_the_loss(backbone, mode, tmp_path):
    d = toy_regression(64)
    tr, va = train_valid_split(d, 0.25, seed=0)
    p0 = Predictor.init(backbone, "regression", 1, key=jax.random.key(2), labels=tr.labels)
    before = evaluate(p0, tr)["loss"]
    ckpt = tmp_path / "best.eqx"
    p1, hist = train(p0, tr, va, mode=mode, steps=40, batch_size=16, learning_rate=3e-3, eval_every=20, checkpoint=ckpt)
    after = evaluate(p1, tr)["loss"]
    assert after < 0.7 * before, (before, after)
    assert np.mean(hist.loss[-10:]) < np.mean(hist.loss[:10])
    # frozen backbone stays frozen; full fine-tuning moves it
    same = all(bool(jnp.all(a == b)) for a, b in zip(jax.tree_util.tree_leaves(eqx.filter(p0.backbone, eqx.is_array)),
                                                     jax.tree_util.tree_leaves(eqx.filter(p1.backbone, eqx.is_array))))
    assert same == (mode == "head")
    assert ckpt.exists() and not (tmp_path / "best.eqx.tmp").exists()
    meta = json.loads((tmp_path / "best.eqx.json").read_text())
    assert meta["mode"] == mode and "spearman" in meta
    restored = load_checkpoint(ckpt, p0)
    assert evaluate(restored, va)["spearman"] == pytest.approx(meta["spearman"], abs=1e-6)


def test_classification_accuracy_improves(backbone):
    d = toy_regression(64, seed=3)
    labels = (d.labels > np.median(d.labels)).astype(np.int32)
    c = LabelledSequences(d.sequences, labels, "classification", ("low", "high"))
    p0 = Predictor.init(backbone, "classification", 2, key=jax.random.key(4))
    p1, hist = train(p0, c, c, mode="full", steps=80, batch_size=16, learning_rate=3e-3)
    assert hist.valid[-1]["accuracy"] >= 0.75
    assert np.mean(hist.loss[-10:]) < np.mean(hist.loss[:10])


def test_checkpoint_roundtrip(tmp_path, backbone):
    p = Predictor.init(backbone, "regression", 1, key=jax.random.key(5))
    path = save_checkpoint(tmp_path / "c.eqx", p, {"step": 3})
    q = load_checkpoint(path, Predictor.init(backbone, "regression", 1, key=jax.random.key(6)))
    leaves = lambda m: jax.tree_util.tree_leaves(eqx.filter(m, eqx.is_array))  # noqa: E731
    for a, b in zip(leaves(p), leaves(q)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(p.head.layers[0].weight, Predictor.init(backbone, "regression", 1, key=jax.random.key(6)).head.layers[0].weight)


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 25, 100]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


_DP = textwrap.dedent("""
    import json, jax, numpy as np, esm2quinox
    from workshop_protein.finetune import LabelledSequences, Predictor, train
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), size=rng.integers(8, 14))) for _ in range(30)]
    y = np.array([s.count("A") / len(s) for s in seqs], np.float32)
    d = LabelledSequences(tuple(seqs), y, "regression")
    bb = esm2quinox.ESM2(num_layers=1, embed_size=16, num_heads=2, token_dropout=False, key=jax.random.key(0))
    p = Predictor.init(bb, "regression", 1, key=jax.random.key(1), labels=y)
    out = {}
    for n in (1, len(jax.devices())):
        _, h = train(p, d, mode="full", steps=4, batch_size=6, learning_rate=1e-3, devices=jax.devices()[:n])
        out[n] = h.loss
    print(json.dumps({"devices": len(jax.devices()), "loss": out}))
""")


def test_data_parallel_matches_one_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", _DP], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["devices"] == 4
    np.testing.assert_allclose(res["loss"]["4"], res["loss"]["1"], rtol=1e-4)
