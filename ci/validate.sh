#!/usr/bin/env bash
# Course checks: every module validates (lessons build, solution notebooks execute under
# the tiny preset, checks pass on solutions and fail on stubs), and the committed
# notebooks are fresh relative to their sources. Modules validate two at a time (one per
# core of a CI machine); each one's report is printed whole when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
export MPLBACKEND=Agg WORKSHOP_PRESET=tiny
uv run python ci/build_notebooks.py --check
logs=$(mktemp -d)
modules=$(uv run python -c "
from workshop._plugins import registry
reg = registry()
for b in reg.broken:
    raise SystemExit(f'broken plugin {b.name}: {b.error}')
# the longest first, so that the two at a time end together
order = ['astro', 'protein', 'wrapup', 'intro']
print(' '.join(sorted(reg.modules, key=lambda m: order.index(m) if m in order else len(order))))")
printf '%s\n' $modules | xargs -P 2 -I{} sh -c \
    'if uv run workshop validate "$1" -q >"$2/$1.log" 2>&1; then echo ok >"$2/$1.rc"; else echo failed >"$2/$1.rc"; fi' \
    _ {} "$logs"
status=0
for m in $modules; do
    cat "$logs/$m.log"
    [ "$(cat "$logs/$m.rc")" = ok ] || { echo "validate $m: FAILED"; status=1; }
done
exit $status
