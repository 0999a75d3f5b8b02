"""The contact head: attention maps, symmetrise/APC, the logistic regression, fitting,
and agreement with fair-esm's PyTorch contact head on converted weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import esm2quinox
from workshop_protein.contacts import (
    ContactHead,
    apc,
    attention_maps,
    contact_features,
    contact_precision,
    contacts_from_coords,
    fit_contact_head,
    predict_contacts,
    symmetrize,
)
from workshop_protein.tokens import batch_tokenize, tokenize


@pytest.fixture(scope="module")
def small_model():
    return esm2quinox.ESM2(num_layers=2, embed_size=32, num_heads=4, token_dropout=True, key=jax.random.key(0))


def test_attention_maps_reproduce_the_model_forward(small_model):
    toks = tokenize("MKTAYIAKQRQISFVKSHFSRQ")
    maps, hidden = attention_maps(small_model, toks, return_hidden=True)
    assert maps.shape == (2, 4, len(toks), len(toks))
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(hidden, small_model(toks).hidden, atol=1e-4)


def test_padding_does_not_change_the_features(small_model):
    tokens, _ = batch_tokenize(["MKTAYIAKQRQ", "MKTAYIAKQRQISFVK"])
    short = tokenize("MKTAYIAKQRQ")
    f_alone = contact_features(attention_maps(small_model, short), short)
    f_padded = contact_features(attention_maps(small_model, tokens[0]), tokens[0])
    L = len(short) - 2
    np.testing.assert_allclose(f_padded[:L, :L], f_alone, atol=1e-5)
    assert np.all(np.asarray(f_padded[L:]) == 0)


def test_symmetrize_and_apc():
    a = jax.random.uniform(jax.random.key(1), (3, 5, 5))
    s = symmetrize(a)
    np.testing.assert_allclose(s, np.swapaxes(np.asarray(s), -1, -2))
    c = np.asarray(apc(s))
    # APC of a rank-one (outer-product) matrix is zero; here rows and columns sum to ~0.
    u = np.arange(1.0, 6.0)
    np.testing.assert_allclose(apc(jnp.outer(u, u)), 0.0, atol=1e-5)
    ref = np.asarray(s) - np.asarray(s).sum(-1, keepdims=True) * np.asarray(s).sum(-2, keepdims=True) / np.asarray(s).sum((-1, -2), keepdims=True)
    np.testing.assert_allclose(c, ref, rtol=1e-5, atol=1e-6)


def test_matches_fair_esm_contact_head():
    torch = pytest.importorskip("torch")
    esm = pytest.importorskip("esm")
    torch.manual_seed(0)
    tmodel = esm.ESM2(num_layers=2, embed_dim=32, attention_heads=4, alphabet="ESM-1b", token_dropout=True).eval()
    with torch.no_grad():
        tmodel.contact_head.regression.weight.normal_()
        tmodel.contact_head.regression.bias.fill_(-0.3)
    model = esm2quinox.from_torch(tmodel)
    head = ContactHead.from_esm(tmodel)
    head2 = ContactHead.from_esm({"model": {k: v for k, v in tmodel.state_dict().items() if k.startswith("contact_head")}})
    np.testing.assert_array_equal(head.weight, head2.weight)
    seqs = ["MKTAYIAKQRQISFVKSHFSRQLEER", "GSHMLEDPVDAF"]
    tokens, _ = batch_tokenize(seqs)
    with torch.no_grad():
        ref = tmodel.predict_contacts(torch.as_tensor(tokens, dtype=torch.long)).numpy()
    for b, s in enumerate(seqs):
        ours = np.asarray(predict_contacts(model, head, tokens[b]))
        L = len(s)
        np.testing.assert_allclose(ours[:L, :L], ref[b, :L, :L], atol=2e-4)


def test_fit_contact_head_recovers_a_planted_feature():
    rng = np.random.default_rng(0)
    feats, maps = [], []
    for L in (30, 40):
        truth = rng.random((L, L)) < 0.1
        truth = truth | truth.T
        f = rng.normal(size=(L, L, 5)).astype(np.float32)
        f[..., 2] += 3.0 * truth  # feature 2 carries the contacts
        feats.append(jnp.asarray(f))
        maps.append(truth)
    head = fit_contact_head(feats, maps, steps=300)
    assert int(np.argmax(np.abs(np.asarray(head.weight)))) == 2
    probs = head(feats[0])
    assert contact_precision(probs, maps[0], top=10) >= 0.8
    # an untrained head is no better than chance there
    assert contact_precision(ContactHead(jnp.zeros(5), jnp.zeros(())).__call__(feats[0]), maps[0], top=10) < 0.8


def test_contacts_from_coords_and_precision():
    coords = np.array([[0, 0, 0], [3.8, 0, 0], [20, 0, 0], [7.6, 0, 0]], float)
    c = contacts_from_coords(coords)
    assert c[0, 1] and c[0, 3] and not c[0, 2] and not c[0, 0]
    probs = np.zeros((10, 10)); truth = np.zeros((10, 10), bool)
    probs[0, 8] = 0.9; truth[0, 8] = True; probs[1, 9] = 0.8
    assert contact_precision(probs, truth, top=1) == 1.0
    assert contact_precision(probs, truth, top=2) == 0.5


def test_official_regression_adopted_from_the_torch_hub_cache(tmp_path, monkeypatch):
    # A copy fair-esm already downloaded is adopted into the workshop cache and pinned.
    torch = pytest.importorskip("torch")
    from workshop.data import DataMissing, cache_dir
    from workshop_protein.contacts import load_contact_head

    monkeypatch.setenv("WORKSHOP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("WORKSHOP_OFFLINE", "1")
    w = torch.randn(1, 120)
    b = torch.tensor([0.25])
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save({"model": {"contact_head.regression.weight": w, "contact_head.regression.bias": b}},
               folder / "esm2_t6_8M_UR50D-contact-regression.pt")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    head = load_contact_head("esm2_t6_8M_UR50D")
    np.testing.assert_allclose(head.weight, w.numpy()[0])
    assert float(head.bias) == pytest.approx(0.25)
    assert "protein/esm2_t6_8M_UR50D-contact-regression.pt" in (cache_dir() / "pins.json").read_text()
    with pytest.raises(DataMissing, match="workshop fetch protein"):
        load_contact_head("esm2_t12_35M_UR50D")


def test_real_structures_are_protein_chains():
    from workshop_protein.contacts import real_structures

    s = real_structures()
    assert set(s) == {"1A8O_A", "1LCD_A", "2XHE_B", "7DDO_C"}
    for v in s.values():
        assert len(v["sequence"]) == len(v["ca"]) == len(v["cb"])
    bonds = np.linalg.norm(np.diff(s["1A8O_A"]["ca"], axis=0), axis=1)
    np.testing.assert_allclose(bonds, 3.8, atol=0.15)


def test_the_shipped_head_fits_the_embedded_model():
    from workshop.data import module_data
    from workshop_protein.contacts import load_contact_head
    from workshop_protein.models import EMBEDDED_MODEL_FILE, load_model

    if EMBEDDED_MODEL_FILE not in [e.name for e in module_data("protein").entries]:
        pytest.skip("the embedded model is not registered yet")
    model, _ = load_model("embedded")
    # raises when the head was fitted for another version of the model: rerun the recipe
    head = load_contact_head("embedded")
    assert head.weight.shape == (model.num_layers * model.num_heads,)
    probs = predict_contacts(model, head, tokenize("MKTAYIAKQRQISFVKSHFSRQ"))
    assert probs.shape == (22, 22) and bool(jnp.all((probs >= 0) & (probs <= 1)))
