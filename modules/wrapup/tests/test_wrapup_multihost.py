"""Real JAX processes on 127.0.0.1 computing a global result together."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from workshop_wrapup import multihost
from workshop_wrapup.multihost import (MultiprocessError, cpu_device_env, example_data, reference_statistics,
                                       rows_of_process, run_multiprocess_demo)


def test_two_processes_compute_the_single_process_answer():
    result = run_multiprocess_demo(num_processes=2, devices_per_process=2, n_rows=32, timeout=240)
    assert result["matches_single_process"], result
    procs = result["processes"]
    assert [p["process_id"] for p in procs] == [0, 1]
    assert all(p["process_count"] == 2 and p["global_devices"] == 4 for p in procs)
    assert all(len(p["local_devices"]) == 2 and p["local_rows"] == 16 for p in procs)
    # The two processes hold different devices and agree exactly with each other.
    assert not set(procs[0]["local_devices"]) & set(procs[1]["local_devices"])
    assert procs[0]["column_means"] == procs[1]["column_means"]
    ref = reference_statistics(example_data(32))
    np.testing.assert_allclose(procs[0]["column_means"], ref["column_means"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(procs[1]["sum_of_squares"], ref["sum_of_squares"], rtol=1e-5)
    # Half the data alone would give a different answer: the result really is global.
    half = reference_statistics(example_data(32)[:16])
    assert abs(half["sum_of_squares"] - procs[0]["sum_of_squares"]) > 1.0


def test_a_failing_process_is_reported_quickly():
    started = time.monotonic()
    with pytest.raises(MultiprocessError, match="exited with code"):
        # 33 rows cannot be split over 2 processes: each worker raises after joining the group.
        run_multiprocess_demo(num_processes=2, devices_per_process=1, n_rows=33, timeout=120)
    assert time.monotonic() - started < 120


def test_a_hung_group_is_stopped_at_the_timeout(monkeypatch):
    # Workers that really hang (sleep far past the timeout), whatever the machine's speed:
    # relying on JAX taking longer than the timeout to start made this test flaky on a warm machine.
    started_procs = []
    real_popen = multihost.subprocess.Popen

    def hanging_popen(cmd, **kwargs):
        proc = real_popen([sys.executable, "-c", "import time; time.sleep(600)"], **kwargs)
        started_procs.append(proc)
        return proc

    monkeypatch.setattr(multihost.subprocess, "Popen", hanging_popen)
    started = time.monotonic()
    with pytest.raises(MultiprocessError, match="did not finish within 2 s"):
        run_multiprocess_demo(num_processes=2, devices_per_process=1, timeout=2)
    assert time.monotonic() - started < 30
    assert len(started_procs) == 2 and all(p.poll() is not None for p in started_procs)  # both were killed


def test_rows_split_evenly_and_environment_sets_device_count():
    assert rows_of_process(64, 1, 2) == slice(32, 64)
    with pytest.raises(ValueError):
        rows_of_process(63, 0, 2)
    env = cpu_device_env(3, base={"XLA_FLAGS": "--xla_force_host_platform_device_count=8 --foo"})
    assert env["XLA_FLAGS"].split() == ["--foo", "--xla_force_host_platform_device_count=3"]
    assert env["JAX_PLATFORMS"] == "cpu"
