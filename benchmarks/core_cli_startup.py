"""Wall time of `workshop list` against its peer `python -c "import jax"`, in one run.

`workshop list` must stay well under a second and never import JAX; the peer shows what
listing would cost if it did. Writes benchmarks/results/core_cli_startup.json.

    python benchmarks/core_cli_startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall(cmd: list[str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    py = sys.executable
    runs = {
        "workshop list": wall([py, "-c", "from workshop.cli import main; main(['list'])"], args.repeat),
        "python -c 'import jax' (peer)": wall([py, "-c", "import jax"], args.repeat),
        "python -c 'pass' (floor)": wall([py, "-c", "pass"], args.repeat),
    }
    medians = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "benchmark": "core_cli_startup",
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
        "repeat": args.repeat,
        "median_seconds": medians,
        "ratio_list_over_import_jax": medians["workshop list"] / medians["python -c 'import jax' (peer)"],
    }
    out = Path(__file__).parent / "results" / "core_cli_startup.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
