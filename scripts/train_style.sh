#!/usr/bin/env bash
# Train the shipped style models (CycleGAN photo -> painting, one per painting), export them to
# ONNX, check ONNX against PyTorch on real photos, evaluate them on the held-out BSD68 photos, and
# copy .onnx + .card.json + .card.md + .reference.json into OUT_DIR/style/ (contact sheets and
# results.json into OUT_DIR/style-eval/).
#
#   scripts/train_style.sh DATA_DIR OUT_DIR
#
# DATA_DIR holds BSD68/ and style/<painting>.jpg. Each model trains for about STYLE_SECONDS: a
# short first run (60 steps) measures this machine's speed, then the same run resumes up to the
# number of steps that fits (the learning rate decays to 0 over its second half).
# The shipped models: STYLE_STEPS=1500 (the pipelines' own length), about 30 min each on 2 CPU cores.
#
# Environment:
#   STYLE_SECONDS=210                         training seconds per painting
#   STYLE_STEPS=N                             a fixed number of steps instead (CPU smoke test: 4)
#   STYLE_PAINTINGS="starry-night great-wave" which paintings (pipelines/style-<name>.yaml each)
#   STYLE_SET="train.batch_size=2 ..."        extra --set overrides for every run (smoke tests)
#   STYLE_RUNS=runs                           where the run folders go
# Evaluation runs on the CPU with 2 threads (ARTGAN_PROVIDERS/ARTGAN_THREADS), like the machine
# the 1-second target is about.
set -euo pipefail

DATA=${1:?usage: scripts/train_style.sh DATA_DIR OUT_DIR}
OUT=${2:?usage: scripts/train_style.sh DATA_DIR OUT_DIR}
DATA=$(cd "$DATA" && pwd)
mkdir -p "$OUT/style" && OUT=$(cd "$OUT" && pwd)
SECONDS_PER_MODEL=${STYLE_SECONDS:-210}
PAINTINGS=${STYLE_PAINTINGS:-"starry-night great-wave"}
RUNS=${STYLE_RUNS:-runs}
CALIBRATION_STEPS=60
cd "$(dirname "$0")/.."

extra=()
for kv in ${STYLE_SET:-}; do extra+=(--set "$kv"); done

eval_args=()
for name in $PAINTINGS; do
  pipeline=pipelines/style-$name.yaml
  run=$RUNS/style-$name
  sets=(--set "train.dataset.photos=$DATA/BSD68" --set "train.dataset.art=$DATA/style/$name.jpg" "${extra[@]}")
  if [ -e "$run" ]; then echo "error: $run exists; remove it or set STYLE_RUNS" >&2; exit 1; fi
  start=$SECONDS
  if [ -n "${STYLE_STEPS:-}" ]; then
    steps=$STYLE_STEPS
    artgan run "$pipeline" "${sets[@]}" --set "train.steps=$steps" --out "$run" -q
  else
    echo "== $name: measuring speed ($CALIBRATION_STEPS steps)" >&2
    artgan run "$pipeline" "${sets[@]}" --set "train.steps=$CALIBRATION_STEPS" --set train.log_every=20 \
      --set "train.checkpoint_every=$CALIBRATION_STEPS" --out "$run" -q
    # steps per second over the last logged interval (past cuDNN's warm-up), times the budget
    steps=$(python - "$run/metrics.jsonl" "$SECONDS_PER_MODEL" "$CALIBRATION_STEPS" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
a, b = rows[-2], rows[-1]
rate = (b["step"] - a["step"]) / (b["time"] - a["time"])
steps = int(float(sys.argv[2]) * rate) // 100 * 100
print(max(steps, int(sys.argv[3]) + 100))
EOF
)
    echo "== $name: $steps steps" >&2
    artgan run "$pipeline" "${sets[@]}" --set "train.steps=$steps" \
      --set "train.architecture.decay_from=$((steps / 2))" --set "train.architecture.decay_to=$steps" \
      --out "$run" --resume -q
  fi
  trained=$((SECONDS - start))
  cp "$run/export/$name.onnx" "$run/export/$name.card.json" "$OUT/style/"
  python -m artgan_style.classical "$DATA/style/$name.jpg" "$OUT/style/$name.reference.json" >/dev/null
  python - "$OUT/style/$name.card.json" "$pipeline" "$steps" "$trained" "$name" <<'EOF'
import json, sys, torch
path, pipeline, steps, seconds, name = sys.argv[1:]
card = json.load(open(path))
card["training"] = {
    "pipeline": pipeline, "steps": int(steps), "seconds": int(seconds),
    "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    "data": f"BSD68 training split (every 4th sorted file held out) -> style/{name}.jpg",
    "command": "scripts/train_style.sh DATA_DIR OUT_DIR",
}
json.dump(card, open(path, "w"), indent=2)
EOF
  ARTGAN_PROVIDERS=CPUExecutionProvider ARTGAN_THREADS=2 python benchmarks/style_parity.py \
    --checkpoint "$run/checkpoints/last.pt" --model "$OUT/style/$name.onnx" --photos "$DATA/BSD68" --card \
    | tail -3 || echo "warning: ONNX/PyTorch parity below 50 dB for $name" >&2
  eval_args+=(--painting "$DATA/style/$name.jpg" --model "$OUT/style/$name.onnx")
done

ARTGAN_PROVIDERS=CPUExecutionProvider ARTGAN_THREADS=2 \
  artgan evaluate style --photos "$DATA/BSD68" "${eval_args[@]}" --out "$OUT/style-eval" --card
