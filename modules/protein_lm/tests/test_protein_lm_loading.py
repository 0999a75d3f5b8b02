"""load_model / select_model: the embedded model, published ESM2 fetched and pinned
through the registry (a synthetic checkpoint on 127.0.0.1 stands in for the official
host), and helpful failures."""

import json

import jax
import numpy as np
import pytest

from workshop.data import DataUnreachable, PinMismatch, cache_dir
from workshop_protein import models as M
from workshop_protein.tokens import batch_tokenize

ESM8M = "esm2_t6_8M_UR50D"


def test_embedded_model_loads_and_beats_the_unigram_baseline():
    model, info = M.load_model()
    assert info.name == "embedded" and not info.pretrained_esm2
    assert info.parameters == M.count_parameters(model) > 100_000
    meta = info.metadata
    assert meta["val_perplexity"] < meta["unigram_perplexity"] - 1.0
    assert "far weaker" in info.note
    tokens, _ = batch_tokenize(["MKTAYIAKQR"])
    logits = np.asarray(jax.vmap(model)(tokens).logits)
    assert logits.shape == (1, 12, 33) and np.isfinite(logits).all()


def test_unknown_name_and_source_are_refused():
    with pytest.raises(M.UnknownModel, match="esm2_t6_8M_UR50D"):
        M.load_model("esm3")
    with pytest.raises(M.UnknownModel, match="esm3"):
        M.select_model("esm3", "cpu")





def test_esm2_is_fetched_pinned_verified_and_loaded(esm2_host, capsys):
    host = esm2_host
    folder, hits = host.folder, host.hits
    host.write(ESM8M, 6, 320, 20)
    lines = []
    model, info = M.select_model(None, "cpu", log=lines.append)
    assert info.name == ESM8M and info.pretrained_esm2 and "pinned sha256" in info.source
    assert (model.num_layers, model.embed_size, model.num_heads) == (6, 320, 20)
    assert lines[0].startswith(f"Model: {ESM8M}") and "cpu preset" in lines[0]
    err = capsys.readouterr().err
    pins = json.loads((cache_dir() / "pins.json").read_text())["pins"]
    assert pins[f"protein/{ESM8M}.pt"]["size"] == (folder / f"{ESM8M}.pt").stat().st_size
    assert pins[f"protein/{ESM8M}.pt"]["sha256"] in err  # the pin is printed
    tokens, mask = batch_tokenize(["MKTAYIAKQR"])
    assert np.isfinite(np.asarray(jax.vmap(model)(tokens).logits)).all()
    # The second use comes from the cache, verified against the pin: no request.
    n = len(hits)
    M.load_model(ESM8M)
    assert len(hits) == n


def test_a_different_file_under_the_same_name_is_refused_never_replaced(esm2_host):
    esm2_host.write(ESM8M, 6, 320, 20, seed=0)
    M.load_model(ESM8M)
    cached = cache_dir() / "protein" / f"{ESM8M}.pt"
    cached.unlink()
    esm2_host.write(ESM8M, 6, 320, 20, seed=7)  # the host now serves other weights
    with pytest.raises(PinMismatch, match="does not match its pin"):
        M.select_model(None, "cpu", log=lambda _: None)  # refused: no silent switch to the embedded model
    assert not cached.exists()


def test_offline_or_unreachable_falls_back_to_the_embedded_model_and_says_how(esm2_host, monkeypatch):
    monkeypatch.setenv("WORKSHOP_OFFLINE", "1")
    lines = []
    model, info = M.select_model(None, "cpu", log=lines.append)
    assert info.name == "embedded"
    assert "offline" in lines[0] and f"workshop fetch protein {ESM8M}.pt" in lines[0] and "far weaker" in lines[0]
    monkeypatch.delenv("WORKSHOP_OFFLINE")
    monkeypatch.setenv("WORKSHOP_MIRROR", "http://127.0.0.1:9")  # nothing listens there
    lines.clear()
    _, info = M.select_model(None, "cpu", log=lines.append)
    assert info.name == "embedded" and "could not be reached" in lines[0]
    # Asked for by name, it is that model or an error.
    with pytest.raises(DataUnreachable):
        M.select_model(ESM8M, "cpu")


def test_a_checkpoint_of_another_architecture_or_not_a_checkpoint_is_refused(esm2_host):
    folder = esm2_host.folder
    esm2_host.write(ESM8M, 2, 320, 20)
    with pytest.raises(ValueError, match="2-layer, 320-wide model, not esm2_t6_8M_UR50D"):
        M.load_model(ESM8M)
    esm35 = "esm2_t12_35M_UR50D"
    esm2_host.write_zip(f"{esm35}.pt", {"model": {"encoder.sentence_encoder.embed_tokens.weight": np.zeros((33, 480), np.float32)}})
    with pytest.raises(ValueError, match="not a checkpoint of esm2_t12_35M_UR50D.*missing"):
        M.load_model(esm35)
    esm150 = "esm2_t30_150M_UR50D"
    (folder / f"{esm150}.pt").write_bytes(b"<html>404 page of a proxy</html>")
    with pytest.raises(ValueError, match="not a zip-format PyTorch checkpoint"):
        M.load_model(esm150)


def test_contact_regression_comes_from_the_registry(esm2_host):
    from workshop_protein.contacts import load_contact_head

    files = esm2_host.write(ESM8M, 6, 320, 20)
    head = load_contact_head(ESM8M)
    assert head.weight.shape[-1] == 6 * 20
    assert json.loads((cache_dir() / "pins.json").read_text())["pins"][f"protein/{ESM8M}-contact-regression.pt"]
    assert files["regression"].exists()


def test_parity_with_fair_esm_on_the_same_pinned_file(esm2_host):
    torch = pytest.importorskip("torch")
    pytest.importorskip("esm")
    from workshop_protein.contacts import load_contact_head, predict_contacts

    esm2_host.write(ESM8M, 6, 320, 20, seed=3)
    model, _ = M.load_model(ESM8M)
    load_contact_head(ESM8M)  # fetched beside the weights, where fair-esm looks for it
    import esm

    from workshop_protein.torch_weights import read_checkpoint

    # fair-esm's model, filled strictly (every key, every shape) from the same two files.
    state = {}
    for file in (f"{ESM8M}.pt", f"{ESM8M}-contact-regression.pt"):
        for k, v in read_checkpoint(cache_dir() / "protein" / file)["model"].items():
            state[k.removeprefix("encoder.sentence_encoder.").removeprefix("encoder.")] = torch.from_numpy(v)
    tmodel = esm.ESM2(num_layers=6, embed_dim=320, attention_heads=20, token_dropout=True)
    tmodel.load_state_dict(state, strict=True)
    tokens, mask = batch_tokenize(["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLEDPV"])
    with torch.no_grad():
        out = tmodel.eval()(torch.as_tensor(tokens, dtype=torch.long), return_contacts=True)
    np.testing.assert_allclose(np.asarray(jax.vmap(model)(tokens).logits)[mask], out["logits"].numpy()[mask], atol=1e-4)
    probs = np.asarray(predict_contacts(model, load_contact_head(ESM8M), tokens[0]))
    np.testing.assert_allclose(probs, out["contacts"][0].numpy(), atol=1e-4)
