"""Real galaxy images: stamps cut from the Hubble Deep Field, Galaxy10 DECals, augmentations.

The embedded data set (``hdf_stamps_32.npz``) is built by ``datasets/astro_hdf_stamps.py``
from the Hubble Deep Field image that ships inside scikit-image
(``skimage.data.hubble_deep_field()``, NASA/STScI): sources are detected on the
smoothed luminance, centred cut-outs pass quality cuts, and the held-out split is a
separate strip of the sky (no pixel is shared between training and held-out stamps).

Images are ``uint8`` ``(N, H, W, 3)`` on disk and ``float32`` ``(N, 3, H, W)`` in
``[-1, 1]`` in the model (Equinox convolutions take channels first).

Example::

    from workshop.data import fetch
    data = load_stamps(fetch("astro", "hdf_stamps_32.npz"))
    data.train.shape        # (N, 3, 32, 32)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from workshop.data import DataError

from . import guards

__all__ = [
    "StampsError",
    "GalaxyData",
    "detect_sources",
    "extract_stamps",
    "build_hdf_stamps",
    "load_stamps",
    "to_model",
    "to_image",
    "ChannelStats",
    "channel_stats",
    "square_symmetry",
    "galaxy10_processor",
    "downsample",
]


@dataclass(frozen=True)
class GalaxyData:
    """Training and held-out galaxy images, ``float32 (N, 3, H, W)`` in ``[-1, 1]``."""

    train: np.ndarray
    test: np.ndarray
    meta: dict

    @property
    def resolution(self) -> int:
        return int(self.train.shape[-1])


def to_model(images_uint8: np.ndarray) -> np.ndarray:
    """``uint8 (N, H, W, 3)`` -> ``float32 (N, 3, H, W)`` in ``[-1, 1]``.

    Raises ``ValueError`` for channels-first, grey, non-square or non-``uint8`` images
    (saying how to convert them), instead of rescaling them wrongly.
    """
    x = guards.pixel_images("images_uint8", images_uint8).astype(np.float32) / 127.5 - 1.0
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def to_image(x) -> np.ndarray:
    """``(N, 3, H, W)`` in ``[-1, 1]`` -> ``float32 (N, H, W, 3)`` in ``[0, 1]`` (clipped), for plots."""
    x = np.asarray(x, dtype=np.float32)
    return np.clip(np.moveaxis(x, -3, -1) * 0.5 + 0.5, 0.0, 1.0)


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel mean and standard deviation of a set of images (model space, ``(C,)`` each).

    HDF stamps are mostly dark sky: in ``[-1, 1]`` each channel has a mean near -0.84 and a
    standard deviation near 0.23, so the galaxies (and their colours) are a small signal
    next to unit-variance diffusion noise. Training on ``standardise(x)`` (zero mean, unit
    variance per channel) gives every colour channel the same footing.

    Example::

        stats = channel_stats(data.train)
        z = stats.standardise(data.train)          # mean 0, std 1 per channel
        np.allclose(stats.unstandardise(z), data.train, atol=1e-5)
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def _shape(self, x):
        return np.asarray(self.mean, np.float32).reshape(-1, 1, 1), np.asarray(self.std, np.float32).reshape(-1, 1, 1)

    def standardise(self, x) -> np.ndarray:
        """``(x - mean) / std`` per channel; ``x`` is ``(..., C, H, W)``."""
        m, s = self._shape(x)
        return ((np.asarray(x, np.float32) - m) / s).astype(np.float32)

    def unstandardise(self, z) -> np.ndarray:
        """The inverse of :meth:`standardise`."""
        m, s = self._shape(z)
        return (np.asarray(z, np.float32) * s + m).astype(np.float32)


def channel_stats(images: np.ndarray) -> ChannelStats:
    """The :class:`ChannelStats` of ``images`` ``(N, C, H, W)``."""
    x = np.asarray(images, np.float64)
    if x.ndim != 4:
        raise ValueError(f"channel_stats expects images (N, C, H, W), got shape {x.shape}")
    std = x.std(axis=(0, 2, 3))
    if np.any(std <= 0) or not np.all(np.isfinite(std)):
        raise ValueError(f"channel_stats: a channel has no spread (std {std.tolist()}); the images are constant or not finite")
    return ChannelStats(tuple(float(v) for v in x.mean(axis=(0, 2, 3))), tuple(float(v) for v in std))


# --------------------------------------------------------------------------- detection


def detect_sources(image: np.ndarray, *, nsigma: float = 5.0, smooth: float = 1.0, min_area: int = 12):
    """Find sources in an RGB image by thresholding the smoothed luminance.

    The background level and noise are the median and the scaled median absolute
    deviation of the luminance (robust to the sources themselves).

    Arguments:
        image: ``(H, W, 3)`` array (any scale).
        nsigma: detection threshold above the background in units of the noise.
        smooth: Gaussian smoothing (pixels) before thresholding.
        min_area: smallest accepted number of connected pixels.

    Returns:
        A list of dicts with ``y, x`` (flux-weighted centroid), ``area``, ``flux``,
        ``peak`` and ``bbox`` (height, width), brightest first.
    """
    from scipy import ndimage as ndi

    lum = np.asarray(image, dtype=np.float64).mean(-1)
    bg = np.median(lum)
    noise = 1.4826 * np.median(np.abs(lum - bg))
    sm = ndi.gaussian_filter(lum, smooth)
    labels, n = ndi.label(sm > bg + nsigma * noise)
    out = []
    if n == 0:
        return out
    idx = np.arange(1, n + 1)
    area = ndi.sum(np.ones_like(lum), labels, idx)
    signal = np.clip(lum - bg, 0, None)
    flux = ndi.sum(signal, labels, idx)
    peak = ndi.maximum(lum, labels, idx)
    cents = ndi.center_of_mass(signal, labels, idx)
    slices = ndi.find_objects(labels)
    for i in range(n):
        if area[i] < min_area or flux[i] <= 0:
            continue
        sl = slices[i]
        out.append(
            dict(
                label=int(i + 1),
                y=float(cents[i][0]),
                x=float(cents[i][1]),
                area=int(area[i]),
                flux=float(flux[i]),
                peak=float(peak[i]),
                bbox=(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start),
            )
        )
    out.sort(key=lambda s: -s["flux"])
    return out


def extract_stamps(image: np.ndarray, size: int, *, nsigma: float = 5.0, min_area: int = 12, max_fill: float = 0.85,
                   dominance: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Centred cut-outs of detected sources that pass quality cuts.

    Quality cuts: the stamp lies fully inside the image; the source fits (its bounding
    box is at most ``max_fill`` of the stamp); the central source carries at least
    ``dominance`` of the detected flux inside the stamp (no brighter neighbour steals it).

    Returns:
        ``(stamps uint8 (N, size, size, 3), centres int (N, 2) as (y, x))``.
    """
    from scipy import ndimage as ndi

    image = np.asarray(image)
    H, W = image.shape[:2]
    half = size // 2
    sources = detect_sources(image, nsigma=nsigma, min_area=min_area)
    # Re-label for the neighbour test (same threshold as the detection).
    lum = image.astype(np.float64).mean(-1)
    bg = np.median(lum)
    noise = 1.4826 * np.median(np.abs(lum - bg))
    labels, _ = ndi.label(ndi.gaussian_filter(lum, 1.0) > bg + nsigma * noise)
    signal = np.clip(lum - bg, 0, None)
    stamps, centres = [], []
    for s in sources:
        cy, cx = int(round(s["y"])), int(round(s["x"]))
        y0, x0 = cy - half, cx - half
        if y0 < 0 or x0 < 0 or y0 + size > H or x0 + size > W:
            continue
        if max(s["bbox"]) > max_fill * size:
            continue
        win_lab = labels[y0:y0 + size, x0:x0 + size]
        win_sig = signal[y0:y0 + size, x0:x0 + size]
        detected = win_sig[win_lab > 0].sum()
        own = win_sig[win_lab == s["label"]].sum()
        if detected <= 0 or own < dominance * detected:
            continue
        stamps.append(image[y0:y0 + size, x0:x0 + size])
        centres.append((cy, cx))
    if not stamps:
        return np.zeros((0, size, size, 3), np.uint8), np.zeros((0, 2), np.int64)
    return np.stack(stamps).astype(np.uint8), np.asarray(centres, np.int64)


def build_hdf_stamps(size: int = 32, *, holdout_x: int = 800, **cuts) -> dict:
    """Stamps from ``skimage.data.hubble_deep_field()`` with a spatial held-out split.

    Stamps lying entirely left of column ``holdout_x`` are for training, those entirely
    right of it are held out; a stamp straddling the boundary is dropped, so the two
    sets share no pixel.

    Returns:
        ``{"train": uint8, "test": uint8, "train_centres", "test_centres", "meta": dict}``.
    """
    from skimage.data import hubble_deep_field

    image = hubble_deep_field()
    stamps, centres = extract_stamps(image, size, **cuts)
    half = size // 2
    left = centres[:, 1] + (size - half) <= holdout_x
    right = centres[:, 1] - half >= holdout_x
    meta = dict(
        source="skimage.data.hubble_deep_field() (Hubble Deep Field, NASA/STScI; public domain)",
        image_shape=list(image.shape),
        size=size,
        holdout_x=holdout_x,
        cuts=cuts,
        n_train=int(left.sum()),
        n_test=int(right.sum()),
    )
    return dict(train=stamps[left], test=stamps[right], train_centres=centres[left], test_centres=centres[right], meta=meta)


def save_stamps(path: str | os.PathLike, built: dict) -> None:
    """Write the stamps as a compressed, deterministic ``.npz`` (same bytes every time)."""
    import io
    import zipfile

    arrays = {k: v for k, v in built.items() if k != "meta"}
    arrays["meta"] = np.frombuffer(json.dumps(built["meta"], sort_keys=True).encode(), dtype=np.uint8)
    # np.savez_compressed stamps the current time into the zip; write entries with a fixed
    # date so the file (and its sha256) is reproducible.
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    os.replace(tmp, path)


class StampsError(DataError, ValueError):
    """A stamps file that cannot be used as galaxy images; the message names the file,
    the array and the fix. A :class:`workshop.data.DataError`, so ``workshop run``
    reports it without a traceback."""


def load_stamps(path: str | os.PathLike) -> GalaxyData:
    """Read a stamps ``.npz`` (from :func:`save_stamps`) as model-ready :class:`GalaxyData`.

    Raises:
        StampsError: the file is missing or not an ``.npz``, has no ``train``/``test``
            arrays, or holds images that are not ``uint8 (N, H, W, 3)`` (channels first,
            grey, floats in ``[0, 1]``), of two sizes, or empty.
    """
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise StampsError(f"{path}: no such stamps file")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("train", "test") if k not in z.files]
            if missing:
                raise StampsError(f"{path} has no {' or '.join(repr(k) for k in missing)} array (its arrays: "
                                  f"{', '.join(z.files) or 'none'}); a stamps file holds uint8 (N, H, W, 3) 'train' "
                                  "and 'test' images (galaxies.save_stamps writes one)")
            arrays = {k: z[k] for k in ("train", "test")}
            meta_raw = z["meta"] if "meta" in z.files else None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise StampsError(f"{path} cannot be read ({type(exc).__name__}: {exc}): truncated, or not an .npz") from None
    except ValueError as exc:
        if isinstance(exc, StampsError):
            raise
        raise StampsError(f"{path} is not an .npz of images ({exc})") from None
    try:
        meta = json.loads(bytes(meta_raw).decode()) if meta_raw is not None else {}
    except ValueError as exc:
        raise StampsError(f"{path}: its 'meta' is not JSON ({exc})") from None
    for k, a in arrays.items():
        try:
            guards.pixel_images(f"{path}: '{k}'", a)
        except ValueError as exc:
            raise StampsError(str(exc)) from None
        if not len(a):
            raise StampsError(f"{path}: '{k}' holds no images")
    if arrays["train"].shape[1:] != arrays["test"].shape[1:]:
        raise StampsError(f"{path}: 'train' images are {arrays['train'].shape[1:]}, 'test' images "
                          f"{arrays['test'].shape[1:]}; both sets must have one size")
    return GalaxyData(train=to_model(arrays["train"]), test=to_model(arrays["test"]), meta=meta)


# --------------------------------------------------------------------------- augmentation


def square_symmetry(x, k):
    """Apply the ``k``-th of the 8 symmetries of the square (``k`` in 0..7) to ``(C, H, W)``,
    about the stamp's centre pixel ``(H // 2, W // 2)``.

    ``k % 4`` quarter turns, then a left-right flip when ``k >= 4``. The stamps are cut with
    their source on pixel ``(H // 2, W // 2)`` (16 of 32), not on the grid's centre 15.5: a
    plain flip would move it to pixel 15, and a model trained on such copies puts its
    galaxies a pixel off in half the samples. So each reflection maps pixel ``i`` to
    ``2 (n // 2) - i`` (modulo ``n``): for an even size the first row or column, which has no
    partner inside the stamp, stays where it is. Works on NumPy and on JAX arrays; with
    JAX, ``k`` may be traced (all 8 are computed and one selected).
    """
    import jax.numpy as jnp

    def reflect(y, axis):
        n = y.shape[axis]
        return jnp.roll(jnp.flip(y, axis=axis), 1 - n % 2, axis=axis)

    def quarter_turn(y):  # (i, j) -> (n - j, i) about the centre pixel, as np.rot90 about 15.5
        return reflect(jnp.swapaxes(y, -2, -1), -2)

    outs = []
    for j in range(8):
        y = x
        for _ in range(j % 4):
            y = quarter_turn(y)
        outs.append(reflect(y, -1) if j >= 4 else y)
    return jnp.stack(outs)[k]


# --------------------------------------------------------------------------- Galaxy10 DECals


def downsample(images: np.ndarray, resolution: int, chunk: int = 256) -> np.ndarray:
    """Area-average ``uint8 (N, S, S, 3)`` images to ``(N, resolution, resolution, 3)``.

    ``S`` must be a multiple of ``resolution`` (256 -> 128, 64, 32, ...). Works in chunks
    so a large HDF5 file is never fully in memory.
    """
    resolution = guards.count("resolution", resolution)
    if len(images.shape) != 4 or images.shape[1] != images.shape[2]:
        raise ValueError(f"downsample takes square images (N, S, S, C), got shape {tuple(images.shape)}")
    n, s = images.shape[0], images.shape[1]
    if s % resolution:
        raise ValueError(f"cannot area-average {s}x{s} images to {resolution}x{resolution}: {s} is not a multiple")
    f = s // resolution
    out = np.empty((n, resolution, resolution, images.shape[-1]), np.uint8)
    for i in range(0, n, chunk):
        block = np.asarray(images[i:i + chunk], dtype=np.float32)
        block = block.reshape(block.shape[0], resolution, f, resolution, f, -1).mean(axis=(2, 4))
        out[i:i + chunk] = np.clip(np.rint(block), 0, 255).astype(np.uint8)
    return out


def galaxy10_processor(resolution: int, *, holdout_fraction: float = 0.1, seed: int = 0):
    """A Pooch processor: Galaxy10 DECals HDF5 -> cached ``.npz`` at ``resolution``.

    The downsampled file sits beside the download (``<name>.<resolution>px.npz``) and is
    made once: later calls return it directly unless the download was replaced
    (``action == "update"``). The held-out split is a fixed random subset.

    Example::

        path = fetch("astro", "Galaxy10_DECals.h5", processor=galaxy10_processor(64))
        data = load_stamps(path)
    """

    def process(fname: str, action: str, pooch_obj=None) -> str:
        src = Path(fname)
        dst = src.with_name(f"{src.stem}.{resolution}px.npz")
        if dst.is_file() and action == "fetch":
            return str(dst)
        import h5py

        with h5py.File(src, "r") as f:
            if "images" not in f:
                raise StampsError(f"{src}: no 'images' dataset (it has {', '.join(f.keys()) or 'none'}); is it "
                                  "Galaxy10_DECals.h5? Delete it and fetch it again")
            images = f["images"]
            try:
                guards.pixel_images(f"{src.name}: 'images'", images[:2])
            except ValueError as exc:
                raise StampsError(f"{exc}. Galaxy10 DECals stores uint8 (N, 256, 256, 3); delete {src} and fetch "
                                  "it again") from None
            small = downsample(images, resolution)
            labels = np.asarray(f["ans"]) if "ans" in f else np.zeros(len(small), np.int64)
            if labels.shape != (len(small),):
                raise StampsError(f"{src}: 'ans' holds {labels.shape} labels for {len(small)} images")
        rng = np.random.default_rng(seed)
        is_test = np.zeros(len(small), bool)
        is_test[rng.permutation(len(small))[: max(1, int(round(holdout_fraction * len(small))))]] = True
        built = dict(
            train=small[~is_test], test=small[is_test],
            train_labels=labels[~is_test].astype(np.int64), test_labels=labels[is_test].astype(np.int64),
            meta=dict(source="Galaxy10 DECals (astroNN, Leung & Bovy); images from the DESI Legacy Imaging Surveys",
                      resolution=resolution, holdout_fraction=holdout_fraction, seed=seed, n=int(len(small))),
        )
        save_stamps(dst, built)
        return str(dst)

    return process
