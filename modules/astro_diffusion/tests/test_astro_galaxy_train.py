"""Training: the loss decreases, planning to a budget, atomic checkpoints, exact resume, sharding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workshop_astro.edm import EDMDenoiser, edm_loss
from workshop_astro.galaxies import channel_stats, square_symmetry
from workshop_astro.sde import VPSDE
from workshop_astro.train import (
    CheckpointError, Plan, RunProgress, TrainConfig, _cached_train_step, _replicated, check_resumable, crop_steps,
    data_mesh, init_state, learning_rate, load_checkpoint, make_train_step, noise_prediction_loss,
    read_checkpoint_meta, resume_message, run_steps, save_checkpoint, train,
)
from workshop_astro.unet import UNetConfig, pixel_coordinates

SMALL = UNetConfig(channels=8, mults=(1, 2), attention_levels=(), time_dim=16)


def _data(n=16, seed=0):
    # centred Gaussian blobs of random width and brightness, on a dark background
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:16, 0:16] - 7.5
    w = rng.uniform(1.5, 4, n)[:, None, None]
    a = rng.uniform(0.5, 1.5, n)[:, None, None]
    blob = a * np.exp(-(yy**2 + xx**2) / (2 * w**2))
    return np.clip(np.repeat(blob[:, None], 3, axis=1) * 2 - 1, -1, 1).astype(np.float32)


# one compiled step shared by the loop tests (the plain noise-prediction recipe)
CFG = TrainConfig(batch_size=8, warmup_steps=2, peak_lr=3e-3, recipe="eps")


def test_training_steps_decrease_the_loss():
    data = _data()
    probe = eqx.filter_jit(lambda m: noise_prediction_loss(m, VPSDE(), jnp.asarray(data), jax.random.key(123)))
    before = float(probe(init_state(SMALL, CFG).model))  # fixed times and noise
    r = train(data, SMALL, CFG, max_steps=40, progress=False)
    after = float(probe(r.model))
    assert r.steps_done == 40 and len(r.losses) == 40
    assert after < 0.8 * before, (before, after)
    assert np.mean(r.losses[-10:]) < np.mean(r.losses[:5])
    # the EMA moved away from the initial weights
    assert float(jnp.abs(r.ema.stem.weight - init_state(SMALL, CFG).model.stem.weight).max()) > 0


def test_run_steps_alone_takes_a_few_compiled_steps():
    # the step compiled by the test above (cached per process), on inputs placed as train()
    # places them (the same shardings): nothing compiles here
    mesh = data_mesh()
    progress = RunProgress(_replicated(init_state(SMALL, CFG), mesh), plan=Plan(3, 1, CFG.peak_lr, CFG.min_lr_ratio, 0.1))
    before = np.asarray(progress.state.model.stem.weight)
    step_fn = _cached_train_step(VPSDE(), CFG, mesh)
    assert run_steps(step_fn, progress, _replicated(jnp.asarray(_data()), mesh)) == "planned"
    assert int(progress.state.step) == 3 and len(progress.losses) == 3 and np.isfinite(progress.losses).all()
    assert not np.allclose(np.asarray(progress.state.model.stem.weight), before)


def test_edm_recipe_decreases_its_loss_on_standardised_data():
    data = channel_stats(_data()).standardise(_data())
    cfg = TrainConfig(batch_size=8, warmup_steps=2, peak_lr=3e-3)
    assert cfg.recipe == "edm"  # the default
    probe = eqx.filter_jit(lambda m: edm_loss(m, jnp.asarray(data), jax.random.key(123)))
    start = init_state(SMALL, cfg).model
    assert isinstance(start, EDMDenoiser)
    r = train(data, SMALL, cfg, max_steps=30, progress=False)
    before, after = float(probe(start)), float(probe(r.model))
    assert np.isfinite(r.losses).all() and after < 0.95 * before, (before, after)


def test_unknown_recipe_is_refused():
    with pytest.raises(ValueError, match="recipe must be one of"):
        TrainConfig(recipe="ddpm")


def test_learning_rate_schedule():
    plan = Plan(total_steps=100, warmup_steps=10, peak_lr=1e-3, min_lr_ratio=0.1)
    lrs = np.array([learning_rate(s, plan) for s in range(100)])
    assert np.isclose(lrs[9], 1e-3) and lrs[0] < lrs[5] < lrs[9]
    assert np.all(np.diff(lrs[10:]) <= 1e-12) and np.isclose(lrs[-1], 1e-4, rtol=0.05)


def _saved(tmp_path, cfg=TrainConfig(batch_size=4), state=None, name="c.eqx"):
    state = init_state(SMALL, cfg) if state is None else state
    meta = {"unet": SMALL.as_dict(), "train": cfg.__dict__, "plan": None, "losses": [1.0]}
    return save_checkpoint(tmp_path / name, state, meta), state


def test_checkpoint_is_atomic_and_round_trips_with_its_hash(tmp_path):
    p, state = _saved(tmp_path)
    assert [f.name for f in tmp_path.iterdir()] == ["c.eqx"]  # no temporary file left behind
    back, meta = load_checkpoint(p)
    assert meta["losses"] == [1.0] and len(meta["sha256"]) == 64 and meta["payload_bytes"] > 0
    for a, b in zip(jax.tree_util.tree_leaves(eqx.filter(state, eqx.is_array)), jax.tree_util.tree_leaves(eqx.filter(back, eqx.is_array))):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_truncated_altered_and_foreign_checkpoints_are_refused_by_name(tmp_path):
    p, _ = _saved(tmp_path)
    blob = p.read_bytes()
    p.write_bytes(blob[:-100])  # truncated weights
    with pytest.raises(CheckpointError, match=r"damaged.*truncated or altered.*delete") as e:
        load_checkpoint(p)
    assert str(p) in str(e.value)
    p.write_bytes(blob[:40])  # truncated inside the header
    with pytest.raises(CheckpointError, match="header cannot be read"):
        load_checkpoint(p)
    flipped = bytearray(blob)
    flipped[-5] ^= 0xFF  # one altered byte: same length, other sha256
    p.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="sha256 differs"):
        load_checkpoint(p)
    p.write_bytes(b"PK\x03\x04 something else entirely")
    with pytest.raises(CheckpointError, match=r"not a workshop_astro training checkpoint.*--out"):
        read_checkpoint_meta(p)
    p.write_bytes(b"WSASTRO1" + blob[8:])  # the previous format
    with pytest.raises(CheckpointError, match="older format"):
        load_checkpoint(p)


def test_a_checkpoint_with_nan_weights_is_not_resumed(tmp_path):
    cfg = TrainConfig(batch_size=4)
    state = init_state(SMALL, cfg)
    bad = eqx.tree_at(lambda s: s.model.net.stem.bias, state, state.model.net.stem.bias.at[0].set(jnp.nan))
    p, _ = _saved(tmp_path, cfg, bad)
    with pytest.raises(CheckpointError, match=r"NaN or infinite.*diverged.*peak_lr") as e:
        load_checkpoint(p)
    assert str(p) in str(e.value)


def test_other_network_or_recipe_is_refused_before_anything_is_compiled(tmp_path):
    p, _ = _saved(tmp_path)  # SMALL, recipe edm, batch 4
    meta = read_checkpoint_meta(p)
    check_resumable(p, meta, SMALL, TrainConfig(batch_size=4))  # the same run: fine
    with pytest.raises(CheckpointError, match=r"train.recipe edm in the file, eps now.*delete"):
        check_resumable(p, meta, SMALL, TrainConfig(batch_size=4, recipe="eps"))
    other = UNetConfig(channels=16, mults=(1, 2), attention_levels=(), time_dim=16)
    with pytest.raises(CheckpointError, match=r"another preset\?\): unet.channels 8 in the file, 16 now") as e:
        train(_data(), other, TrainConfig(batch_size=4), max_steps=2, progress=False, checkpoint=p)
    assert str(p) in str(e.value)


def test_resume_message_says_whether_the_plan_is_kept():
    plan = Plan(total_steps=100, warmup_steps=10, peak_lr=1e-3, min_lr_ratio=0.1)
    longer = resume_message("c.eqx", 40, plan, 300.0, 600.0, None)
    assert "resuming c.eqx at step 40 of its plan of 100 steps" in longer
    assert "kept, not extended" in longer and "300 s" in longer and "\n" not in longer
    assert "kept, not extended" in resume_message("c.eqx", 40, plan, None, None, 200)
    assert "not extended" not in resume_message("c.eqx", 40, plan, 300.0, 300.0, None)
    assert "complete, nothing left" in resume_message("c.eqx", 100, plan, 300.0, 600.0, None)


def test_interrupt_saves_and_resume_is_exact(tmp_path, capsys):
    data = _data()
    cfg = CFG
    full = train(data, SMALL, cfg, max_steps=8, progress=False, checkpoint=tmp_path / "full.eqx")

    def interrupt(step, loss):
        if step == 5:
            raise KeyboardInterrupt

    ck = tmp_path / "run.eqx"
    with pytest.raises(KeyboardInterrupt):
        train(data, SMALL, cfg, max_steps=8, progress=False, checkpoint=ck, callback=interrupt)
    meta = read_checkpoint_meta(ck)
    assert meta["stopped"] == "interrupted" and len(meta["losses"]) == 5
    resumed = train(data, SMALL, cfg, max_steps=8, progress=False, checkpoint=ck)
    assert resumed.resumed_from == 5 and resumed.steps_done == 8
    assert read_checkpoint_meta(ck)["plan"]["total_steps"] == 8
    assert np.allclose(resumed.losses, full.losses, rtol=1e-6, atol=1e-7)
    # a longer run asked of a finished checkpoint keeps its plan and says so in one line
    capsys.readouterr()
    again = train(data, SMALL, cfg, max_steps=12, progress=False, checkpoint=tmp_path / "full.eqx")
    said = capsys.readouterr().out.strip().splitlines()
    assert again.steps_done == 8 and len(said) == 1 and "complete, nothing left to train" in said[0]
    for a, b in zip(jax.tree_util.tree_leaves(eqx.filter(full.ema, eqx.is_array)),
                    jax.tree_util.tree_leaves(eqx.filter(resumed.ema, eqx.is_array))):
        assert np.allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_budget_plans_the_steps_and_stops_in_time():
    import time

    data = _data()
    cfg = CFG
    train(data, SMALL, cfg, max_steps=1, progress=False)  # compile once (cached per process)
    t0 = time.monotonic()
    r = train(data, SMALL, cfg, budget_s=8.0, progress=False)
    took = time.monotonic() - t0
    assert r.plan.step_time_s and r.plan.total_steps >= 4 and r.steps_done >= 4
    assert took < 8.0 + 3 * r.step_time_s + 1.0  # at most a step or so past the deadline
    assert r.steps_done == len(r.losses)


def test_data_parallel_over_four_host_devices(tmp_path):
    code = textwrap.dedent(
        """
        import json, numpy as np, jax
        from workshop_astro.train import TrainConfig, init_state, make_train_step, data_mesh, train
        from workshop_astro.sde import VPSDE
        from workshop_astro.unet import UNetConfig
        import jax.numpy as jnp
        from jax.sharding import NamedSharding, PartitionSpec as P
        cfg_u = UNetConfig(channels=8, mults=(1, 2), attention_levels=(), time_dim=16)
        rng = np.random.default_rng(0)
        data = np.clip(rng.normal(-0.5, 0.3, (16, 3, 16, 16)), -1, 1).astype(np.float32)
        out = {"devices": jax.device_count()}
        for name, devs in (("four", jax.devices()), ("one", jax.devices()[:1])):
            r = train(data, cfg_u, TrainConfig(batch_size=8), max_steps=3, progress=False, mesh=data_mesh(devs))
            out[name] = r.losses
            out[name + "_devices"] = len(r.model.net.stem.weight.sharding.device_set)
            # every second step on 8 crops of 8x8, split over the devices like the whole stamps
            crops = TrainConfig(batch_size=8, crop_every=2, crop_size=8, crop_batch=8)
            r = train(data, UNetConfig(channels=8, mults=(1, 2), attention_levels=(), time_dim=16, coords=True),
                      crops, max_steps=6, progress=False, mesh=data_mesh(devs))
            out[name + "_crops"] = r.losses
        # the batch inside the step is split over the 4 devices
        mesh = data_mesh()
        x = jax.lax.with_sharding_constraint  # noqa
        b = jax.device_put(jnp.zeros((8, 3, 16, 16)), NamedSharding(mesh, P("data")))
        out["shard_shape"] = list(b.addressable_shards[0].data.shape)
        print(json.dumps(out))
        """
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["devices"] == 4 and out["four_devices"] == 4 and out["one_devices"] == 1
    assert out["shard_shape"] == [2, 3, 16, 16]
    # same batches and noise: the sharded run computes the same losses
    assert np.allclose(out["four"], out["one"], rtol=1e-4, atol=1e-5)
    assert len(out["four_crops"]) == 6 and np.allclose(out["four_crops"], out["one_crops"], rtol=1e-4, atol=1e-5)


CROPS = TrainConfig(batch_size=4, warmup_steps=1, crop_every=2, crop_size=8, crop_batch=6)
COORDS = UNetConfig(channels=8, mults=(1, 2), attention_levels=(), time_dim=16, coords=True)


def test_every_second_step_trains_on_crops_with_their_positions():
    data = jnp.asarray(_data())
    whole_only = make_train_step(VPSDE(), TrainConfig(batch_size=4, warmup_steps=1))
    step = make_train_step(VPSDE(), CROPS)
    state = init_state(COORDS, CROPS)
    lr = np.float32(1e-3)
    # step 0 is a whole-stamp step: the same update as without crops
    s1, loss0 = step(state, data, lr)
    ref1, ref_loss0 = whole_only(state, data, lr)
    assert float(loss0) == pytest.approx(float(ref_loss0), rel=1e-6)
    # step 1 trains on 6 crops of 8x8: EDM's loss on the crops the step's key cuts, each with
    # the window of the stamp's position maps
    s2, loss1 = step(s1, data, lr)
    kidx, ksym, kloss, kcrop = jax.random.split(jax.random.fold_in(jax.random.wrap_key_data(s1.key), 1), 4)
    x0 = jax.vmap(square_symmetry)(data[jax.random.randint(kidx, (6,), 0, 16)], jax.random.randint(ksym, (6,), 0, 8))
    corner = jax.random.randint(kcrop, (6, 2), 0, jnp.asarray([9, 9]))
    crops = jnp.stack([x0[i, :, a:a + 8, b:b + 8] for i, (a, b) in enumerate(np.asarray(corner))])
    where = jnp.stack([pixel_coordinates(16)[:, a:a + 8, b:b + 8] for a, b in np.asarray(corner)])
    expected = edm_loss(s1.model, crops, kloss, CROPS.p_mean, CROPS.p_std, where)
    assert float(loss1) == pytest.approx(float(expected), rel=1e-5)
    assert int(s2.step) == 2
    assert not np.allclose(np.asarray(s2.model.net.stem.weight), np.asarray(s1.model.net.stem.weight))


def test_crop_steps_are_counted_from_the_start_of_the_run_also_after_a_resume():
    assert crop_steps(CROPS, 0, 2).tolist() == [False, True]  # the test above: step 0 whole, step 1 crops
    every_third = TrainConfig(batch_size=4, crop_every=3, crop_size=8)
    assert np.flatnonzero(crop_steps(every_third, 0, 9)).tolist() == [2, 5, 8]
    # a run resumed at step 4 goes on with the same steps on crops
    assert crop_steps(every_third, 4, 5).tolist() == [False, True, False, False, True]
    assert not crop_steps(TrainConfig(batch_size=4), 0, 7).any()


def test_crops_need_a_network_that_reads_positions_and_a_size_it_can_halve():
    data = _data()
    with pytest.raises(ValueError, match="coords=True"):
        train(data, SMALL, CROPS, max_steps=2, progress=False)
    with pytest.raises(ValueError, match="smaller than the 16x16"):
        train(data, COORDS, TrainConfig(crop_every=2, crop_size=16), max_steps=2, progress=False)
    with pytest.raises(ValueError, match="multiple of 2"):
        train(data, COORDS, TrainConfig(crop_every=2, crop_size=7), max_steps=2, progress=False)
    with pytest.raises(ValueError, match="at least 2"):
        TrainConfig(crop_every=1)
    with pytest.raises(ValueError, match="recipe='edm'"):
        TrainConfig(crop_every=2, recipe="eps")
    r = train(data, COORDS, CROPS, max_steps=6, progress=False)
    assert r.steps_done == 6 and np.isfinite(r.losses).all()
