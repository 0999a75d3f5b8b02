"""Fitness regression on a deep mutational scan: splits, baselines, and the gb1 demo end to end.

A small random ESM2 stands in for the demo's model so the demo test does not depend on
any trained weights; the demo accepts any ESM2."""

import json
import types

import jax
import numpy as np
import pytest

import esm2quinox
from workshop import RunContext
from workshop.hardware import detect
from workshop_protein.demos import fitness as gb1_demo
from workshop_protein.dms import load_assay
from workshop_protein.fitness import (
    choose_global_epistasis, choose_ridge, mutated_positions, one_hot_sites,
    position_split, random_split, spearman_difference, validation_split, variant_embeddings,
)
from workshop_protein.tokens import AMINO_ACIDS, tokenize
from workshop_protein.zero_shot import spearman

WILD_TYPE = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"


def _doubles(n, rng, wild_type=WILD_TYPE):
    """``n`` distinct random double mutants of ``wild_type``."""
    out = set()
    while len(out) < n:
        i, j = sorted(rng.choice(len(wild_type), 2, replace=False))
        a = rng.choice([c for c in AMINO_ACIDS if c != wild_type[i]])
        b = rng.choice([c for c in AMINO_ACIDS if c != wild_type[j]])
        out.add(f"{wild_type[i]}{i + 1}{a}:{wild_type[j]}{j + 1}{b}")
    return sorted(out)


@pytest.fixture(scope="module")
def landscape():
    """A known additive landscape: y = Σ effects of the substitutions + noise (SNR ~ 10)."""
    rng = np.random.default_rng(0)
    variants = _doubles(1500, rng)
    X = one_hot_sites(variants, WILD_TYPE)
    effects = rng.normal(size=X.shape[1])
    clean = X @ effects
    y = clean + rng.normal(scale=0.3 * clean.std(), size=len(clean))
    return variants, X, y, clean


def test_ridge_recovers_an_additive_landscape(landscape):
    variants, X, y, clean = landscape
    split = random_split(len(variants), 0.2, seed=0)
    fit, valid = validation_split(split, variants, WILD_TYPE, seed=0)
    assert sorted(np.r_[fit, valid]) == sorted(split.train)
    ridge, details = choose_ridge(X, y, fit, valid)
    assert spearman(ridge.predict(X[split.test]), clean[split.test]) > 0.95
    assert details["lam"] in details["valid_rho"]


def test_global_epistasis_fits_a_sigmoid_of_an_additive_score(landscape):
    variants, X, _, clean = landscape
    z = (clean - clean.mean()) / clean.std()
    y = -5 + 6 / (1 + np.exp(-2 * z))  # a floor and a ceiling, as in a binding assay
    split = random_split(len(variants), 0.2, seed=1)
    fit, valid = validation_split(split, variants, WILD_TYPE, seed=1)
    ridge, d = choose_ridge(X, y, fit, valid)
    ge, _ = choose_global_epistasis(X, y, fit, valid, d["fit_only"], steps=400)
    test = split.test
    mse = lambda p: float(np.mean((np.asarray(p) - y[test]) ** 2))
    assert mse(ge(X[test])) < mse(ridge.predict(X[test]))
    assert spearman(np.asarray(ge(X[test])), y[test]) > 0.9


def test_position_split_holds_out_positions(landscape):
    variants = landscape[0]
    split = position_split(variants, WILD_TYPE, 6, seed=3)
    held = set(split.held_out_positions)
    assert len(held) == 6
    assert sorted(np.r_[split.train, split.test]) == list(range(len(variants)))
    for i in split.train:
        assert not held & set(mutated_positions(variants[i], WILD_TYPE))
    for i in split.test:
        assert held & set(mutated_positions(variants[i], WILD_TYPE))
    # The validation set is itself a position split of the training doubles.
    fit, valid = validation_split(split, variants, WILD_TYPE, fraction=0.2, seed=3)
    fit_sites = {p for i in fit for p in mutated_positions(variants[i], WILD_TYPE)}
    valid_sites = {p for i in valid for p in mutated_positions(variants[i], WILD_TYPE)}
    assert not held & (fit_sites | valid_sites)
    assert valid_sites - fit_sites  # some validation positions were never seen in fitting
    # The same seed gives the same split; another seed another.
    assert position_split(variants, WILD_TYPE, 6, seed=3).held_out_positions == split.held_out_positions
    assert position_split(variants, WILD_TYPE, 6, seed=4).held_out_positions != split.held_out_positions


def test_paired_difference_interval():
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    good, bad = y + 0.3 * rng.normal(size=400), y + 2 * rng.normal(size=400)
    d = spearman_difference(good, bad, y, n_boot=300)
    assert d.low > 0 and d.low <= d.delta <= d.high
    same = spearman_difference(good, good, y, n_boot=100)
    assert same.delta == 0 and same.low == 0 and same.high == 0


@pytest.fixture(scope="module")
def small_model():
    return esm2quinox.ESM2(num_layers=2, embed_size=32, num_heads=2, token_dropout=True, key=jax.random.key(0))


def test_variant_predictor_reads_the_mutated_sites(small_model):
    wt = WILD_TYPE
    mutant = "A" + wt[1:]
    E = variant_embeddings(small_model, wt, [wt, mutant])
    full = np.asarray(small_model(tokenize(mutant)).hidden)
    np.testing.assert_allclose(E[1, :32], full[1], atol=1e-5)  # the one mutated site (after <cls>)
    np.testing.assert_allclose(E[1, 32:], full[1:-1].mean(0), atol=1e-5)  # the mean over residues
    np.testing.assert_allclose(E[0, :32], E[0, 32:], atol=1e-6)  # wild type: no site, the mean twice


def test_gb1_demo_runs_and_writes_every_method(tmp_path, monkeypatch, small_model):
    info = types.SimpleNamespace(name="random-test-model", describe=lambda: "random test model")
    monkeypatch.setattr(gb1_demo, "_model", lambda ctx: (small_model, info))
    ctx = RunContext(module="protein", demo="gb1", preset="tiny", out=tmp_path, budget=None,
                     hardware=detect(), verbose=False)
    out = gb1_demo.gb1(ctx)
    saved = json.loads((tmp_path / "gb1.json").read_text())
    assert saved["model"] == "random-test-model"
    assert set(saved["methods"]) == set(gb1_demo.METHODS)
    for method in saved["methods"].values():
        for split in ("random", "position"):
            r = method[split]
            assert -1 <= r["low"] <= r["rho"] <= r["high"] <= 1
            assert r["n"] == saved["splits"][split]["test"]
    s = saved["splits"]
    assert s["random"]["train"] + s["random"]["test"] == saved["data"]["doubles"]
    assert s["position"]["train"] + s["position"]["test"] == saved["data"]["doubles"]
    assert len(s["position"]["held_out_positions"]) == gb1_demo.HELD_OUT_POSITIONS
    assert len(saved["verdicts"]) == 2 and all("random-test-model" in v for v in saved["verdicts"])
    for name in ("gb1.png", "gb1_epistasis.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    assert out["language_model_vs_baselines"]["random"]["language_model"] in ("lm_frozen", "lm_finetuned")


def test_gb1_shipped_data_is_doubles_only():
    # The demo's design rests on this: if singles ever ship, train on them too.
    assert set(load_assay("gb1").n_mutations) == {2}
