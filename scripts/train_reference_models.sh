#!/usr/bin/env bash
# Train every shipped reference model at once (one GPU holds them all: they are small), then pack
# the exports, cards and logs into one archive.
#
#   scripts/train_reference_models.sh DATA_DIR OUT_DIR [task ...]
#
# DATA_DIR is a copy of ../shared/data (Set5, BSD68, style); tasks default to every
# scripts/train_<task>.sh present. Each task's log is OUT_DIR/logs/<task>.log; its models land in
# OUT_DIR/models/<step>/; OUT_DIR/reference-models.tar.gz holds both.
set -uo pipefail
data=${1:?usage: $0 DATA_DIR OUT_DIR [task ...]}
out=${2:?usage: $0 DATA_DIR OUT_DIR [task ...]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
tasks=("$@")
if [ ${#tasks[@]} -eq 0 ]; then
  for s in "$here"/train_*.sh; do
    t=$(basename "$s" .sh); t=${t#train_}
    [ "$t" = reference_models ] || tasks+=("$t")
  done
fi
mkdir -p "$out/logs" "$out/models"
declare -A pids
for t in "${tasks[@]}"; do
  echo "starting $t"
  ( time bash "$here/train_$t.sh" "$data" "$out/models" ) >"$out/logs/$t.log" 2>&1 &
  pids[$t]=$!
done
status=0
for t in "${tasks[@]}"; do
  if wait "${pids[$t]}"; then echo "$t: ok"; else echo "$t: FAILED (see logs/$t.log)"; status=1; fi
  tail -n 25 "$out/logs/$t.log"
done
tar -C "$out" -czf "$out/reference-models.tar.gz" logs models
exit $status
