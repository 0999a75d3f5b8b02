"""Sharded results equal unsharded ones, on 8 simulated CPU devices (in a subprocess,
because the device count is fixed when JAX starts), and the sharding checks judge right."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from workshop_wrapup.multihost import cpu_device_env

EIGHT_DEVICES = textwrap.dedent(r'''
    import json
    import jax, jax.numpy as jnp, numpy as np
    import equinox as eqx
    from jax.sharding import NamedSharding, PartitionSpec as P
    from workshop_wrapup import sharding as S, data_parallel as dp
    from workshop_wrapup import checks
    from workshop.checking import CheckFailed, NotAttempted

    out = {"devices": jax.device_count()}
    mesh = S.data_mesh()
    x = jax.random.normal(jax.random.key(0), (32, 6))
    xs = S.shard_rows(x, mesh)
    out["rows_per_device"] = sorted({s.data.shape[0] for s in xs.addressable_shards})
    out["row_owner"] = S.device_of_each_row(xs)
    out["means_diff"] = float(jnp.max(jnp.abs(S.sharded_column_means(xs, mesh) - x.mean(0))))
    w = jax.random.normal(jax.random.key(1), (6, 3))
    y = S.sharded_matmul(xs, w, mesh)
    out["matmul_diff"] = float(jnp.max(jnp.abs(y - x @ w)))
    out["matmul_spec"] = str(y.sharding.spec)
    ssq = S.sum_of_squares_shard_map(xs, mesh)
    out["ssq_rel_diff"] = float(abs(ssq - jnp.sum(x ** 2)) / jnp.sum(x ** 2))
    z = S.global_standardise_shard_map(xs, mesh)
    out["standardise_diff"] = float(jnp.max(jnp.abs(z - (x - x.mean(0)) / x.std(0))))
    out["collectives_mean"] = S.compiled_collectives(lambda a: a.mean(axis=0), xs)
    out["collectives_matmul"] = S.compiled_collectives(lambda a, b: a @ b, xs, S.replicate(w, mesh))
    out["picture"] = S.sharding_picture(xs)

    # Data-parallel training: the same step on 1 and 8 devices gives the same model.
    images = dp.galaxy_batch(jax.random.key(2), 16, size=12)
    make = lambda: dp.TinyDenoiser(1, 4, key=jax.random.key(3))
    m1, l1, _ = dp.train(make(), images, steps=3, mesh=None, key=jax.random.key(4))
    m8, l8, _ = dp.train(make(), images, steps=3, mesh=S.data_mesh(8), key=jax.random.key(4))
    p1, p8 = (jax.tree_util.tree_leaves(eqx.filter(m, eqx.is_array)) for m in (m1, m8))
    out["train_loss_diff"] = max(abs(a - b) for a, b in zip(l1, l8))
    out["train_param_diff"] = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(p1, p8))
    out["train_loss_decreased"] = l1[-1] < l1[0]
    out["param_sharding_8"] = str(p8[0].sharding.spec)

    # The protein module's fine-tune step, when that module is installed: same mechanics.
    task, out["protein_why"] = dp.protein_finetune_task(8, length=24, key=jax.random.key(5))
    if task is not None:
        rows = dp.throughput_by_devices(task.make_model, task.batch, (1, 8), steps=3, key=jax.random.key(6),
                                        loss_fn=task.loss_fn, lr=task.learning_rate)
        out["protein_losses"] = [r["losses"] for r in rows]

    # The checks: the reference passes, typical mistakes fail.
    def verdict(check, fn):
        try:
            check(fn)
            return "pass"
        except NotAttempted:
            return "not attempted"
        except CheckFailed as exc:
            return "fail: " + exc.message
    def per_device_sums(x, mesh):
        return jax.shard_map(lambda b: jnp.sum(b ** 2).reshape(1), mesh=mesh, in_specs=P("data"), out_specs=P("data"))(x)
    out["verdicts"] = {
        "shard_batch/ref": verdict(checks.shard_batch, lambda b, m: jax.device_put(b, NamedSharding(m, P("data")))),
        "shard_batch/replicated": verdict(checks.shard_batch, lambda b, m: jax.device_put(b, NamedSharding(m, P()))),
        "shard_batch/wrong_axis": verdict(checks.shard_batch, lambda b, m: jax.device_put(b, NamedSharding(m, P(None, None, "data")))),
        "shard_batch/numpy": verdict(checks.shard_batch, lambda b, m: np.asarray(b)),
        "shard_batch/stub": verdict(checks.shard_batch, lambda b, m: None),
        "sum/ref": verdict(checks.sum_of_squares, S.sum_of_squares_shard_map),
        "sum/no_shard_map": verdict(checks.sum_of_squares, lambda x, m: jnp.sum(x ** 2)),
        "sum/per_device": verdict(checks.sum_of_squares, per_device_sums),
        "sum/no_square": verdict(checks.sum_of_squares, lambda x, m: jax.shard_map(
            lambda b: jax.lax.psum(jnp.sum(b), "data"), mesh=m, in_specs=P("data"), out_specs=P())(x)),
        "sum/stub": verdict(checks.sum_of_squares, lambda x, m: None),
    }
    print(json.dumps(out))
''')


@pytest.fixture(scope="module")
def eight():
    proc = subprocess.run([sys.executable, "-c", EIGHT_DEVICES], env=cpu_device_env(8), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_eight_simulated_devices_and_row_layout(eight):
    assert eight["devices"] == 8
    assert eight["rows_per_device"] == [4]
    assert eight["row_owner"] == [i // 4 for i in range(32)]
    assert "CPU 7" in eight["picture"] and "CPU 0" in eight["picture"]


def test_jit_sharded_results_equal_unsharded(eight):
    assert eight["means_diff"] < 1e-6
    assert eight["matmul_diff"] < 1e-5
    assert eight["matmul_spec"] == "P('data',)"
    # The mean over a row-sharded array needs an all-reduce; a row-wise matmul needs none.
    assert eight["collectives_mean"]["all-reduce"] >= 1
    assert sum(eight["collectives_matmul"].values()) == 0


def test_shard_map_equals_unsharded(eight):
    assert eight["ssq_rel_diff"] < 1e-6
    assert eight["standardise_diff"] < 1e-5


def test_data_parallel_training_matches_one_device(eight):
    assert eight["train_loss_decreased"]
    assert eight["train_loss_diff"] < 1e-5
    assert eight["train_param_diff"] < 1e-5
    assert eight["param_sharding_8"] == "P()"  # the model stays replicated


def test_protein_finetune_step_is_data_parallel_too(eight):
    if "protein_losses" not in eight:
        pytest.skip(eight["protein_why"])
    one, many = eight["protein_losses"]
    assert len(one) == len(many) == 3
    assert max(abs(a - b) / abs(a) for a, b in zip(one, many)) < 1e-5


def test_sharding_checks_pass_reference_and_fail_mistakes(eight):
    v = eight["verdicts"]
    assert v["shard_batch/ref"] == "pass"
    assert v["sum/ref"] == "pass"
    for name in ("shard_batch/replicated", "shard_batch/wrong_axis", "shard_batch/numpy",
                 "sum/no_shard_map", "sum/per_device", "sum/no_square"):
        assert v[name].startswith("fail"), (name, v[name])
    assert v["sum/per_device"] == "fail: you returned one partial sum per device, not the global sum"
    assert "shard_map" in v["sum/no_shard_map"]
    assert v["shard_batch/stub"] == "not attempted" and v["sum/stub"] == "not attempted"


def test_mesh_larger_than_device_count_says_how_to_fix():
    import jax

    from workshop_wrapup.sharding import data_mesh

    with pytest.raises(ValueError, match="xla_force_host_platform_device_count"):
        data_mesh(len(jax.devices()) + 1)
