"""load_model: the embedded model, registered local weights, and helpful failures."""

import json

import jax
import numpy as np
import pytest

from workshop_protein import models as M
from workshop_protein.tokens import batch_tokenize


def test_embedded_model_loads_and_beats_the_unigram_baseline():
    model, info = M.load_model()
    assert info.name == "embedded" and not info.pretrained_esm2
    assert info.parameters == M.count_parameters(model) > 100_000
    meta = info.metadata
    assert meta["val_perplexity"] < meta["unigram_perplexity"] - 1.0
    assert "far better" in info.note
    tokens, _ = batch_tokenize(["MKTAYIAKQR"])
    logits = np.asarray(jax.vmap(model)(tokens).logits)
    assert logits.shape == (1, 12, 33) and np.isfinite(logits).all()


def test_unknown_name_and_source_are_refused():
    with pytest.raises(ValueError, match="esm2_t6_8M_UR50D"):
        M.load_model("esm3")
    with pytest.raises(ValueError, match="source"):
        M.load_model("embedded", source="internet")


@pytest.fixture()
def tiny_spec(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKSHOP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setitem(M.ESM2_PRETRAINED, "esm2_t2_test", M.Esm2Spec(2, 64, 4, "tiny"))
    return "esm2_t2_test"


def test_missing_weights_say_how_to_get_them(tiny_spec):
    with pytest.raises(M.ModelNotAvailable) as err:
        M.load_model(tiny_spec)
    msg = str(err.value)
    assert "register_local_weights" in msg and "fair-esm" in msg and f"{tiny_spec}.pt" in msg
    model, info = M.best_available_model((tiny_spec,))
    assert info.name == "embedded"


def test_registered_local_weights_are_checksummed(tiny_spec, tmp_path):
    torch = pytest.importorskip("torch")
    esm = pytest.importorskip("esm")
    import argparse

    torch.manual_seed(0)
    tmodel = esm.ESM2(num_layers=2, embed_dim=64, attention_heads=4).eval()
    path = tmp_path / f"{tiny_spec}.pt"
    cfg = argparse.Namespace(encoder_layers=2, encoder_embed_dim=64, encoder_attention_heads=4, token_dropout=True)
    torch.save({"model": {"encoder." + k: v for k, v in tmodel.state_dict().items()}, "cfg": {"model": cfg}}, path)
    entry = M.register_local_weights(path)
    assert len(entry["sha256"]) == 64 and entry["size"] == path.stat().st_size
    assert json.loads((tmp_path / "cache" / "protein" / "local_weights.json").read_text())[tiny_spec] == entry
    model, info = M.load_model(tiny_spec, source="weights")
    assert info.pretrained_esm2 and "registered" in info.source and info.num_layers == 2
    tokens, mask = batch_tokenize(["MKTAYIAKQR", "GSHM"])
    with torch.no_grad():
        ref = tmodel(torch.as_tensor(tokens, dtype=torch.long))["logits"].numpy()
    np.testing.assert_allclose(np.asarray(jax.vmap(model)(tokens).logits)[mask], ref[mask], atol=1e-4)
    # A changed file is not used.
    with open(path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(M.ModelNotAvailable, match="changed since it was registered"):
        M.load_model(tiny_spec)


def test_register_refuses_a_wrong_architecture(tiny_spec, tmp_path):
    torch = pytest.importorskip("torch")
    esm = pytest.importorskip("esm")
    tmodel = esm.ESM2(num_layers=3, embed_dim=64, attention_heads=4)
    path = tmp_path / "wrong.pt"
    torch.save({"model": tmodel.state_dict()}, path)
    with pytest.raises(ValueError, match="3-layer"):
        M.register_local_weights(path, name=tiny_spec)


def test_torch_hub_cache_is_read_torch_free_when_asked(tiny_spec, tmp_path):
    torch = pytest.importorskip("torch")
    esm = pytest.importorskip("esm")
    tmodel = esm.ESM2(num_layers=2, embed_dim=64, attention_heads=4)
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save({"model": tmodel.state_dict()}, hub / f"{tiny_spec}.pt")
    model, info = M.load_model(tiny_spec, source="weights")
    assert "restricted reader" in info.source and model.embed_size == 64


def test_auto_route_reads_an_official_style_hub_file(tiny_spec, tmp_path):
    torch = pytest.importorskip("torch")
    esm = pytest.importorskip("esm")
    import argparse

    torch.manual_seed(1)
    tmodel = esm.ESM2(num_layers=2, embed_dim=64, attention_heads=4).eval()
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    cfg = argparse.Namespace(encoder_layers=2, encoder_embed_dim=64, encoder_attention_heads=4, token_dropout=True)
    sd = {"encoder.sentence_encoder." + k: v for k, v in tmodel.state_dict().items() if not k.startswith("contact_head")}
    torch.save({"model": sd, "cfg": {"model": cfg}}, hub / f"{tiny_spec}.pt")
    reg = {k: v for k, v in tmodel.state_dict().items() if k.startswith("contact_head")}
    torch.save({"model": reg}, hub / f"{tiny_spec}-contact-regression.pt")
    model, info = M.load_model(tiny_spec)
    # fair-esm's own loader (through torch.load) or, when that refuses the file, the restricted reader.
    assert info.source.startswith("fair-esm") or "restricted reader" in info.source
    tokens, mask = batch_tokenize(["MKTAYIAKQRQ"])
    with torch.no_grad():
        ref = tmodel(torch.as_tensor(tokens, dtype=torch.long))["logits"].numpy()
    np.testing.assert_allclose(np.asarray(jax.vmap(model)(tokens).logits)[mask], ref[mask], atol=1e-4)
