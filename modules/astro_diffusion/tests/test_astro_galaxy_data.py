"""Galaxy data: the embedded HDF stamps (hash, recipe, split), augmentation, Galaxy10 processor."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from workshop import DataEntry
from workshop.data import DataMissing, ModuleData, fetch, sha256_of

from workshop_astro.galaxies import (
    build_hdf_stamps, downsample, galaxy10_processor, load_stamps, save_stamps, square_symmetry, to_image, to_model,
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKSHOP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("WORKSHOP_OFFLINE", raising=False)
    monkeypatch.delenv("WORKSHOP_MIRROR", raising=False)


def test_embedded_stamps_verified_and_split():
    path = fetch("astro", "hdf_stamps_32.npz")
    from workshop_astro.plugin import workshop_module

    entry = workshop_module().dataset("hdf_stamps_32.npz")
    assert sha256_of(path) == entry.sha256
    data = load_stamps(path)
    assert data.train.shape[1:] == (3, 32, 32) and data.test.shape[1:] == (3, 32, 32)
    assert len(data.train) >= 300 and len(data.test) >= 80
    assert data.train.min() >= -1 and data.train.max() <= 1
    # the split is spatial: no held-out stamp overlaps a training stamp
    with np.load(path) as z:
        tr, te = z["train_centres"], z["test_centres"]
    assert tr[:, 1].max() + 16 <= 800 <= te[:, 1].min() - 16
    # galaxies are centred: the brightest pixel region sits near the middle on average
    lum = data.train.mean(axis=1)
    centre = lum[:, 12:20, 12:20].mean()
    edge = np.concatenate([lum[:, :4].ravel(), lum[:, -4:].ravel()]).mean()
    assert centre > edge + 0.2


def test_recipe_reproduces_the_shipped_file(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("recipe", Path(__file__).parents[3] / "datasets/astro_hdf_stamps.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    built = build_hdf_stamps(recipe.SIZE, holdout_x=recipe.HOLDOUT_X, **recipe.CUTS)
    save_stamps(tmp_path / "s.npz", built)
    assert sha256_of(tmp_path / "s.npz") == sha256_of(fetch("astro", "hdf_stamps_32.npz"))


def test_damaged_embedded_file_is_refused(tmp_path):
    from workshop.data import DataDamaged

    bad = tmp_path / "pkg"
    (bad / "data").mkdir(parents=True)
    (bad / "__init__.py").write_text("")
    (bad / "data" / "s.npz").write_bytes(b"not the stamps")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        md = ModuleData("astro_t", "pkg", (DataEntry("s.npz", sha256="0" * 64, embedded="data/s.npz"),))
        with pytest.raises(DataDamaged):
            md.fetch("s.npz")
    finally:
        sys.path.remove(str(tmp_path))


def test_square_symmetries_form_the_dihedral_group():
    x = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    outs = [np.asarray(square_symmetry(x, k)) for k in range(8)]
    assert np.array_equal(outs[0], x)
    assert len({o.tobytes() for o in outs}) == 8  # all distinct
    for o in outs:  # each is a permutation of the pixels of every channel
        assert np.array_equal(np.sort(o.ravel()), np.sort(x.ravel()))
    # closed under composition
    for k in range(8):
        for j in range(8):
            y = np.asarray(square_symmetry(np.asarray(square_symmetry(x, k)), j))
            assert any(np.array_equal(y, o) for o in outs)


@pytest.mark.parametrize("size", [32, 5])
def test_square_symmetries_keep_the_stamp_centre_pixel(size):
    # stamps are cut with the source on pixel size // 2 (16 of 32): every symmetry must keep
    # it there (a plain flip of an even stamp moves it to 15), and map a point 2 pixels to its
    # right onto the 4 points 2 pixels away along the axes
    c = size // 2
    x = np.zeros((1, size, size), np.float32)
    x[0, c, c] = 1.0
    x[0, c, (c + 2) % size] = 2.0
    seen = set()
    for k in range(8):
        y = np.asarray(square_symmetry(x, k))[0]
        assert y[c, c] == 1.0, k
        (py, px), = np.argwhere(y == 2.0)
        assert abs(py - c) + abs(px - c) == 2 and (py == c or px == c), (k, py, px)
        seen.add((int(py), int(px)))
    assert len(seen) == 4


def test_model_and_image_conversions_round_trip():
    u8 = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    x = to_model(u8)
    assert x.shape == (3, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert np.allclose(to_image(x) * 255, u8, atol=1e-3)


def test_downsample_is_an_area_mean():
    a = np.zeros((1, 4, 4, 3), np.uint8)
    a[0, :2, :2] = 200
    a[0, 2:, 2:] = 100
    out = downsample(a, 2)
    assert out.shape == (1, 2, 2, 3)
    assert out[0, 0, 0, 0] == 200 and out[0, 1, 1, 0] == 100 and out[0, 0, 1, 0] == 0
    with pytest.raises(ValueError):
        downsample(a, 3)


def _small_galaxy10(path: Path, n: int = 6) -> bytes:
    import h5py

    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=rng.integers(0, 256, (n, 256, 256, 3), dtype=np.uint8), compression="gzip")
        f.create_dataset("ans", data=np.arange(n) % 10)
    return path.read_bytes()


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root, hits
    server.shutdown()
    server.server_close()


def test_galaxy10_processor_downloads_downsamples_once_and_works_offline(served, monkeypatch):
    base, root, hits = served
    payload = _small_galaxy10(root / "Galaxy10_DECals.h5")
    digest = hashlib.sha256(payload).hexdigest()
    md = ModuleData("astro", "workshop_astro",
                    (DataEntry("Galaxy10_DECals.h5", sha256=digest, url=f"{base}/Galaxy10_DECals.h5"),))
    monkeypatch.setenv("WORKSHOP_OFFLINE", "1")
    with pytest.raises(DataMissing, match="workshop fetch astro"):
        md.fetch("Galaxy10_DECals.h5", processor=galaxy10_processor(32))
    monkeypatch.delenv("WORKSHOP_OFFLINE")
    out = md.fetch("Galaxy10_DECals.h5", processor=galaxy10_processor(32), progress=False)
    assert out.name == "Galaxy10_DECals.32px.npz" and len(hits) == 1
    data = load_stamps(out)
    assert data.train.shape[1:] == (3, 32, 32) and len(data.train) + len(data.test) == 6 and len(data.test) >= 1
    # the processed values are the 8x8 block means of the original images
    import h5py

    with h5py.File(root / "Galaxy10_DECals.h5") as f, np.load(out) as z:
        full = f["images"][:].astype(np.float64)
        expect = np.rint(full.reshape(6, 32, 8, 32, 8, 3).mean(axis=(2, 4)))
        got = np.concatenate([z["train"], z["test"]])
        labels = np.concatenate([z["train_labels"], z["test_labels"]])
    assert sorted(labels.tolist()) == list(range(6))
    assert sorted(map(bytes, got)) == sorted(map(bytes, expect.astype(np.uint8)))
    # offline, with the file cached: no request, and the processed file is reused as is
    mtime = out.stat().st_mtime_ns
    monkeypatch.setenv("WORKSHOP_OFFLINE", "1")
    again = md.fetch("Galaxy10_DECals.h5", processor=galaxy10_processor(32))
    assert again == out and out.stat().st_mtime_ns == mtime and len(hits) == 1
