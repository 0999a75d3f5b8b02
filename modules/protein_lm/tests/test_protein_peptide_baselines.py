"""The peptide baselines see composition and nothing else, the metrics are right, the
out-of-distribution controls are what they say, and the finetune/design demos write
the comparison and the false-positive rates (tiny preset, a small random ESM2)."""

import json
import types

import jax
import numpy as np
import pytest

import esm2quinox
from workshop import RunContext
from workshop.hardware import detect
from workshop_protein.demos import structure as structure_demos
from workshop_protein.finetune import LabelledSequences
from workshop_protein.peptide_baselines import (
    FEATURES, accuracy, baselines, composition, dipeptide_composition, fit_logistic_regression, paired_difference, roc_auc,
    score_summary,
)
from workshop_protein.peptide_controls import (
    composition_sampled, positive_rates, protein_fragments, rate_interval_by_protein, shuffled, with_extra_class,
)
from workshop_protein.tokens import AMINO_ACIDS

LETTERS = np.array(list(AMINO_ACIDS))


def _draw(rng, n, p):
    return ["".join(LETTERS[rng.choice(20, size=int(rng.integers(15, 35)), p=p)]) for _ in range(n)]


def _split_auc(seqs, labels, rng, name):
    order = rng.permutation(len(seqs))
    train, valid = order[: len(order) // 2], order[len(order) // 2 :]
    fitted = baselines([seqs[i] for i in train], labels[train], [seqs[i] for i in valid], seed=0,
                       features={name: FEATURES[name]})
    return roc_auc(labels[valid], fitted[name]["probabilities"])


def test_composition_baseline_separates_classes_that_differ_in_composition():
    rng = np.random.default_rng(0)
    uniform = np.full(20, 1 / 20)
    shifted = uniform.copy()
    shifted[[AMINO_ACIDS.index(a) for a in "KR"]] *= 3.0  # cationic, as AMPs are
    shifted[[AMINO_ACIDS.index(a) for a in "DE"]] /= 3.0
    shifted /= shifted.sum()
    seqs = _draw(rng, 150, uniform) + _draw(rng, 150, shifted)
    labels = np.repeat([0, 1], 150)
    assert _split_auc(seqs, labels, rng, "amino-acid composition") > 0.9


def test_composition_baseline_is_at_chance_when_only_order_differs():
    rng = np.random.default_rng(1)
    drawn = _draw(rng, 300, np.full(20, 1 / 20))
    # Same compositions in both classes: class 1 holds its residues sorted (an order signal only).
    labels = rng.permutation(np.repeat([0, 1], 150))
    seqs = ["".join(sorted(s)) if y else s for s, y in zip(drawn, labels)]
    np.testing.assert_allclose(composition(seqs), composition(drawn))
    assert 0.35 <= _split_auc(seqs, labels, np.random.default_rng(2), "amino-acid composition") <= 0.65
    # Adjacent pairs do see order: the sorted sequences are made of repeated letters.
    assert _split_auc(seqs, labels, np.random.default_rng(2), "composition + dipeptides") > 0.9


def test_features_and_logistic_regression():
    x = dipeptide_composition(["ACA", "KK"])
    assert x.shape == (2, 420)
    np.testing.assert_allclose(x[:, :20].sum(1), 1.0)
    np.testing.assert_allclose(x[:, 20:].sum(1), 1.0)
    assert x[0, 20 + 20 * AMINO_ACIDS.index("A") + AMINO_ACIDS.index("C")] == 0.5
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(200, 3))
    labels = (feats[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)
    fit = fit_logistic_regression(feats, labels, l2=1.0)
    # At the optimum the penalised gradient vanishes.
    z = (feats - fit.mean) / fit.scale
    p = fit.probability(feats)
    np.testing.assert_allclose(z.T @ (labels - p) - fit.weight, 0.0, atol=1e-4)
    assert abs(np.sum(labels - p)) < 1e-4
    assert fit.weight[0] > 1 and abs(fit.weight[1]) < 0.5


def test_metrics_and_intervals():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 30)
    scores = labels + rng.normal(size=60)
    pairs = [(a, b) for a in scores[labels == 1] for b in scores[labels == 0]]
    assert roc_auc(labels, scores) == pytest.approx(np.mean([a > b for a, b in pairs]))
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert accuracy([0, 1, 1], [0.2, 0.7, 0.4]) == pytest.approx(2 / 3)
    s = score_summary(labels, 1 / (1 + np.exp(-scores)), n=500)
    assert s["roc_auc_interval"][0] <= s["roc_auc"] <= s["roc_auc_interval"][1]
    assert s["accuracy_interval"][0] <= s["accuracy"] <= s["accuracy_interval"][1]
    same = paired_difference(roc_auc, labels, scores, scores, n=200)
    assert same == {"difference": 0.0, "interval": [0.0, 0.0]}
    with pytest.raises(ValueError):
        roc_auc([1, 1], [0.2, 0.3])


def test_out_of_distribution_controls():
    proteins = {"a": "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ", "b": "GSHMLEDPVDAFQ"}
    frags = protein_fragments(proteins, [8, 12, 40], 30, seed=0)
    assert {f.source for f in frags} == {"a", "b"}
    for f in frags:
        assert len(f.sequence) in (8, 12) and proteins[f.source][f.start : f.start + len(f.sequence)] == f.sequence
    assert [sorted(s) for s in shuffled(["MKKLLA", "GG"], seed=0)] == [sorted("MKKLLA"), sorted("GG")]
    sampled = composition_sampled([10, 20], {a: (1 if a in "KR" else 0) for a in AMINO_ACIDS}, seed=0)
    assert [len(s) for s in sampled] == [10, 20] and set("".join(sampled)) <= set("KR")
    assert positive_rates([0.2, 0.6, 0.95, 0.99]) == {"p>0.5": 0.75, "p>0.9": 0.5}
    lo, hi = rate_interval_by_protein([0.9, 0.9, 0.1, 0.1], ["a", "a", "b", "b"], 0.5, n=500)
    assert lo == 0.0 and hi == 1.0
    data = LabelledSequences(("MKV", "LLL"), np.array([0, 1], np.int32), "classification", ("0", "1"))
    three = with_extra_class(data, ["GGG"], "neither")
    assert three.classes == ("0", "1", "neither") and list(three.labels) == [0, 1, 2] and three.num_outputs == 3


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    model = esm2quinox.ESM2(num_layers=2, embed_size=32, num_heads=2, token_dropout=True, key=jax.random.key(0))
    info = types.SimpleNamespace(name="random-test-model", describe=lambda: "random test model")
    monkeypatch.setattr(structure_demos, "_model", lambda ctx: (model, info))

    def make(demo):
        return RunContext(module="protein", demo=demo, preset="tiny", out=tmp_path, budget=None,
                          hardware=detect(), verbose=False)
    return make


def test_demos_write_baselines_and_false_positive_rates(ctx):
    c = ctx("finetune")
    structure_demos.finetune(c)
    saved = json.loads((c.out / "finetune.json").read_text())
    name = "random-test-model fine-tuned"
    assert list(saved["scores"])[0] == name
    assert {"amino-acid composition", "composition + dipeptides", "length only"} <= set(saved["scores"])
    for r in saved["scores"].values():
        assert r["accuracy_interval"][0] <= r["accuracy"] <= r["accuracy_interval"][1]
        assert r["roc_auc_interval"][0] <= r["roc_auc"] <= r["roc_auc_interval"][1]
    diff = saved["model_minus_reference"]["roc_auc"]
    assert diff["difference"] == pytest.approx(
        saved["scores"][name]["roc_auc"] - saved["scores"]["amino-acid composition"]["roc_auc"])
    assert isinstance(saved["beats_reference"], bool) and "composition" in saved["verdict"]
    assert (c.out / "finetune_vs_baselines.png").stat().st_size > 0

    d = ctx("design")
    structure_demos.design(d)
    saved = json.loads((d.out / "design.json").read_text())
    ood = saved["out_of_distribution"]
    for key in ("before", "after"):
        rates = ood[key]["rates"]
        assert {"protein fragments", "shuffled fragments", "shuffled AMPs", "validation AMPs"} <= set(rates)
        assert 0 <= rates["protein fragments"]["p>0.9"] <= rates["protein fragments"]["p>0.5"] <= 1
        assert "random-test-model" in ood[key]["classifier"]
    assert ood["false_positive_rate_fragments"]["before"] == ood["before"]["rates"]["protein fragments"]
    assert len(ood["fragments"]["proteins"]) == 6
    assert "not evidence of antimicrobial activity" in saved["meaning"]
    assert (d.out / "leaderboard.png").stat().st_size > 0
