#!/usr/bin/env bash
# Train the shipped style models with `artgan style train` (its defaults: 15 minutes each on the
# CPU), install them into OUT_DIR/style/ (.onnx, .card.json, .card.md, .reference.json,
# .contact.png), then evaluate them on BSD68 (never seen in training) with `artgan evaluate style`
# and write those figures into the cards (results JSON: OUT_DIR/style-eval/results-<painting>.json).
#
#   scripts/train_style.sh DATA_DIR OUT_DIR
#
# DATA_DIR holds BSDS400/ (training photos), BSD68/ (evaluation) and style/<painting>.jpg.
# Environment:
#   STYLE_MINUTES=15                          the budget per painting, training and export together
#   STYLE_PAINTINGS="starry-night great-wave" which paintings
#   STYLE_RUNS=runs                           where the run folders go
#   STYLE_UNSEEN=1                            also the check on a painting not in the repository (below);
#                                             its model goes to OUT_DIR/unseen/, never shipped
# Evaluation runs on the CPU (ARTGAN_PROVIDERS), like the machine the 1-second target is about.
set -euo pipefail

DATA=${1:?usage: scripts/train_style.sh DATA_DIR OUT_DIR}
OUT=${2:?usage: scripts/train_style.sh DATA_DIR OUT_DIR}
DATA=$(cd "$DATA" && pwd)
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
MINUTES=${STYLE_MINUTES:-15}
PAINTINGS=${STYLE_PAINTINGS:-"starry-night great-wave"}
RUNS=${STYLE_RUNS:-runs}
cd "$(dirname "$0")/.."

for name in $PAINTINGS; do
  artgan style train "$DATA/style/$name.jpg" --name "$name" --minutes "$MINUTES" --photos "$DATA/BSDS400" \
    --to "$OUT" --runs "$RUNS"
done
mkdir -p "$OUT/style-eval"
for name in $PAINTINGS; do
  ARTGAN_PROVIDERS=CPUExecutionProvider \
    artgan evaluate style --data "$DATA/BSD68" --split all --painting "$DATA/style/$name.jpg" \
    --model "$OUT/style/$name.onnx" --out "$OUT/style-eval/results-$name.json" --card "$OUT/style/$name.card.json"
done

if [ -n "${STYLE_UNSEEN:-}" ]; then
  # A painting-like image that is in no shipped model: scikit-image's "coffee" photo through OpenCV's
  # edge-preserving stylization, its hues turned by 140 degrees, saturation x1.6 and diagonal
  # hatching strokes. Trained with no flags but --photos and --to, as a user would.
  python - "$OUT/unseen/painting.png" <<'PY'
import sys
from pathlib import Path

import cv2
import numpy as np
from skimage import data

bgr = cv2.stylization(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), sigma_s=40, sigma_r=0.5)
hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
hsv[..., 0] = (hsv[..., 0].astype(int) + 70) % 180
hsv[..., 1] = np.clip(hsv[..., 1].astype(int) * 1.6, 0, 255).astype(np.uint8)
rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)
noise = np.random.default_rng(0).normal(0, 1, rgb.shape[:2]).astype(np.float32)
hatch = cv2.filter2D(noise, -1, np.eye(9, dtype=np.float32) / 9)
out = np.clip(rgb + 40 * hatch[..., None], 0, 255).astype(np.uint8)
Path(sys.argv[1]).parent.mkdir(parents=True, exist_ok=True)
cv2.imwrite(sys.argv[1], cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
PY
  artgan style train "$OUT/unseen/painting.png" --name unseen-painting --photos "$DATA/BSDS400" \
    --to "$OUT/unseen" --runs "$RUNS"
  ARTGAN_PROVIDERS=CPUExecutionProvider \
    artgan evaluate style --data "$DATA/BSD68" --split all --painting "$OUT/unseen/painting.png" \
    --model "$OUT/unseen/style/unseen-painting.onnx" --out "$OUT/unseen/style-eval.json"
fi
