"""Beyond one machine: several JAX processes computing one result with ``jax.distributed``.

On a cluster every host runs the *same* program. Each calls
``jax.distributed.initialize(coordinator_address, num_processes, process_id)`` before
anything else touches JAX; process 0 also runs the coordinator service at that address,
and the others connect to it. Afterwards ``jax.devices()`` lists the devices of *every*
process (``jax.local_devices()`` only this one's), a :class:`~jax.sharding.Mesh` can span
them all, and a jitted computation on a global array runs on all processes at once, with
collectives crossing the network (on CPU through the Gloo library, JAX's default
``jax_cpu_collectives_implementation``). Each process feeds only its own rows of the data.

:func:`run_multiprocess_demo` does this for real on one computer: it starts two Python
processes (``python -m workshop_wrapup.multihost_worker``) that talk over 127.0.0.1, each
with its own CPU devices, and checks that the global statistics they compute together
equal the single-process answer.

Example::

    >>> result = run_multiprocess_demo(num_processes=2, devices_per_process=2)
    >>> result["matches_single_process"]
    True
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time

import numpy as np


class MultiprocessError(RuntimeError):
    """The multi-process demo failed; the message carries each process's last words."""


def example_data(n_rows: int = 64, n_cols: int = 4, seed: int = 0) -> np.ndarray:
    """The global data set (stand-in for e.g. per-galaxy measurements): ``(n_rows, n_cols)`` float32."""
    return np.random.default_rng(seed).normal(loc=1.0, scale=2.0, size=(n_rows, n_cols)).astype(np.float32)


def rows_of_process(n_rows: int, process_id: int, num_processes: int) -> slice:
    """The block of rows process ``process_id`` loads: contiguous and equal in size."""
    if n_rows % num_processes:
        raise ValueError(f"{n_rows} rows do not split evenly over {num_processes} processes")
    per = n_rows // num_processes
    return slice(process_id * per, (process_id + 1) * per)


def reference_statistics(data: np.ndarray) -> dict[str, list[float] | float]:
    """What the processes must find together, computed in one process with NumPy (float64)."""
    d = data.astype(np.float64)
    return {"column_means": d.mean(axis=0).tolist(), "sum_of_squares": float((d**2).sum()), "rows": int(d.shape[0])}


def global_statistics(local_rows, mesh) -> dict:
    """Column means and the sum of squares of the global array whose rows are spread over processes.

    Arguments:
        local_rows: this process's rows (NumPy), in process order.
        mesh: a one-axis ``"data"`` mesh over *all* devices of all processes.

    Returns:
        The statistics as Python numbers (identical on every process).
    """
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    rows = NamedSharding(mesh, P("data"))
    # Assemble one global array from every process's local block (no data is copied between hosts).
    x = jax.make_array_from_process_local_data(rows, np.asarray(local_rows))
    stats = jax.jit(lambda a: (jnp.mean(a, axis=0), jnp.sum(a**2)), out_shardings=NamedSharding(mesh, P()))(x)
    means, sumsq = (np.asarray(v.addressable_data(0)) for v in stats)
    return {"column_means": means.tolist(), "sum_of_squares": float(sumsq), "rows": int(x.shape[0])}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody is listening on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_device_env(n_devices: int, base: dict | None = None) -> dict:
    """An environment in which a fresh Python's JAX sees ``n_devices`` CPU devices."""
    env = dict(os.environ if base is None else base)
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", env.get("XLA_FLAGS", "")).strip()
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n_devices}".strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _tail(path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-n:])
    except OSError:
        return ""


def run_multiprocess_demo(num_processes: int = 2, devices_per_process: int = 2, *, n_rows: int = 64,
                          timeout: float = 90.0, seed: int = 0) -> dict:
    """Start ``num_processes`` JAX processes on 127.0.0.1 that compute global statistics together.

    Arguments:
        num_processes: how many processes (hosts, on a real cluster).
        devices_per_process: simulated CPU devices in each process.
        n_rows: rows of the global data set (split evenly over the processes).
        timeout: seconds before every process is killed and :class:`MultiprocessError` raised.
        seed: seed of :func:`example_data`.

    Returns:
        A dict: what each process reported, the single-process reference, the largest
        difference, whether they match, and the wall time.

    The first process to fail stops all of them at once (the others would otherwise wait
    for it until JAX's own timeout), and its error is in the message.
    """
    import tempfile
    from pathlib import Path

    port = free_port()
    coordinator = f"127.0.0.1:{port}"
    env = cpu_device_env(devices_per_process)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wrapup-multihost-") as tmp:
        logs = [(Path(tmp) / f"p{pid}.out", Path(tmp) / f"p{pid}.err") for pid in range(num_processes)]
        procs = []
        try:
            for pid, (out_path, err_path) in enumerate(logs):
                cmd = [sys.executable, "-m", "workshop_wrapup.multihost_worker", "--coordinator", coordinator,
                       "--num-processes", str(num_processes), "--process-id", str(pid), "--rows", str(n_rows),
                       "--seed", str(seed), "--timeout", str(int(timeout))]
                with open(out_path, "w") as out, open(err_path, "w") as err:
                    procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=err))
            while True:
                codes = [p.poll() for p in procs]
                failed = [i for i, c in enumerate(codes) if c not in (None, 0)]
                if failed:
                    i = failed[0]
                    raise MultiprocessError(f"process {i} exited with code {codes[i]}:\n{_tail(logs[i][1])}")
                if all(c == 0 for c in codes):
                    break
                if time.monotonic() - started > timeout:
                    waiting = [i for i, c in enumerate(codes) if c is None]
                    raise MultiprocessError(
                        f"process(es) {waiting} did not finish within {timeout:.0f} s (coordinator {coordinator}); "
                        "all processes were stopped. A firewall blocking 127.0.0.1 or a very busy machine can "
                        f"cause this. Last words of process {waiting[0]}:\n{_tail(logs[waiting[0]][1])}")
                time.sleep(0.1)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        outputs = {pid: (logs[pid][0].read_text(), logs[pid][1].read_text(errors="replace"))
                   for pid in range(num_processes)}
    reports = []
    for pid in range(num_processes):
        lines = [ln for ln in outputs[pid][0].splitlines() if ln.startswith("{")]
        if not lines:
            raise MultiprocessError(f"process {pid} printed no result; its stderr ends with:\n{outputs[pid][1][-2000:]}")
        reports.append(json.loads(lines[-1]))
    reference = reference_statistics(example_data(n_rows, seed=seed))
    diffs = [max(abs(a - b) for a, b in zip(r["column_means"], reference["column_means"])) for r in reports]
    diffs += [abs(r["sum_of_squares"] - reference["sum_of_squares"]) / reference["sum_of_squares"] for r in reports]
    max_diff = float(max(diffs))
    return {
        "coordinator": coordinator,
        "processes": reports,
        "reference": reference,
        "max_difference": max_diff,
        "matches_single_process": bool(max_diff < 1e-5) and all(r["rows"] == n_rows for r in reports),
        "seconds": time.monotonic() - started,
    }
