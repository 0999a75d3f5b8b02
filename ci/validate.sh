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

# The same at the `cpu` preset, where most lessons size their work differently (a solution
# can pass its check at tiny and fail it at cpu). Left out, for CI's time: the astro
# lessons that train for a fixed two minutes at cpu (08, 09) and the one that samples the
# pretrained 64x64 model (11); they are validated at cpu by hand before a change to them lands.
CPU_SKIP="astro:08_training_step astro:09_few_step_sampling astro:11_pretrained_and_reconstruction"
cpu_args=$(CPU_SKIP="$CPU_SKIP" uv run python -c "
import os
from workshop._plugins import registry
skip = {tuple(s.split(':')) for s in os.environ['CPU_SKIP'].split()}
for name, decl in sorted(registry().modules.items()):
    ids = [l.id for l in decl.lessons]
    keep = [i for i in ids if (name, i) not in skip]
    if keep:
        print(name + ('' if len(keep) == len(ids) else ' ' + ' '.join('--lesson ' + i for i in keep)))")
echo "$cpu_args" | LOGS="$logs" xargs -P 2 -I{} sh -c \
    'm=${1%% *}; rest=${1#"$m"}; if uv run workshop validate "$m" --preset cpu -q $rest >"$LOGS/$m.cpu.log" 2>&1; then echo ok >"$LOGS/$m.cpu.rc"; else echo failed >"$LOGS/$m.cpu.rc"; fi' \
    _ {}
for m in $modules; do
    [ -f "$logs/$m.cpu.rc" ] || continue
    echo "[cpu preset] $(tail -n 1 "$logs/$m.cpu.log")"
    [ "$(cat "$logs/$m.cpu.rc")" = ok ] || { cat "$logs/$m.cpu.log"; echo "validate $m at cpu: FAILED"; status=1; }
done
exit $status
