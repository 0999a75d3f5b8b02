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
# PyTorch CPU build for parity tests only, from the wheel folder or index that
# PIP_FIND_LINKS names (a plain unpinned torch would pull several GB of CUDA packages).
# Without it the parity tests are skipped, and pytest prints how many.
if [ -z "${PIP_FIND_LINKS:-}" ]; then
    echo "ci/setup.sh: PIP_FIND_LINKS is not set, so PyTorch is not installed; parity tests will be skipped"
elif ! uv pip install --python .venv/bin/python --find-links "$PIP_FIND_LINKS" "torch==2.13.0" >/dev/null 2>&1; then
    echo "ci/setup.sh: the CPU torch wheel is not available from PIP_FIND_LINKS; parity tests will be skipped"
fi
