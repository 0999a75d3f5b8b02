"""Shared fixtures: synthetic ESM2 checkpoints in the official layout, served from 127.0.0.1.

The official ESM2 files are zip-format ``torch.save`` archives holding
``{"model": state_dict, "cfg": ...}`` with fairseq-style key prefixes
(``encoder.sentence_encoder.layers.0.self_attn.q_proj.weight``, ``encoder.lm_head.bias``)
and a separate ``-contact-regression.pt`` holding ``{"model": {"contact_head.regression.*"}}``.
:func:`write_torch_zip` writes such archives without PyTorch, so these tests run where
PyTorch is not installed; where it is, the parity test reads the same file with fair-esm.
"""

from __future__ import annotations

import collections
import http.server
import io
import pickle
import threading
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pytest


class _Name:
    """A global the pickle refers to by name (``torch._utils._rebuild_tensor_v2``); never imported here."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle asks a reduce function to be callable; this one is only named
        raise TypeError(f"{self.module}.{self.name} stands in for a name and is never called")


class _Storage:
    def __init__(self, key: str, array: np.ndarray):
        self.key, self.array = key, array


class _Tensor:
    def __init__(self, storage: _Storage, shape: tuple[int, ...]):
        self.storage, self.shape = storage, shape

    def __reduce__(self):
        stride, step = [], 1
        for n in reversed(self.shape):
            stride.insert(0, step)
            step *= n
        return (_Name("torch._utils", "_rebuild_tensor_v2"),
                (self.storage, 0, self.shape, tuple(stride), False, collections.OrderedDict()))


class _TorchPickler(pickle._Pickler):  # the Python pickler lets a type choose its own opcodes
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_name(self, obj: _Name) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[_Name] = _save_name

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", _Name("torch", "FloatStorage"), obj.key, "cpu", obj.array.size)
        return None


def write_torch_zip(path: Path, obj, prefix: str = "archive") -> Path:
    """Write ``obj`` (dicts, lists, numbers, float32 numpy arrays) as a zip-format ``torch.save`` file."""
    storages: list[_Storage] = []

    def convert(x):
        if isinstance(x, np.ndarray):
            s = _Storage(str(len(storages)), np.ascontiguousarray(x, dtype="<f4"))
            storages.append(s)
            return _Tensor(s, tuple(int(n) for n in x.shape))
        if isinstance(x, dict):
            out = collections.OrderedDict() if isinstance(x, collections.OrderedDict) else {}
            for k, v in x.items():
                out[k] = convert(v)
            return out
        if isinstance(x, (list, tuple)):
            return type(x)(convert(v) for v in x)
        return x

    buf = io.BytesIO()
    _TorchPickler(buf, protocol=2).dump(convert(obj))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{prefix}/data.pkl", buf.getvalue())
        z.writestr(f"{prefix}/byteorder", "little")
        z.writestr(f"{prefix}/version", "3\n")
        for s in storages:
            z.writestr(f"{prefix}/data/{s.key}", s.array.tobytes())
    return path


def esm2_state_dict(num_layers: int, width: int, heads: int, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights with the keys and shapes of an official ESM2 checkpoint."""
    rng = np.random.default_rng(seed)

    def w(*shape, scale=0.05):
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    enc, head_dim = "encoder.sentence_encoder.", width // heads
    state = {enc + "embed_tokens.weight": w(33, width, scale=0.5)}
    for i in range(num_layers):
        p = f"{enc}layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            state[p + f"self_attn.{proj}.weight"] = w(width, width)
            state[p + f"self_attn.{proj}.bias"] = w(width, scale=0.01)
        state[p + "self_attn.rot_emb.inv_freq"] = (
            1.0 / 10000 ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim)).astype(np.float32)
        for ln in ("self_attn_layer_norm", "final_layer_norm"):
            state[p + f"{ln}.weight"], state[p + f"{ln}.bias"] = norm(width), w(width, scale=0.01)
        state[p + "fc1.weight"], state[p + "fc1.bias"] = w(4 * width, width), w(4 * width, scale=0.01)
        state[p + "fc2.weight"], state[p + "fc2.bias"] = w(width, 4 * width), w(width, scale=0.01)
    state[enc + "emb_layer_norm_after.weight"], state[enc + "emb_layer_norm_after.bias"] = norm(width), w(width, scale=0.01)
    state["encoder.lm_head.dense.weight"], state["encoder.lm_head.dense.bias"] = w(width, width), w(width, scale=0.01)
    state["encoder.lm_head.layer_norm.weight"], state["encoder.lm_head.layer_norm.bias"] = norm(width), w(width, scale=0.01)
    state["encoder.lm_head.weight"] = state[enc + "embed_tokens.weight"]
    state["encoder.lm_head.bias"] = w(33, scale=0.01)
    return state


def write_esm2_files(folder: Path, name: str, num_layers: int, width: int, heads: int, *, seed: int = 0) -> dict:
    """``<name>.pt`` and ``<name>-contact-regression.pt`` in the official layout, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"model": {"encoder_layers": num_layers, "encoder_embed_dim": width, "encoder_attention_heads": heads,
                     "token_dropout": True}}
    weights = write_torch_zip(folder / f"{name}.pt", {"model": esm2_state_dict(num_layers, width, heads, seed=seed),
                                                      "cfg": cfg})
    rng = np.random.default_rng(seed + 1)
    reg = {"contact_head.regression.weight": (0.1 * rng.standard_normal((1, num_layers * heads))).astype(np.float32),
           "contact_head.regression.bias": np.array([-2.0], np.float32)}
    regression = write_torch_zip(folder / f"{name}-contact-regression.pt", {"model": reg})
    return {"weights": weights, "regression": regression}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()


class Esm2Host:
    """What :func:`esm2_host` yields: the served folder, the requests seen, and writers."""

    def __init__(self, folder: Path, hits: list[str]):
        self.folder, self.hits = folder, hits

    def write(self, name: str, num_layers: int, width: int, heads: int, *, seed: int = 0) -> dict:
        return write_esm2_files(self.folder, name, num_layers, width, heads, seed=seed)

    def write_zip(self, file: str, obj) -> Path:
        return write_torch_zip(self.folder / file, obj)


@pytest.fixture
def esm2_host(tmp_path, monkeypatch):
    """A 127.0.0.1 server standing in for the official host, laid out as a mirror
    (``protein/<file>``); ``WORKSHOP_MIRROR`` points at it and the cache is empty.

    Yields an :class:`Esm2Host`."""
    root = tmp_path / "host"
    folder = root / "protein"
    folder.mkdir(parents=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    server.hits = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("WORKSHOP_MIRROR", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("WORKSHOP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("WORKSHOP_OFFLINE", raising=False)
    monkeypatch.delenv("WORKSHOP_PINS", raising=False)
    try:
        yield Esm2Host(folder, server.hits)  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
