"""The pictures and files of the structure half say what they show: PDB files that
round-trip through their fixed columns, a contact map on the prediction's own scale with
its precision beside the chance rate, a mutation heatmap centred at zero."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from workshop_protein.contacts import contact_density, contact_precision, contacts_from_coords, plot_contact_map
from workshop_protein.fold import read_ca_pdb, superpose, write_ca_pdb
from workshop_protein.mutations import plot_mutation_heatmap
from workshop_protein.pdbfile import THREE_LETTER
from workshop_protein.tokens import AMINO_ACIDS

SEQUENCE = AMINO_ACIDS + "X" + "MKTAYIAKQR"


def _parse_atoms(text: str) -> list[dict]:
    """The ATOM records by their columns (wwPDB 3.3), read here independently of the module."""
    atoms = []
    for line in text.splitlines():
        if line[:6] == "ATOM  ":
            atoms.append({
                "serial": int(line[6:11]), "name": line[12:16], "alt": line[16], "resname": line[17:20],
                "chain": line[21], "resseq": int(line[22:26]), "icode": line[26],
                "xyz": [float(line[30:38]), float(line[38:46]), float(line[46:54])],
                "occupancy": float(line[54:60]), "bfactor": float(line[60:66]), "element": line[76:78],
                "gaps": line[11] + line[20] + line[27:30] + line[66:76],
            })
    return atoms


def test_pdb_round_trips_coordinates_and_residue_names(tmp_path):
    rng = np.random.default_rng(0)
    L = len(SEQUENCE)
    coords = rng.normal(scale=40.0, size=(L, 3))
    coords[0] = [-999.0, 9999.0, -0.0004]  # the extremes the Real(8.3) columns hold
    bfactors = rng.uniform(0, 99, L)
    path = write_ca_pdb(tmp_path / "trace.pdb", coords, SEQUENCE, bfactors=bfactors,
                        remarks=["a trace for the test " * 6])
    text = path.read_text()
    atoms = _parse_atoms(text)
    assert len(atoms) == L
    for k, (atom, aa) in enumerate(zip(atoms, SEQUENCE), start=1):
        assert atom["serial"] == k and atom["resseq"] == k
        assert atom["name"] == " CA " and atom["alt"] == " " and atom["icode"] == " "
        assert atom["resname"] == THREE_LETTER[aa]
        assert atom["chain"] == "A" and atom["element"] == " C" and atom["occupancy"] == 1.0
        assert atom["gaps"].strip() == ""
    np.testing.assert_allclose([a["xyz"] for a in atoms], coords, atol=1e-3)
    np.testing.assert_allclose([a["bfactor"] for a in atoms], bfactors, atol=5e-3)
    assert [a["resname"] for a in atoms][:3] == ["ALA", "CYS", "ASP"] and atoms[20]["resname"] == "UNK"

    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].startswith("REMARK 999 a trace for the test") and lines[1].startswith("REMARK 999 ")
    ter = next(line for line in lines if line.startswith("TER"))
    assert int(ter[6:11]) == L + 1 and ter[17:20] == "ARG" and ter[21] == "A" and int(ter[22:26]) == L
    conect = [line for line in lines if line.startswith("CONECT")]
    assert [(int(c[6:11]), int(c[11:16])) for c in conect] == [(k, k + 1) for k in range(1, L)]
    assert lines[-1] == "END"

    back, seq_back = read_ca_pdb(path)
    np.testing.assert_allclose(back, coords, atol=1e-3)
    assert seq_back == SEQUENCE


def test_pdb_writer_refuses_what_the_columns_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        write_ca_pdb(tmp_path / "a.pdb", np.zeros((3, 3)), "MK")
    with pytest.raises(ValueError, match="unknown residue"):
        write_ca_pdb(tmp_path / "a.pdb", np.zeros((2, 3)), "MB")
    with pytest.raises(ValueError, match="fit"):
        write_ca_pdb(tmp_path / "a.pdb", [[0, 0, 0], [10000.0, 0, 0]], "MK")
    with pytest.raises(ValueError, match="bfactors"):
        write_ca_pdb(tmp_path / "a.pdb", np.zeros((2, 3)), "MK", bfactors=[0.0, 1000.0])


def _weak_prediction(L: int, rng) -> np.ndarray:
    # A weak model's probabilities: all far below 1, a little higher near true contacts.
    p = rng.uniform(0.01, 0.03, (L, L))
    return (p + p.T) / 2


def test_contact_map_uses_the_predictions_own_scale_and_states_precision_and_chance():
    rng = np.random.default_rng(1)
    L = 40
    coords = np.cumsum(rng.normal(size=(L, 3)) * 2.2, 0)
    truth = contacts_from_coords(coords)
    probs = _weak_prediction(L, rng) + 0.02 * truth
    fig = plot_contact_map(probs, truth, title="test protein", model="some-model")
    ax = fig.axes[0]
    norm = ax.images[0].norm
    i, j = np.triu_indices(L, 6)
    assert norm.vmin == 0.0
    assert norm.vmax == pytest.approx(np.quantile(probs[i, j], 0.99))
    assert norm.vmax < 0.06  # not the fixed 1.0 that hid the prediction
    title = ax.get_title()
    assert "test protein" in title and "some-model" in title
    assert f"{contact_precision(probs, truth):.2f}" in title
    assert f"contact density {contact_density(truth):.2f}" in title
    assert "scale" in fig.axes[1].get_ylabel()  # the colour bar says what its scale is
    plt.close(fig)

    fig = plot_contact_map(probs, truth, scale_quantile=1.0)
    assert fig.axes[0].images[0].norm.vmax == pytest.approx(probs[i, j].max())
    plt.close(fig)


def test_contact_map_without_a_structure_shows_the_prediction_only():
    probs = _weak_prediction(30, np.random.default_rng(2))
    fig = plot_contact_map(probs, title="ubiquitin", model="some-model")
    ax = fig.axes[0]
    assert len(ax.images) == 1  # no truth layer
    assert "prediction only" in ax.get_title() and "some-model" in ax.get_title()
    assert "precision" not in ax.get_title()
    shown = ax.images[0].get_array()
    assert shown[25, 3] == pytest.approx(probs[25, 3])  # both triangles are the prediction's
    plt.close(fig)


def test_contact_density_is_the_chance_rate():
    truth = np.zeros((20, 20), bool)
    truth[0, 10] = truth[10, 0] = True
    i, _ = np.triu_indices(20, 6)
    assert contact_density(truth) == pytest.approx(1 / len(i))


def test_mutation_heatmap_is_centred_at_zero_marks_wild_type_and_shows_quality():
    seq = "MKTAYIAKQRQISFVK"
    rng = np.random.default_rng(3)
    table = rng.normal(-1.0, 1.0, (len(seq), 20))
    table[np.arange(len(seq)), [AMINO_ACIDS.index(a) for a in seq]] = 0.0
    fig = plot_mutation_heatmap(seq, table, title="Masked-marginal scores, some-model",
                                quality="Spearman 0.42 vs BLOSUM62 0.30 on GB1 DMS")
    ax = fig.axes[0]
    norm = ax.images[0].norm
    assert norm.vmin == pytest.approx(-norm.vmax) and norm.vmax == pytest.approx(np.abs(table).max())
    assert ax.get_title() == "Masked-marginal scores, some-model\nSpearman 0.42 vs BLOSUM62 0.30 on GB1 DMS"
    [boxes] = ax.collections
    assert len(boxes.get_paths()) == len(seq)
    corners = np.array([path.vertices.min(0) for path in boxes.get_paths()]) + 0.5
    np.testing.assert_allclose(corners, [[k, AMINO_ACIDS.index(a)] for k, a in enumerate(seq)])
    plt.close(fig)
