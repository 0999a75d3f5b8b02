"""Folding contacts into 3-D, and the design loop: annealing improves its objective,
Metropolis acceptance, the leaderboard."""

import json
from importlib import resources

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import esm2quinox
from workshop_protein.contacts import contacts_from_coords
from workshop_protein.design import (
    anneal, format_leaderboard, metropolis_accept, propose_residue, submit, temperature_schedule, top,
)
from workshop_protein.fold import fold_from_contacts, kabsch_rmsd, superpose
from workshop_protein.tokens import token_id


def test_kabsch_recovers_rigid_motion_and_reflection():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3)) * 5
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    moved = x @ q + np.array([1.0, -2.0, 3.0])
    mirrored = moved * np.array([-1, 1, 1])
    assert kabsch_rmsd(moved, x) < 1e-6
    assert kabsch_rmsd(mirrored, x) < 1e-6
    assert kabsch_rmsd(mirrored if np.linalg.det(q) > 0 else moved, x, allow_reflection=False) > 1.0


def test_folding_a_real_structure_from_its_contacts():
    z = np.load(resources.files("workshop_protein") / "data/structures_ca.npz")
    ca = z["1LCD_A/ca"]
    contacts = contacts_from_coords(ca).astype(np.float32)
    x, _ = fold_from_contacts(contacts, key=jax.random.key(0), restarts=4, steps=800)
    bonds = np.linalg.norm(np.diff(x, axis=0), axis=1)
    np.testing.assert_allclose(bonds, 3.8, atol=0.2)
    rmsd = kabsch_rmsd(x, ca)
    # a random compact chain of the same length is far worse
    baseline = kabsch_rmsd(np.cumsum(np.random.default_rng(0).normal(size=ca.shape), 0) * 2.2, ca)
    assert rmsd < 6.0 and rmsd < 0.5 * baseline, (rmsd, baseline)


def test_metropolis_and_schedule():
    assert bool(metropolis_accept(0.5, 1.0, 0.999))
    assert not bool(metropolis_accept(-1.0, 0.1, 0.5))            # exp(-10) ≈ 0
    assert bool(metropolis_accept(-1.0, 10.0, 0.5))               # exp(-0.1) ≈ 0.9
    assert float(temperature_schedule(0, 11, 1.0, 0.01)) == pytest.approx(1.0)
    assert float(temperature_schedule(10, 11, 1.0, 0.01)) == pytest.approx(0.01, rel=1e-5)


def test_a_proposal_redraws_one_residue_as_an_amino_acid():
    from workshop_protein.tokens import AA_TOKENS, tokenize

    model = esm2quinox.ESM2(num_layers=1, embed_size=32, num_heads=2, token_dropout=True, key=jax.random.key(0))
    tokens = jnp.asarray(tokenize("MGSSHHHHHH"))
    drawn = [propose_residue(model, tokens, 4, jax.random.key(k), temperature=5.0) for k in range(12)]
    for new in drawn:
        changed = np.flatnonzero(np.asarray(new) != np.asarray(tokens))
        assert set(changed) <= {4} and int(new[4]) in set(AA_TOKENS)
    assert len({int(new[4]) for new in drawn}) > 1  # a draw, not a fixed choice


def test_annealing_improves_the_objective():
    model = esm2quinox.ESM2(num_layers=1, embed_size=32, num_heads=2, token_dropout=True, key=jax.random.key(0))
    lys = token_id("K")
    score = lambda t: (t == lys).mean()  # noqa: E731  a known objective: the fraction of lysines
    start = "MGSSHHHHHHSSGLVPRGSH"
    res = anneal(model, score, start, steps=150, key=jax.random.key(1), proposal_temperature=3.0,
                 temperature=(0.05, 0.001), fixed=(0,))
    assert res.best_score > res.start_score + 0.15
    assert res.best_sequence[0] == "M" and len(res.best_sequence) == len(start)
    assert 0 < res.accepted < 1
    assert res.best_score == pytest.approx(max(res.scores.max(), res.start_score))


def test_leaderboard(tmp_path, capsys):
    path = tmp_path / "board.json"
    submit(path, "ada", "MKV", 0.5)
    submit(path, "bob", "MKVL", 0.9)
    submit(path, "ada", "MKKK", 1.2)
    rows = top(path, 5)
    assert [r["name"] for r in rows] == ["ada", "bob"] and rows[0]["score"] == 1.2
    assert len(json.loads(path.read_text())) == 3 and not list(tmp_path.glob("*.tmp"))
    text = format_leaderboard(path, 1)
    assert "ada" in text and "bob" not in text
    with pytest.raises(ValueError):
        submit(path, "eve", "MK*", 2.0)
    from workshop_protein.design import print_leaderboard
    print_leaderboard(path, 2)
    printed = capsys.readouterr().out
    assert printed.index("ada") < printed.index("bob") and "1.2000" in printed
