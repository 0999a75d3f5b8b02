#!/usr/bin/env bash
# Course checks: every module validates (lessons build, solution notebooks execute under
# the tiny preset, checks pass on solutions and fail on stubs), and the committed
# notebooks are fresh relative to their sources.
set -euo pipefail
cd "$(dirname "$0")/.."
export MPLBACKEND=Agg WORKSHOP_PRESET=tiny
uv run python ci/build_notebooks.py --check
uv run workshop validate --all -q
