"""The pretrained 64x64 galaxy model: export to a checksummed bfloat16 file, load back.

File format (one file): ``b"WSUNET01"``, an 8-byte little-endian header length, a JSON
header (the :class:`~workshop_astro.unet.UNetConfig`, the training facts) and the
weights serialised with :func:`equinox.tree_serialise_leaves` in bfloat16 (half the
bytes of float32; sampling runs in float32 after loading).

Example::

    from workshop.data import fetch
    model, info = load_pretrained(fetch("astro", PRETRAINED_NAME))
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

from .unet import UNet, UNetConfig, init_unet

__all__ = ["PRETRAINED_NAME", "PRETRAIN_CUTS", "pretrain_stamps", "export_pretrained", "load_pretrained", "read_header"]

PRETRAINED_NAME = "unet64_hdf.eqx"
_MAGIC = b"WSUNET01"

#: Detection and quality cuts of the 64x64 HDF stamps the pretrained model was trained on
#: (``datasets/astro_pretrain_64.py``); neighbours allowed (``dominance=0``).
PRETRAIN_CUTS = dict(nsigma=5.0, min_area=20, max_fill=0.85, dominance=0.0)


@functools.lru_cache(maxsize=1)
def pretrain_stamps() -> tuple:
    """``(train, test, meta)``: the pretrained model's 64x64 HDF stamps in model units
    ``(N, 3, 64, 64)``; ``test`` is the held-out strip it never saw. Built once per process."""
    from .galaxies import build_hdf_stamps, to_model

    built = build_hdf_stamps(64, **PRETRAIN_CUTS)
    return to_model(built["train"]), to_model(built["test"]), built["meta"]


def _cast(model, dtype):
    return jax.tree_util.tree_map(lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, model)


def write_tree_file(path: str | os.PathLike, magic: bytes, header: bytes, tree) -> str:
    """Write ``magic``, the header length, ``header`` and ``tree``'s leaves to ``path`` atomically
    (temporary file, fsync, ``os.replace``); return the file's sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, tree)
    blob = magic + len(header).to_bytes(8, "little") + header + buf.getvalue()
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return hashlib.sha256(blob).hexdigest()


def read_tree_header(path: str | os.PathLike, magic: bytes, what: str) -> dict:
    """The JSON header of a file written by :func:`write_tree_file` with ``magic``."""
    with open(path, "rb") as f:
        if f.read(8) != magic:
            raise ValueError(f"{path} is not a workshop_astro {what}")
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n))


def read_tree(path: str | os.PathLike, like):
    """The leaves of a file written by :func:`write_tree_file`, in the structure of ``like``."""
    with open(path, "rb") as f:
        f.read(8)
        f.read(int.from_bytes(f.read(8), "little"))
        return eqx.tree_deserialise_leaves(f, like)


def export_pretrained(model: UNet, path: str | os.PathLike, info: dict) -> str:
    """Write ``model`` in bfloat16 with a JSON header to ``path`` (atomically); return its sha256."""
    header = json.dumps(dict(config=model.config.as_dict(), dtype="bfloat16", info=info), sort_keys=True).encode()
    return write_tree_file(path, _MAGIC, header, _cast(model, jnp.bfloat16))


def read_header(path: str | os.PathLike) -> dict:
    """The JSON header of a pretrained file (config and training facts)."""
    return read_tree_header(path, _MAGIC, "pretrained model")


def load_pretrained(path: str | os.PathLike) -> tuple[UNet, dict]:
    """Load a model written by :func:`export_pretrained`, in float32; returns ``(model, header)``."""
    header = read_header(path)
    config = UNetConfig.from_dict(header["config"])
    like = _cast(init_unet(config), jnp.bfloat16)
    return _cast(read_tree(path, like), jnp.float32), header
