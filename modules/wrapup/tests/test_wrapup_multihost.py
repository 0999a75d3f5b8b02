"""Real JAX processes on 127.0.0.1 computing a global result together."""

from __future__ import annotations

import sys
import time

import pytest

from workshop_wrapup import multihost
from workshop_wrapup.multihost import MultiprocessError, cpu_device_env, rows_of_process, run_multiprocess_demo


# Two workers that agree with the single-process answer: asserted in test_wrapup_demo.py on
# the tour's multi-process run (the same run_multiprocess_demo, 2 processes x 2 devices),
# so that CI starts those JAX processes once.


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
