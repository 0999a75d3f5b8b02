"""Parity of ESM2 in Equinox with fair-esm, the restricted .pt reader, model files."""

import io
import pickle
import zipfile

import jax
import numpy as np
import pytest

from workshop_protein.models import model_from_state_dict, new_model, read_model, save_model
from workshop_protein.tokens import batch_tokenize
from workshop_protein.torch_weights import UnsafeCheckpoint, read_checkpoint

SEQS = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLE<mask>VKW", "ACDEFGHIKLMNPQRSTVWYXBZUO"]


def _torch_esm2(num_layers=2, embed_dim=64, heads=4, token_dropout=True, seed=0):
    torch = pytest.importorskip("torch")
    esm = pytest.importorskip("esm")
    torch.manual_seed(seed)
    model = esm.ESM2(num_layers=num_layers, embed_dim=embed_dim, attention_heads=heads, token_dropout=token_dropout)
    # Random init leaves LayerNorms at identity and biases at zero; perturb every
    # parameter so that a wrongly mapped array cannot go unnoticed.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def _torch_forward(model, tokens):
    import torch

    with torch.no_grad():
        out = model(torch.as_tensor(tokens, dtype=torch.long), repr_layers=[model.num_layers])
    return out["logits"].numpy(), out["representations"][model.num_layers].numpy()


@pytest.mark.parametrize("route", ["from_torch", "state_dict"])
@pytest.mark.parametrize("token_dropout", [True, False])
def test_parity_with_fair_esm(route, token_dropout):
    tmodel = _torch_esm2(token_dropout=token_dropout)
    if route == "from_torch":
        import esm2quinox

        model = esm2quinox.from_torch(tmodel)
    else:
        state = {k: v.numpy() for k, v in tmodel.state_dict().items()}
        model = model_from_state_dict(state, num_heads=4, token_dropout=token_dropout)
    tokens, mask = batch_tokenize(SEQS)
    t_logits, t_hidden = _torch_forward(tmodel, tokens)
    out = jax.vmap(model)(tokens)
    m = mask[..., None]
    # Padding positions are not defined outputs in either implementation.
    np.testing.assert_allclose(np.where(m, out.logits, 0), np.where(m, t_logits, 0), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(np.where(m, out.hidden, 0), np.where(m, t_hidden, 0), atol=1e-4, rtol=1e-4)


def test_restricted_reader_reads_torch_save_and_official_layout(tmp_path):
    torch = pytest.importorskip("torch")
    import argparse

    tmodel = _torch_esm2(num_layers=3, embed_dim=48, heads=4)
    # The official checkpoints prefix names with "encoder." and carry config objects.
    sd = {"encoder.sentence_encoder." + k: v for k, v in tmodel.state_dict().items()}
    cfg = argparse.Namespace(encoder_layers=3, encoder_embed_dim=48)
    path = tmp_path / "esm_like.pt"
    torch.save({"model": sd, "args": cfg, "cfg": {"model": cfg}}, path)
    ckpt = read_checkpoint(path)
    assert ckpt["cfg"]["model"].encoder_layers == 3 and ckpt["args"].qualname == "argparse.Namespace"
    for k, v in tmodel.state_dict().items():
        got = ckpt["model"]["encoder.sentence_encoder." + k]
        assert isinstance(got, np.ndarray) and got.dtype == np.float32
        np.testing.assert_array_equal(got, v.numpy())
    model = model_from_state_dict(ckpt["model"], num_heads=4)
    tokens, mask = batch_tokenize(SEQS[:2])
    t_logits, _ = _torch_forward(tmodel, tokens)
    logits = np.asarray(jax.vmap(model)(tokens).logits)
    np.testing.assert_allclose(logits[mask], t_logits[mask], atol=1e-4)


def test_restricted_reader_views_and_dtypes(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    obj = {"t": base.t(), "slice": base[1:, ::2], "half": base.half(), "long": torch.arange(5), "scalar": torch.tensor(3.5)}
    torch.save(obj, tmp_path / "v.pt")
    got = read_checkpoint(tmp_path / "v.pt")
    for k, v in obj.items():
        np.testing.assert_array_equal(np.asarray(got[k]), v.numpy())
        assert got[k].shape == tuple(v.shape)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def _zip_with_pickle(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/byteorder", "little")


@pytest.mark.parametrize("payload", [
    pickle.dumps({"model": _Evil()}, protocol=2),
    pickle.dumps(eval, protocol=2),
    b"cbuiltins\nexec\n(Vprint(1)\ntR.",
])
def test_malicious_pickle_is_refused(tmp_path, payload, monkeypatch):
    import os

    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    path = tmp_path / "evil.pt"
    _zip_with_pickle(path, payload)
    with pytest.raises(UnsafeCheckpoint, match="refused"):
        read_checkpoint(path)
    assert called == []


def test_non_zip_file_is_refused(tmp_path):
    path = tmp_path / "legacy.pt"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(UnsafeCheckpoint, match="not a zip-format"):
        read_checkpoint(path)


def test_save_and_read_model_roundtrip(tmp_path):
    model = new_model(2, 32, 4, key=jax.random.key(1))
    path = save_model(tmp_path / "m.npz", model, metadata={"val_perplexity": 12.5})
    back, config = read_model(path)
    assert config["metadata"]["val_perplexity"] == 12.5
    tokens, _ = batch_tokenize(SEQS[:1])
    np.testing.assert_array_equal(np.asarray(jax.vmap(back)(tokens).logits), np.asarray(jax.vmap(model)(tokens).logits))
    # the file holds no pickle
    with np.load(path, allow_pickle=False) as z:
        assert "config_json" in z


def test_tensor_outside_its_storage_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "t.pt"
    torch.save({"w": torch.arange(6.0)}, path)
    # Rewrite the pickle so that the tensor claims 600 elements of a 6-element storage.
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    pkl = next(n for n in files if n.endswith("data.pkl"))
    data = files[pkl]
    assert b"K\x06\x85" in data  # the size tuple (6,) as pickled by protocol 2
    files[pkl] = data.replace(b"K\x06\x85", b"MX\x02\x85", 1)
    bad = tmp_path / "bad.pt"
    with zipfile.ZipFile(bad, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    with pytest.raises(UnsafeCheckpoint, match="outside its storage"):
        read_checkpoint(bad)
