#!/usr/bin/env bash
# Train, check and evaluate the default inpainting model (exports/inpaint/residual-bsds400.onnx).
#
#   scripts/train_inpaint.sh DATA_DIR OUT_DIR
#
# DATA_DIR holds BSDS400/ (training) and BSD68/ (evaluation only), e.g. ../shared/data.
# Writes OUT_DIR/inpaint/residual-bsds400.{onnx,card.json,card.md,comparison.png} (ship these four
# in exports/inpaint/) and OUT_DIR/inpaint/eval.json (the results); the run folder is
# OUT_DIR/runs/inpaint. Training uses BSDS400's train split (artgan.splits: every 4th file by name
# is held out, for the sample grids); the evaluation is on all 68 BSD68 photos, none trained on.
#
# Training length: a time budget, INPAINT_SECONDS (default 3300 s; the pipeline's train.seconds),
# ends training at the next checkpoint. INPAINT_SET="key=value ..." adds pipeline overrides (e.g. a
# smoke test: INPAINT_SECONDS=20 INPAINT_SET="train.batch_size=4 train.checkpoint_every=5"
# INPAINT_EVAL_ARGS="--baselines telea" scripts/train_inpaint.sh ../shared/data runs/inpaint-smoke).
# On a busy CPU, OMP_NUM_THREADS=1 ARTGAN_THREADS=1 keep it to one core.
set -euo pipefail

DATA=${1:?usage: scripts/train_inpaint.sh DATA_DIR OUT_DIR}
OUT=${2:?usage: scripts/train_inpaint.sh DATA_DIR OUT_DIR}
mkdir -p "$OUT"
DATA=$(cd "$DATA" && pwd)
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."  # the pipeline's path is relative to the repository
ARTGAN=${ARTGAN:-artgan}
PYTHON=${PYTHON:-python}
TRAIN="$DATA/BSDS400"
EVAL="$DATA/BSD68"
NAME=residual-bsds400
SECONDS_BUDGET=${INPAINT_SECONDS:-3300}
for d in "$TRAIN" "$EVAL"; do
  [ -d "$d" ] || { echo "error: $d not found (DATA_DIR must hold BSDS400/ and BSD68/)" >&2; exit 1; }
done

sets=(--set "train.dataset.path=$TRAIN" --set "train.architecture.sample_images=$TRAIN"
      --set "train.seconds=$SECONDS_BUDGET")
for kv in ${INPAINT_SET:-}; do sets+=(--set "$kv"); done
mkdir -p "$OUT/runs" "$OUT/inpaint"

run="$OUT/runs/inpaint"
rm -rf "$run"
echo "== training for ${SECONDS_BUDGET} s ==" >&2
"$ARTGAN" run pipelines/inpaint.yaml "${sets[@]}" --out "$run"

cp "$run/export/$NAME.onnx" "$run/export/$NAME.card.json" "$OUT/inpaint/"
# the card: what the model is, its training, ONNX vs PyTorch on a real photo with a real hole
# (artgan.export.verify_on_real_inputs) and the step's speed at 512x512 with a 30% hole
"$PYTHON" -m artgan_inpaint.card "$OUT/inpaint/$NAME.onnx" --checkpoint "$run/checkpoints/last.pt" \
    --image "$(printf '%s\n' "$EVAL"/*.png | sort | head -n 1)" \
    --command "INPAINT_SECONDS=$SECONDS_BUDGET scripts/train_inpaint.sh DATA_DIR OUT_DIR"

echo "== evaluation (all of BSD68; none of it is trained on) ==" >&2
"$ARTGAN" evaluate inpaint --data "$EVAL" --split all --model "$OUT/inpaint/$NAME.onnx" \
    --out "$OUT/inpaint/eval.json" --card "$OUT/inpaint/$NAME.card.json" \
    --sheet "$OUT/inpaint/$NAME.comparison.png" ${INPAINT_EVAL_ARGS:-}
echo "ship: cp $OUT/inpaint/$NAME.{onnx,card.json,card.md,comparison.png} exports/inpaint/" >&2
