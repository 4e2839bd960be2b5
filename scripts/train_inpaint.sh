#!/usr/bin/env bash
# Train, export and evaluate the reference inpainting model (exports/inpaint/gated-bsd68.onnx).
#
#   scripts/train_inpaint.sh DATA_DIR OUT_DIR
#
# DATA_DIR holds BSD68/ (e.g. /work/shared/data). Writes OUT_DIR/inpaint/gated-bsd68.onnx, its model
# card (.card.json, .md, with the evaluation table), the side-by-side sheet (.comparison.png) and
# OUT_DIR/inpaint/eval/ (results.json, results.md); run folders go to OUT_DIR/runs/. Ship the four
# gated-bsd68.* files in exports/inpaint/.
#
# Training length: INPAINT_STEPS=N trains N steps. Without it a 60-step timing run first measures
# this machine's speed and the training gets as many steps as fit INPAINT_SECONDS (default 240) s.
# INPAINT_SET="key=value ..." adds pipeline overrides (e.g. a CPU smoke test:
#   INPAINT_STEPS=20 INPAINT_SET="train.dataset.crop_size=64 train.batch_size=4 train.num_workers=0" \
#   scripts/train_inpaint.sh /work/shared/data /tmp/inpaint-smoke). INPAINT_EVAL_ARGS adds options
# to `artgan evaluate inpaint` (e.g. "--max-images 2" for that smoke test).
set -euo pipefail

DATA=${1:?usage: scripts/train_inpaint.sh DATA_DIR OUT_DIR}
OUT=${2:?usage: scripts/train_inpaint.sh DATA_DIR OUT_DIR}
mkdir -p "$OUT"
DATA=$(cd "$DATA" && pwd)
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."  # the pipeline's path is relative to the repository
ARTGAN=${ARTGAN:-artgan}
PYTHON=${PYTHON:-python}
BSD="$DATA/BSD68"
NAME=gated-bsd68
[ -d "$BSD" ] || { echo "error: $BSD not found (DATA_DIR must hold BSD68/)" >&2; exit 1; }

sets=(--set "train.dataset.path=$BSD" --set "train.architecture.sample_images=$BSD")
for kv in ${INPAINT_SET:-}; do sets+=(--set "$kv"); done
mkdir -p "$OUT/runs" "$OUT/inpaint"

steps=${INPAINT_STEPS:-}
if [ -z "$steps" ]; then
  rm -rf "$OUT/runs/inpaint-timing"
  echo "== timing run (60 steps) ==" >&2
  "$ARTGAN" run pipelines/inpaint.yaml "${sets[@]}" --set train.steps=60 --set train.log_every=20 \
      --set train.checkpoint_every=1000 --out "$OUT/runs/inpaint-timing" -q >/dev/null
  steps=$("$PYTHON" - "$OUT/runs/inpaint-timing" "${INPAINT_SECONDS:-240}" <<'PY'
import json, sys, yaml
run, seconds = sys.argv[1], float(sys.argv[2])
last = [json.loads(l) for l in open(f"{run}/metrics.jsonl")][-1]  # steps 41-60: warmed up
batch = yaml.safe_load(open(f"{run}/pipeline.yaml"))["steps"][0]["train"]["batch_size"]
print(max(100, int(seconds * last["images_per_s"] / batch / 100) * 100))
PY
)
  echo "== $steps steps fit ${INPAINT_SECONDS:-240} s here ==" >&2
fi

run="$OUT/runs/inpaint"
rm -rf "$run"
echo "== training $steps steps ==" >&2
"$ARTGAN" run pipelines/inpaint.yaml "${sets[@]}" --set "train.steps=$steps" \
    --set "train.architecture.lr_decay_steps=$steps" --out "$run"

cp "$run/export/$NAME.onnx" "$run/export/$NAME.card.json" "$OUT/inpaint/"
# ONNX vs PyTorch at a real size and a real mask (the export step checked 64 px random inputs)
"$PYTHON" -m artgan_inpaint.parity "$run/checkpoints/last.pt" "$OUT/inpaint/$NAME.onnx" \
    --image "$(printf '%s\n' "$BSD"/*.png | sort | head -n 1)" --card "$OUT/inpaint/$NAME.card.json" \
    --steps "$steps" --command "INPAINT_STEPS=$steps scripts/train_inpaint.sh DATA_DIR OUT_DIR"

echo "== evaluation (held-out BSD68 split) ==" >&2
# no TensorRT here: it would build an engine for each image size of the evaluation
ARTGAN_PROVIDERS=${ARTGAN_PROVIDERS:-CUDAExecutionProvider,CPUExecutionProvider} "$ARTGAN" evaluate inpaint --data "$BSD" --model "$OUT/inpaint/$NAME.onnx" --out "$OUT/inpaint/eval" \
    --card "$OUT/inpaint/$NAME.card.json" ${INPAINT_EVAL_ARGS:-}
cp "$OUT/inpaint/eval/comparison.png" "$OUT/inpaint/$NAME.comparison.png"
echo "ship: cp $OUT/inpaint/$NAME.{onnx,card.json,md,comparison.png} exports/inpaint/" >&2
