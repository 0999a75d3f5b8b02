"""Fault catalogue of the astro module: every bad input is refused with a message that
names the problem (file, array, argument, value) and the fix, and nothing the user had is
lost. Everything here fails before any JAX compilation."""

from __future__ import annotations

import json

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workshop.cli import EXIT_PROBLEM, reported_errors
from workshop.data import DataError
from workshop_astro import dsm, evaluate, likelihood, reconstruct, sampling, toy
from workshop_astro.fewstep import model_score
from workshop_astro.galaxies import StampsError, downsample, galaxy10_processor, load_stamps, save_stamps, to_model
from workshop_astro.pretrained import PretrainedFileError, export_pretrained, load_pretrained, write_tree_file
from workshop_astro.sde import VESDE, VPSDE, forward_simulate
from workshop_astro.unet import UNetConfig, init_unet

RNG = np.random.default_rng(0)
PIXELS = RNG.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)


def _stamps(path, train, test=PIXELS, meta=b'{"size": 8}'):
    arrays = {"train": train, "meta": np.frombuffer(meta, np.uint8)}
    if test is not None:
        arrays["test"] = test
    np.savez(path, **arrays)
    return path


# --- stamps and image arrays: (train array, expected words) --------------------------------

STAMP_FAULTS = {
    "channels first": (np.moveaxis(PIXELS, -1, 1), ["shape (4, 3, 8, 8): channels first", "np.moveaxis(x, 1, -1)"]),
    "grey (N, H, W)": (PIXELS[..., 0], ["grey images", "np.repeat"]),
    "grey (N, H, W, 1)": (PIXELS[..., :1], ["grey images", "RGB"]),
    "floats in [0, 1]": (PIXELS / 255.0, ["float64 values in [0, 1]", "np.round(x * 255).astype(np.uint8)"]),
    "floats 0..255": (PIXELS.astype(np.float32), ["float32 values 0..255", "x.astype(np.uint8)"]),
    "signed values": (PIXELS.astype(np.int16) - 128, ["int16 values (range -128..127)", "uint8 (N, H, W, 3)"]),
    "not square": (PIXELS[:, :6], ["6x8 images", "square"]),
    "four channels": (np.concatenate([PIXELS, PIXELS[..., :1]], -1), ["4 channels", "uint8 (N, H, W, 3)"]),
    "no images": (PIXELS[:0], ["'train' holds no images"]),
}


@pytest.mark.parametrize("case", list(STAMP_FAULTS))
def test_load_stamps_refuses(tmp_path, case):
    train, words = STAMP_FAULTS[case]
    path = _stamps(tmp_path / "stamps.npz", train)
    before = path.read_bytes()
    with pytest.raises(StampsError) as exc:
        load_stamps(path)
    assert str(path) in str(exc.value)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))
    assert path.read_bytes() == before
    assert isinstance(exc.value, DataError)  # `workshop run` reports it as a data problem, without a traceback


@pytest.mark.parametrize("make,words", [
    (lambda p: _stamps(p, PIXELS, test=None), ["no 'test' array", "its arrays: train, meta", "save_stamps"]),
    (lambda p: p.write_text("x,y\n1,2\n"), ["is not an .npz of images"]),
    (lambda p: p.write_bytes(_stamps(p, PIXELS).read_bytes()[:300]), ["cannot be read", "truncated"]),
    (lambda p: _stamps(p, PIXELS, test=RNG.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)),
     ["'train' images are (8, 8, 3), 'test' images (16, 16, 3)"]),
    (lambda p: _stamps(p, PIXELS, meta=b"{size"), ["'meta' is not JSON"]),
    (lambda p: None, ["no such stamps file"]),
])
def test_load_stamps_refuses_files(tmp_path, make, words):
    path = tmp_path / "stamps.npz"
    make(path)
    with pytest.raises(StampsError) as exc:
        load_stamps(path)
    assert all(w in str(exc.value) for w in words), str(exc.value)


def test_stamps_round_trip_still_works(tmp_path):
    path = tmp_path / "stamps.npz"
    save_stamps(path, dict(train=PIXELS, test=PIXELS[:2], meta={"size": 8}))
    data = load_stamps(path)
    assert data.train.shape == (4, 3, 8, 8) and data.meta == {"size": 8}
    assert np.allclose(data.train, np.moveaxis(PIXELS, -1, 1) / 127.5 - 1, atol=1e-6)


def test_to_model_refuses_what_it_would_rescale_wrongly():
    with pytest.raises(ValueError, match="channels first"):
        to_model(np.moveaxis(PIXELS, -1, 1))
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        to_model(PIXELS / 255.0)
    with pytest.raises(ValueError, match="downsample takes square images"):
        downsample(PIXELS[:, :6], 2)


@pytest.mark.parametrize("write,words", [
    (lambda f: f.create_dataset("images", data=np.moveaxis(np.repeat(PIXELS, 2, 1).repeat(2, 2), -1, 1)),
     ["channels first", "delete"]),
    (lambda f: f.create_dataset("images", data=np.repeat(PIXELS, 2, 1).repeat(2, 2) / 255.0),
     ["values in [0, 1]", "fetch it again"]),
    (lambda f: f.create_dataset("pictures", data=PIXELS), ["no 'images' dataset (it has pictures)"]),
    (lambda f: (f.create_dataset("images", data=PIXELS), f.create_dataset("ans", data=np.arange(3))),
     ["'ans' holds (3,) labels for 4 images"]),
])
def test_galaxy10_processor_refuses_and_writes_nothing(tmp_path, write, words):
    src = tmp_path / "Galaxy10_DECals.h5"
    with h5py.File(src, "w") as f:
        write(f)
    with pytest.raises(StampsError) as exc:
        galaxy10_processor(4)(str(src), "download")
    assert all(w in str(exc.value) for w in words), str(exc.value)
    assert not (tmp_path / "Galaxy10_DECals.4px.npz").exists()


# --- the pretrained model file -----------------------------------------------------------

TINY = UNetConfig(channels=8, mults=(1, 2), attention_levels=(), time_dim=16)


@pytest.fixture(scope="module")
def unet():
    return init_unet(TINY)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, unet):
    path = tmp_path_factory.mktemp("pre") / "model.eqx"
    export_pretrained(unet, path, {"steps": 1})
    return path


def _nan_unet(unet, dtype=np.float32):
    """``unet`` with every weight NaN, as NumPy arrays (no JAX work per leaf)."""
    return jax.tree_util.tree_map(lambda x: np.full(x.shape, np.nan, dtype) if eqx_float(x) else x, unet)


def _pretrained_faults(exported, unet):
    data = exported.read_bytes()
    header_end = 16 + int.from_bytes(data[8:16], "little")
    return {
        "missing": (None, "no such pretrained model file"),
        "a protein model file": (b"PK\x03\x04" + data[4:], "starts with b'PK\\x03\\x04"),
        "a CSV": (b"sequence,label\nMKV,1\n", "is not a workshop_astro pretrained model"),
        "truncated header": (data[: header_end - 10], "its header cannot be read"),
        "truncated weights": (data[: (header_end + len(data)) // 2], "its weights cannot be read"),
        "bytes after the weights": (data + b"\x00" * 64, "64 bytes are left after the weights"),
        "header without config": (None, "no valid U-Net config"),
        "NaN weights": (None, "are NaN or infinite"),
        "unknown recipe": (None, "names the training recipe 'flow'"),
        "edm without sigma_data": (None, "sigma_data None is not a positive number"),
        "damaged channel stats": (None, "channel_stats"),
    }


@pytest.mark.parametrize("case", ["missing", "a protein model file", "a CSV", "truncated header", "truncated weights",
                                  "bytes after the weights", "header without config", "NaN weights", "unknown recipe",
                                  "edm without sigma_data", "damaged channel stats"])
def test_load_pretrained_refuses(tmp_path, exported, unet, case):
    content, words = _pretrained_faults(exported, unet)[case]
    path = tmp_path / "model.eqx"
    if content is not None:
        path.write_bytes(content)
    elif case == "header without config":
        write_tree_file(path, b"WSUNET01", json.dumps({"dtype": "bfloat16"}).encode(), unet)
    elif case == "NaN weights":
        write_tree_file(path, b"WSUNET01", json.dumps({"config": TINY.as_dict()}).encode(),
                        _nan_unet(unet, jnp.bfloat16))
    elif case in ("unknown recipe", "edm without sigma_data", "damaged channel stats"):
        header = {"config": TINY.as_dict(), "recipe": "flow" if case == "unknown recipe" else "edm", "sigma_data": 1.0}
        if case == "edm without sigma_data":
            del header["sigma_data"]
        if case == "damaged channel stats":
            header["channel_stats"] = {"mean": [0.0, 0.0, 0.0], "std": [0.2, -1.0, 0.3]}
        write_tree_file(path, b"WSUNET01", json.dumps(header).encode(), jax.tree_util.tree_map(
            lambda x: x.astype(jnp.bfloat16) if eqx_float(x) else x, unet))
    before = path.read_bytes() if path.exists() else None
    with pytest.raises(PretrainedFileError) as exc:
        load_pretrained(path)
    assert words in str(exc.value) and str(path) in str(exc.value), str(exc.value)
    if case != "missing":
        assert "delete" in str(exc.value) and "workshop fetch astro" in str(exc.value)
        assert path.read_bytes() == before
    assert isinstance(exc.value, DataError) and isinstance(exc.value, ValueError)


def eqx_float(x):
    return isinstance(x, jax.Array) and x.dtype.kind == "f"


def test_an_edm_model_and_its_channel_stats_round_trip(tmp_path, unet):
    from workshop_astro.edm import EDMDenoiser
    from workshop_astro.galaxies import ChannelStats
    from workshop_astro.pretrained import pretrained_stats

    stats = ChannelStats(mean=(-0.8, -0.7, -0.9), std=(0.2, 0.25, 0.3))
    path = tmp_path / "edm.eqx"
    export_pretrained(EDMDenoiser(unet, sigma_data=0.5), path, {"steps": 3}, stats=stats)
    model, header = load_pretrained(path)
    assert isinstance(model, EDMDenoiser) and model.sigma_data == 0.5 and header["recipe"] == "edm"
    got = pretrained_stats(header)
    np.testing.assert_allclose(got.mean, stats.mean)
    np.testing.assert_allclose(got.std, stats.std)
    x = jnp.full((3, 16, 16), 0.1)
    want = EDMDenoiser(jax.tree_util.tree_map(lambda a: a.astype(jnp.bfloat16).astype(jnp.float32) if eqx_float(a) else a,
                                              unet), sigma_data=0.5)(x, 0.5)
    np.testing.assert_allclose(np.asarray(model(x, 0.5)), np.asarray(want), atol=1e-5)
    export_pretrained(unet, tmp_path / "plain.eqx", {})
    plain, header = load_pretrained(tmp_path / "plain.eqx")
    assert not isinstance(plain, EDMDenoiser) and pretrained_stats(header) is None and header["recipe"] == "eps"


def test_export_refuses_nan_weights_and_keeps_the_file(exported, unet):
    before = exported.read_bytes()
    with pytest.raises(PretrainedFileError, match="not written, the model has NaN or infinite weights"):
        export_pretrained(_nan_unet(unet), exported, {"steps": 2})
    assert exported.read_bytes() == before
    model, header = load_pretrained(exported)
    assert header["info"] == {"steps": 1} and model.config == TINY


def test_a_damaged_model_in_a_demo_is_a_data_problem_without_traceback(tmp_path, capsys):
    path = tmp_path / "unet64_hdf.eqx"
    path.write_bytes(b"WSUNET01" + (5).to_bytes(8, "little") + b"{conf")
    with pytest.raises(SystemExit) as exit_:
        with reported_errors("The demo astro generate"):
            load_pretrained(path)
    err = capsys.readouterr().err
    assert exit_.value.code == EXIT_PROBLEM
    assert "data problem: " in err and "Traceback" not in err and "header cannot be read" in err


# --- numerical APIs: (call, exception type, words) ----------------------------------------

SDE = VPSDE()


def _score(x, t):
    return -x


def _guard_cases(unet):
    deg = reconstruct.Degradation.make((3, 8, 8), fwhm=2.0, noise_std=0.1, missing=0.1)
    y = jnp.zeros((3, 8, 8))
    key = jax.random.key(0)
    unet_score = model_score(unet, SDE) if unet is not None else None
    return {
        "reverse_sde_sample n_steps 0": (lambda: sampling.reverse_sde_sample(SDE, _score, key, (4, 2), n_steps=0),
                                         ValueError, "n_steps must be at least 1, got 0"),
        "reverse_sde_sample n_steps 2.0": (lambda: sampling.reverse_sde_sample(SDE, _score, key, (4, 2), n_steps=2.0),
                                           TypeError, "n_steps must be a whole number"),
        "reverse_sde_sample t_eps 0": (lambda: sampling.reverse_sde_sample(SDE, _score, key, (4, 2), t_eps=0.0),
                                       ValueError, "t_eps must be a finite number > 0, got 0.0"),
        "reverse_sde_sample t_eps past T": (lambda: sampling.reverse_sde_sample(SDE, _score, key, (4, 2), t_eps=1.5),
                                            ValueError, "t_eps must be below the SDE's end time T = 1, got 1.5"),
        "reverse_sde_sample no samples": (lambda: sampling.reverse_sde_sample(SDE, _score, key, (0, 2)),
                                          ValueError, "shape[0] must be at least 1, got 0"),
        "reverse_sde_sample shape an int": (lambda: sampling.reverse_sde_sample(SDE, _score, key, 16),
                                            TypeError, "shape must be a tuple (batch, *sample_shape)"),
        "reverse_sde_sample integer x_init": (lambda: sampling.reverse_sde_sample(SDE, _score, key, None,
                                                                                  x_init=jnp.ones((4, 2), jnp.int32)),
                                              TypeError, "x_init must hold floating-point values"),
        "reverse_sde_sample unknown solver": (lambda: sampling.reverse_sde_sample(SDE, _score, key, (4, 2),
                                                                                  solver=object()),
                                              ValueError, "count the score evaluations per step of object"),
        "U-Net: 9x9 images": (lambda: sampling.reverse_sde_sample(SDE, unet_score, key, (2, 3, 9, 9), n_steps=2),
                              ValueError, "cannot take 9x9 images: height and width must be multiples of 2"),
        "U-Net: grey images": (lambda: sampling.probability_flow_sample(SDE, unet_score, key, (2, 1, 8, 8)),
                               ValueError, "takes 3-channel images, the samples would have 1"),
        "probability_flow_sample rtol 0": (lambda: sampling.probability_flow_sample(SDE, _score, key, (4, 2), rtol=0),
                                           ValueError, "rtol must be a finite number > 0, got 0"),
        "probability_flow_sample max_steps 0": (lambda: sampling.probability_flow_sample(SDE, _score, key, (4, 2),
                                                                                         max_steps=0),
                                                ValueError, "max_steps must be at least 1, got 0"),
        "posterior_sample n_samples 0": (lambda: reconstruct.posterior_sample(SDE, _score, deg, y, key, n_samples=0),
                                         ValueError, "n_samples must be at least 1, got 0"),
        "posterior_sample n_steps -5": (lambda: reconstruct.posterior_sample(SDE, _score, deg, y, key, n_steps=-5),
                                        ValueError, "n_steps must be at least 1, got -5"),
        "posterior_sample wrong size": (lambda: reconstruct.posterior_sample(SDE, _score, deg, jnp.zeros((3, 16, 16)),
                                                                             key),
                                        ValueError, "y has shape (3, 16, 16), the degradation was made for images"),
        "posterior_sample uint8 observation": (lambda: reconstruct.posterior_sample(SDE, _score, deg,
                                                                                    np.zeros((3, 8, 8), np.uint8), key),
                                               TypeError, "convert with galaxies.to_model"),
        "posterior_sample a batch": (lambda: reconstruct.posterior_sample(SDE, _score, deg, jnp.zeros((2, 3, 8, 8)),
                                                                          key),
                                     ValueError, "y must have 3 axes"),
        "Degradation missing 1.0": (lambda: reconstruct.Degradation.make((3, 8, 8), fwhm=2.0, noise_std=0.1,
                                                                         missing=1.0),
                                    ValueError, "missing must be the fraction of lost pixels, in [0, 1), got 1.0"),
        "Degradation fwhm 0": (lambda: reconstruct.Degradation.make((3, 8, 8), fwhm=0.0, noise_std=0.1, missing=0.1),
                               ValueError, "fwhm must be a finite number > 0"),
        "Degradation batch shape": (lambda: reconstruct.Degradation.make((2, 3, 8, 8), fwhm=1.0, noise_std=0.1,
                                                                         missing=0.1),
                                    ValueError, "shape must be one image's (C, H, W)"),
        "richardson_lucy n_iter 0": (lambda: reconstruct.richardson_lucy(y, deg, n_iter=0), ValueError,
                                     "n_iter must be at least 1, got 0"),
        "wiener power of another size": (lambda: reconstruct.wiener(y, deg, np.ones((16, 16))), ValueError,
                                         "signal_power must be the (H, W) = (8, 8) power spectrum"),
        "VPSDE beta_min above beta_max": (lambda: VPSDE(20.0, 0.1), ValueError,
                                          "beta_min must be below beta_max, got beta_min=20.0, beta_max=0.1"),
        "VPSDE T 0": (lambda: VPSDE(T=0.0), ValueError, "T must be a finite number > 0, got 0.0"),
        "VESDE negative sigma_min": (lambda: VESDE(-0.01), ValueError, "sigma_min must be a finite number > 0"),
        "forward_simulate dt 0": (lambda: forward_simulate(SDE, jnp.zeros(2), key, [0.0, 0.5], dt=0.0), ValueError,
                                  "dt must be a finite number > 0, got 0.0"),
        "sample_times n 0": (lambda: dsm.sample_times(key, 0, 1e-3, 1.0), ValueError, "n must be at least 1, got 0"),
        "dsm_loss integer data": (lambda: dsm.dsm_loss(_score, SDE, jnp.ones((4, 2), jnp.int32), key), TypeError,
                                  "x0_batch must hold floating-point values"),
        "dsm_loss one point, no batch": (lambda: dsm.dsm_loss(_score, SDE, jnp.ones(2), key), ValueError,
                                         "x0_batch must be a batch (batch, ...)"),
        "log_likelihood max_steps 0": (lambda: likelihood.log_likelihood(SDE, _score, jnp.zeros(2), max_steps=0),
                                       ValueError, "max_steps must be at least 1, got 0"),
        "log_likelihood t_eps past T": (lambda: likelihood.log_likelihood(SDE, _score, jnp.zeros(2), t_eps=1.0),
                                        ValueError, "t_eps must be below the SDE's end time"),
        "log_likelihood uint8 image": (lambda: likelihood.log_likelihood(SDE, _score, PIXELS[0]), TypeError,
                                       "x must hold floating-point values"),
        "swiss_roll n 0": (lambda: toy.swiss_roll(key, 0), ValueError, "n must be at least 1, got 0"),
        "moons n 2.5": (lambda: toy.moons(key, 2.5), TypeError, "n must be a whole number"),
        "moons negative noise": (lambda: toy.moons(key, 10, noise=-0.1), ValueError,
                                 "noise must be a finite number >= 0, got -0.1"),
        "sample_dataset n -1": (lambda: toy.sample_dataset("moons", key, -1), ValueError,
                                "n must be at least 1, got -1"),
    }


@pytest.fixture(scope="module")
def guard_cases(unet):
    return _guard_cases(unet)


@pytest.mark.parametrize("case", list(_guard_cases(None)))
def test_numerical_api_refuses(guard_cases, case):
    call, kind, words = guard_cases[case]
    with pytest.raises(kind) as exc:
        call()
    assert words in str(exc.value), str(exc.value)


IMAGES = to_model(PIXELS)


@pytest.mark.parametrize("generated,train,test,words", [
    (IMAGES, np.moveaxis(IMAGES, 1, -1), IMAGES, "train has shape (4, 8, 8, 3): channels last"),
    (IMAGES, IMAGES, IMAGES * 0.5 + 0.5, "test lies in [0, 1]"),
    (IMAGES, IMAGES, (IMAGES + 1) * 127.5, "test ranges over 0..255"),
    (IMAGES, IMAGES[:, :1], IMAGES, "train has 1 channels"),
    (IMAGES[:1], IMAGES, IMAGES, "generated holds 1 image(s)"),
    (IMAGES[:, :, :4, :4], IMAGES, IMAGES, "must be images of one size"),
    (PIXELS, IMAGES, IMAGES, "generated must hold floating-point values"),
])
def test_compare_refuses_images_it_would_misread(generated, train, test, words):
    with pytest.raises((ValueError, TypeError)) as exc:
        evaluate.compare(generated, train, test)
    assert words in str(exc.value), str(exc.value)
