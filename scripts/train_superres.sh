#!/usr/bin/env bash
# Train, export, check and evaluate the reference upscalers shipped in exports/superres/:
#   x2-psnr  PSNR-oriented x2 (L1), the default of `superres:scale=2`
#   x2-gan   GAN fine-tune of x2-psnr (L1 + adversarial + feature matching), `superres:model=x2-gan`
#   x4-psnr  PSNR-oriented x4 (L1), the default of `superres:scale=4`
#
#   scripts/train_superres.sh DATA_DIR OUT_DIR
#
# DATA_DIR holds BSD68/ (training) and Set5/ (evaluation), e.g. ../shared/data. Writes
# OUT_DIR/superres/<name>.onnx with <name>.card.json and <name>.card.md (data, iterations, the command, the
# ONNX-vs-PyTorch check and the Set5 table), and OUT_DIR/runs/ (run folders). Then copy
# OUT_DIR/superres/* to exports/superres/.
#
# Training length: SUPERRES_ITERATIONS=N trains every model N iterations, its cosine decay ending
# there (the cards' figures were made so).
# Without it, each model trains its pipeline's iterations under a time budget of SUPERRES_SECONDS (default
# 180) s (train.seconds: training ends at a checkpoint once the budget is spent; the learning rate's
# cosine then stops where the run stopped). SUPERRES_MODELS="x2-psnr x4-psnr" picks models; x2-gan starts from
# x2-psnr: its run in OUT_DIR, else OUT_DIR/superres/x2-psnr.onnx, else the shipped
# exports/superres/x2-psnr.onnx (so SUPERRES_MODELS=x2-gan alone works).
# SUPERRES_SET="key=value ..." adds pipeline overrides, e.g. a CPU smoke test:
#   SUPERRES_ITERATIONS=20 SUPERRES_SET="train.batch_size=4 train.dataset.patch_size=48 train.num_workers=0 \
#   train.device=cpu train.log_every=10" scripts/train_superres.sh ../shared/data runs/superres-smoke
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${1:?usage: scripts/train_superres.sh DATA_DIR OUT_DIR}
OUT=${2:?usage: scripts/train_superres.sh DATA_DIR OUT_DIR}
ARTGAN=${ARTGAN:-artgan}
PYTHON=${PYTHON:-python}
BSD="$DATA/BSD68"
SET5="$DATA/Set5"
MODELS=${SUPERRES_MODELS:-"x2-psnr x2-gan x4-psnr"}
[ -d "$BSD" ] || { echo "error: $BSD not found (DATA_DIR must hold BSD68/ and Set5/)" >&2; exit 1; }
[ -d "$SET5" ] || { echo "error: $SET5 not found (DATA_DIR must hold BSD68/ and Set5/)" >&2; exit 1; }
mkdir -p "$OUT/runs" "$OUT/superres"
OUT=$(cd "$OUT" && pwd)

extra=()
for kv in ${SUPERRES_SET:-}; do extra+=(--set "$kv"); done

for name in $MODELS; do
  pipeline="pipelines/superres-$name.yaml"
  [ -f "$pipeline" ] || { echo "error: no $pipeline" >&2; exit 1; }
  scale=${name:1:1}
  sets=(--set "train.dataset.path=$BSD" --set "train.architecture.sample_images=$BSD" "${extra[@]}")
  if [ "$name" = "x2-gan" ]; then  # starts from x2-psnr: this run's checkpoint, else an exported model
    init=""
    for f in "$OUT/runs/superres-x2-psnr/checkpoints/last.pt" "$OUT/superres/x2-psnr.onnx" exports/superres/x2-psnr.onnx; do
      [ -f "$f" ] && { init=$(cd "$(dirname "$f")" && pwd)/$(basename "$f"); break; }
    done
    [ -n "$init" ] || { echo "error: x2-gan fine-tunes x2-psnr: train it first (SUPERRES_MODELS=x2-psnr)" >&2; exit 1; }
    echo "== x2-gan starts from $init ==" >&2
    sets+=(--set "train.architecture.init_from=$init")
  fi
  iterations=${SUPERRES_ITERATIONS:-}
  if [ -n "$iterations" ]; then
    length=(--set "train.iterations=$iterations" --set "train.architecture.decay_to=$iterations")
    echo "== $name: training $iterations iterations ==" >&2
  else
    length=(--set "train.seconds=${SUPERRES_SECONDS:-180}")
    echo "== $name: training for ${SUPERRES_SECONDS:-180} s ==" >&2
  fi
  run="$OUT/runs/superres-$name"
  rm -rf "$run"
  start=$(date +%s)
  "$ARTGAN" run "$pipeline" "${sets[@]}" "${length[@]}" --out "$run"
  echo "== $name: trained and exported in $(( $(date +%s) - start )) s ==" >&2

  cp "$run/export/$name.onnx" "$run/export/$name.card.json" "$run/export/$name.card.md" "$OUT/superres/"
  command="scripts/train_superres.sh DATA_DIR OUT_DIR   # this model: artgan run $pipeline"
  for s in "${sets[@]}"; do [ "$s" = "--set" ] || command+=" --set $s"; done
  for s in "${length[@]}"; do [ "$s" = "--set" ] || command+=" --set $s"; done
  command=${command//$DATA/DATA_DIR}
  command=${command//$OUT/OUT_DIR}
  # ONNX vs PyTorch on a real 512x512 image (the export stage checked small random inputs)
  "$PYTHON" -m artgan_superres.card "$OUT/superres/$name.card.json" --run "$run" --command "$command" \
      --real-image "$SET5/baby.png"
  "$ARTGAN" evaluate superres --data "$SET5" --scale "$scale" --model "$OUT/superres/$name.onnx" \
      --baselines bicubic --card "$OUT/superres/$name.card.json" -q >/dev/null
done

echo "== Set5 (Y channel, scale px border cropped; LR = Pillow bicubic downscale) ==" >&2
for scale in 2 4; do
  models=()
  for f in "$OUT"/superres/x$scale-*.onnx; do [ -f "$f" ] && models+=(--model "$f"); done
  [ ${#models[@]} -gt 0 ] && "$ARTGAN" evaluate superres --data "$SET5" --scale "$scale" "${models[@]}" -q
done
ls -l "$OUT/superres" >&2
echo "copy $OUT/superres/* to exports/superres/" >&2
