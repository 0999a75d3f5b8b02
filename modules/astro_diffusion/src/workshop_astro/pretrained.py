"""The pretrained 64x64 galaxy model: export to a checksummed bfloat16 file, load back.

File format (one file): ``b"WSUNET01"``, an 8-byte little-endian header length, a JSON
header (the :class:`~workshop_astro.unet.UNetConfig`, the training recipe, the training
facts) and the U-Net's weights serialised with :func:`equinox.tree_serialise_leaves` in
bfloat16 (half the bytes of float32; sampling runs in float32 after loading).

A model trained with the ``"edm"`` recipe is stored as its network plus ``recipe``,
``sigma_data`` and the ``channel_stats`` of the images it was trained on; loading gives
back the :class:`~workshop_astro.edm.EDMDenoiser`, and :func:`pretrained_stats` the
:class:`~workshop_astro.galaxies.ChannelStats` that map its samples to model units.

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
import numpy as np

from workshop.data import DataError

from .edm import EDMDenoiser
from .galaxies import ChannelStats
from .unet import UNet, UNetConfig, init_unet

__all__ = ["PRETRAINED_NAME", "PRETRAIN_CUTS", "PretrainedFileError", "pretrain_stamps", "export_pretrained",
           "load_pretrained", "pretrained_stats", "read_header"]

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


def _non_finite(x) -> int:
    """NaN and infinite values of one weight array, counted by NumPy (no XLA program per shape)."""
    return int((~np.isfinite(np.asarray(x, np.float32))).sum())


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


class PretrainedFileError(DataError, ValueError):
    """A model file that cannot be used: missing, truncated, another kind of file, or with
    non-finite weights. The message names the file and the fix; a
    :class:`workshop.data.DataError`, so ``workshop run`` reports it without a traceback."""


def _fix(path) -> str:
    return (f"delete {path} and fetch or export it again (the shipped model: workshop fetch astro "
            f"{PRETRAINED_NAME}; your own: export_pretrained)")


def read_tree_header(path: str | os.PathLike, magic: bytes, what: str) -> dict:
    """The JSON header of a file written by :func:`write_tree_file` with ``magic``."""
    path = Path(path)
    if not path.is_file():
        raise PretrainedFileError(f"{path}: no such {what} file")
    with open(path, "rb") as f:
        found = f.read(8)
        if found != magic:
            raise PretrainedFileError(f"{path} is not a workshop_astro {what}: it starts with {found!r}, not "
                                      f"{magic!r} (another kind of file, or another module's); {_fix(path)}")
        n = int.from_bytes(f.read(8), "little")
        raw = f.read(n)
    try:
        if len(raw) != n:
            raise ValueError(f"{len(raw)} of {n} bytes")
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise ValueError(f"a JSON {type(header).__name__}")
    except ValueError as exc:
        raise PretrainedFileError(f"{path}: its header cannot be read ({exc}): the file is truncated or damaged; "
                                  f"{_fix(path)}") from None
    return header


def read_tree(path: str | os.PathLike, like):
    """The leaves of a file written by :func:`write_tree_file`, in the structure of ``like``.

    Raises:
        PretrainedFileError: the weights end early, do not fit ``like``, or are followed by
            more bytes than ``like`` holds (a file of another model).
    """
    with open(path, "rb") as f:
        f.read(8)
        f.read(int.from_bytes(f.read(8), "little"))
        try:
            tree = eqx.tree_deserialise_leaves(f, like)
        except Exception as exc:  # equinox: truncated (TreePathError) or another shape (RuntimeError)
            raise PretrainedFileError(f"{path}: its weights cannot be read as the model its header describes "
                                      f"({type(exc).__name__}: {str(exc)[:200]}): truncated or damaged; "
                                      f"{_fix(path)}") from None
        extra = len(f.read())
    if extra:
        raise PretrainedFileError(f"{path}: {extra} bytes are left after the weights of the model its header "
                                  f"describes: the file is damaged or not this format; {_fix(path)}")
    return tree


def export_pretrained(model: UNet | EDMDenoiser, path: str | os.PathLike, info: dict,
                      stats: ChannelStats | None = None) -> str:
    """Write ``model`` in bfloat16 with a JSON header to ``path`` (atomically); return its sha256.

    Arguments:
        model: a noise-predicting :class:`~workshop_astro.unet.UNet` or an
            :class:`~workshop_astro.edm.EDMDenoiser` around one.
        info: training facts for the header.
        stats: the per-channel statistics the training images were standardised with
            (``None``: trained on model units directly).

    A model with NaN or infinite weights is refused (``PretrainedFileError``); the file
    already at ``path``, if any, is left as it was.
    """
    if any(_non_finite(x) for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))):
        raise PretrainedFileError(f"{path}: not written, the model has NaN or infinite weights (a diverged run); the "
                                  "file already there, if any, is unchanged")
    head = dict(config=model.config.as_dict(), dtype="bfloat16", info=info, recipe="eps")
    if isinstance(model, EDMDenoiser):
        head.update(recipe="edm", sigma_data=float(model.sigma_data))
        model = model.net
    if stats is not None:
        head["channel_stats"] = dict(mean=[float(v) for v in stats.mean], std=[float(v) for v in stats.std])
    header = json.dumps(head, sort_keys=True).encode()
    return write_tree_file(path, _MAGIC, header, _cast(model, jnp.bfloat16))


def read_header(path: str | os.PathLike) -> dict:
    """The JSON header of a pretrained file (config and training facts)."""
    return read_tree_header(path, _MAGIC, "pretrained model")


def load_pretrained(path: str | os.PathLike) -> tuple[UNet | EDMDenoiser, dict]:
    """Load a model written by :func:`export_pretrained`, in float32; returns ``(model, header)``.

    The model is an :class:`~workshop_astro.edm.EDMDenoiser` when the header's recipe is
    ``"edm"`` (it answers the same ``model(x, t) -> eps`` as a plain U-Net); its samples
    are in the standardised units of :func:`pretrained_stats`.

    Raises:
        PretrainedFileError: the file is missing, not a pretrained-model file, truncated,
            or has NaN/infinite weights; the message names the file and the fix.
    """
    header = read_header(path)
    try:
        config = UNetConfig.from_dict(header["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PretrainedFileError(f"{path}: its header holds no valid U-Net config ({type(exc).__name__}: {exc}); "
                                  f"{_fix(path)}") from None
    like = _cast(init_unet(config), jnp.bfloat16)
    model = _cast(read_tree(path, like), jnp.float32)
    bad = sum(_non_finite(x) for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array)))
    if bad:
        raise PretrainedFileError(f"{path}: {bad} weights are NaN or infinite (exported from a diverged run); "
                                  f"{_fix(path)}")
    recipe = header.get("recipe", "eps")
    if recipe == "edm":
        sigma_data = header.get("sigma_data")
        if not isinstance(sigma_data, (int, float)) or not np.isfinite(sigma_data) or sigma_data <= 0:
            raise PretrainedFileError(f"{path}: its header's sigma_data {sigma_data!r} is not a positive number; "
                                      f"{_fix(path)}")
        model = EDMDenoiser(model, sigma_data=float(sigma_data))
    elif recipe != "eps":
        raise PretrainedFileError(f"{path}: its header names the training recipe {recipe!r}, which this version "
                                  f"cannot sample (it knows 'eps' and 'edm'); {_fix(path)}")
    pretrained_stats(header, path)  # refuse damaged statistics now, not after sampling
    return model, header


def pretrained_stats(header: dict, path: str | os.PathLike = PRETRAINED_NAME) -> ChannelStats | None:
    """The :class:`~workshop_astro.galaxies.ChannelStats` a pretrained model's training images were
    standardised with (map its samples back with ``unstandardise``); ``None`` when it was trained
    on model units directly."""
    raw = header.get("channel_stats")
    if raw is None:
        return None
    channels = UNetConfig.from_dict(header["config"]).image_channels
    try:
        mean, std = (np.asarray(raw[k], np.float64) for k in ("mean", "std"))
        ok = mean.shape == std.shape == (channels,) and np.isfinite(mean).all() and np.isfinite(std).all() \
            and (std > 0).all()
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise PretrainedFileError(f"{path}: its header's channel_stats {raw!r} are not {channels} finite means and "
                                  f"positive standard deviations; {_fix(path)}")
    return ChannelStats(tuple(float(v) for v in mean), tuple(float(v) for v in std))
