#!/usr/bin/env bash
# Install uv (when absent), the workspace with its dev tools, and CPU PyTorch for the
# parity tests and benchmarks (never a runtime dependency).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v uv >/dev/null 2>&1; then
    python3 -m pip install --quiet uv
fi
uv --version
uv sync --locked
# PyTorch CPU build for parity tests only. A plain unpinned torch would pull several GB
# of CUDA packages, so pin the CPU wheel; without it the parity tests are skipped.
if ! uv pip install --python .venv/bin/python --find-links "${PIP_FIND_LINKS:-/opt/wheels}" "torch==2.13.0" >/dev/null 2>&1; then
    echo "ci/setup.sh: the CPU torch wheel is not available here; parity tests will be skipped"
fi
