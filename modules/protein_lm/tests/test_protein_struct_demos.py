"""The structure demos run end to end under the tiny preset and write what they say.

A small random ESM2 stands in for the embedded model so these tests do not depend on
its training; the demos accept any ESM2."""

import json
import types

import jax
import pytest

import esm2quinox
from workshop import RunContext
from workshop.hardware import detect
from workshop_protein import demos_structure


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    model = esm2quinox.ESM2(num_layers=2, embed_size=32, num_heads=2, token_dropout=True, key=jax.random.key(0))
    info = types.SimpleNamespace(name="random-test-model", describe=lambda: "random test model")
    monkeypatch.setattr(demos_structure, "_model", lambda ctx: (model, info))

    def make(demo):
        return RunContext(module="protein", demo=demo, preset="tiny", out=tmp_path, budget=None,
                          hardware=detect(), verbose=False)
    return make


def test_contacts_demo(ctx):
    c = ctx("contacts")
    out = demos_structure.contacts(c)
    r = out["proteins"]["1LCD_A"]
    assert out["head"].startswith("fitted here")  # no stored head for a random model
    assert 0 <= r["top_L5_precision"] <= 1
    assert r["rmsd_fold_from_true_contacts"] < 8.0
    for name in ("1LCD_A_map.png", "1LCD_A_fold_predicted.png", "1LCD_A_fold_true.png", "contacts.json"):
        assert (c.out / name).stat().st_size > 0


def test_finetune_and_design_demos(ctx):
    c = ctx("finetune")
    out = demos_structure.finetune(c)
    assert out["loss_last10"] < out["loss_first10"]
    for name in ("finetune_best.eqx", "finetune_loss.png", "finetune.json"):
        assert (c.out / name).exists(), name
    d = demos_structure.design(ctx("design"))
    [res] = d["designs"]
    assert res["objective_best"] >= res["objective_start"]
    board = json.loads((c.out / "leaderboard.json").read_text())
    assert (c.out / "design.json").exists()
    assert board[0]["sequence"] == res["best"]
