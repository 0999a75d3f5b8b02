"""One process of the multi-process demo: ``python -m workshop_wrapup.multihost_worker --process-id I ...``.

Started by :func:`workshop_wrapup.multihost.run_multiprocess_demo`, which sets
``XLA_FLAGS`` so that this process has its own few CPU devices. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--coordinator", required=True, help="host:port of process 0's coordinator service")
    parser.add_argument("--num-processes", type=int, required=True)
    parser.add_argument("--process-id", type=int, required=True)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=int, default=90, help="seconds to wait for the other processes")
    args = parser.parse_args(argv)

    import jax

    # First thing, before any computation: join the group (process 0 hosts the coordinator).
    jax.distributed.initialize(args.coordinator, num_processes=args.num_processes, process_id=args.process_id,
                               initialization_timeout=args.timeout)
    from .multihost import example_data, global_statistics, rows_of_process
    from .sharding import data_mesh

    mesh = data_mesh()  # jax.devices() now lists the devices of every process
    local = example_data(args.rows, seed=args.seed)[rows_of_process(args.rows, args.process_id, args.num_processes)]
    stats = global_statistics(local, mesh)
    report = {
        "process_id": jax.process_index(),
        "process_count": jax.process_count(),
        "local_devices": [d.id for d in jax.local_devices()],
        "global_devices": jax.device_count(),
        "local_rows": int(local.shape[0]),
        **stats,
    }
    print(json.dumps(report), flush=True)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
