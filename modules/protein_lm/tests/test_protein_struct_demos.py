"""The structure demos run end to end under the tiny preset and write what they say.

A small random ESM2 stands in for the embedded model so these tests do not depend on
its training; the demos accept any ESM2."""

import json
import types

import jax
import numpy as np
import pytest

import esm2quinox
from workshop import RunContext
from workshop.hardware import detect
from workshop_protein.demos import structure as structure_demos


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    model = esm2quinox.ESM2(num_layers=2, embed_size=32, num_heads=2, token_dropout=True, key=jax.random.key(0))
    info = types.SimpleNamespace(name="random-test-model", describe=lambda: "random test model")
    monkeypatch.setattr(structure_demos, "_model", lambda ctx: (model, info))

    def make(demo):
        return RunContext(module="protein", demo=demo, preset="tiny", out=tmp_path, budget=None,
                          hardware=detect(), verbose=False)
    return make


def test_contacts_demo(ctx, monkeypatch):
    from workshop_protein import contacts as C
    from workshop_protein import fold as F

    titles = []  # every figure's title, as the demo passes it
    plot_map, plot_trace = C.plot_contact_map, F.plot_trace

    def recording(plot):
        def wrapper(*args, **kwargs):
            titles.append(f"{kwargs['title']} {kwargs.get('model', '')}")
            return plot(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(C, "plot_contact_map", recording(plot_map))
    monkeypatch.setattr(F, "plot_trace", recording(plot_trace))
    c = ctx("contacts")
    out = structure_demos.contacts(c)
    r = out["proteins"]["1LCD_A"]
    assert out["head"].startswith("fitted here")  # no stored head for a random model
    assert 0 <= r["top_L5_precision"] <= 1
    assert 0 < r["contact_density"] < 1
    assert r["rmsd_fold_from_true_contacts"] < 8.0
    assert r["rmsd_fold_from_true_contacts"] < r["rmsd_fold_without_contacts"]
    for name in ("1LCD_A_map.png", "1LCD_A_fold_predicted.png", "1LCD_A_fold_true.png", "contacts.json"):
        assert (c.out / name).stat().st_size > 0
    assert len(titles) == 3 and all("random-test-model" in t for t in titles)

    saved = json.loads((c.out / "contacts.json").read_text())
    assert saved["model"] == "random-test-model"
    files = saved["proteins"]["1LCD_A"]["files"]
    assert {files["fold_predicted_pdb"], files["fold_true_pdb"], files["reference_pdb"]} == {
        "1LCD_A_fold_predicted.pdb", "1LCD_A_fold_true.pdb", "1LCD_A_reference_ca.pdb"}
    ref, ref_seq = F.read_ca_pdb(c.out / files["reference_pdb"])
    structure = C.real_structures()["1LCD_A"]
    np.testing.assert_allclose(ref, structure["ca"], atol=1e-3)
    assert ref_seq == structure["sequence"]
    for kind in ("predicted", "true"):
        fold, seq = F.read_ca_pdb(c.out / files[f"fold_{kind}_pdb"])
        assert seq == structure["sequence"]
        # Written already superposed onto the reference: the plain RMSD is the JSON's Kabsch RMSD.
        rmsd = float(np.sqrt(((fold - ref) ** 2).sum(-1).mean()))
        key = "rmsd_fold_from_predicted" if kind == "predicted" else "rmsd_fold_from_true_contacts"
        assert rmsd == pytest.approx(saved["proteins"]["1LCD_A"][key], abs=1e-2)


def test_finetune_and_design_demos(ctx):
    c = ctx("finetune")
    out = structure_demos.finetune(c)
    assert out["loss_last10"] < out["loss_first10"]
    for name in ("finetune_best.eqx", "finetune_loss.png", "finetune.json"):
        assert (c.out / name).exists(), name
    d = structure_demos.design(ctx("design"))
    [res] = d["designs"]
    assert res["objective_best"] >= res["objective_start"]
    board = json.loads((c.out / "leaderboard.json").read_text())
    assert (c.out / "design.json").exists()
    assert board[0]["sequence"] == res["best"]
