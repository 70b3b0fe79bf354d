#!/usr/bin/env bash
# The main job on an embedded default: a small synthetic world (bags + nuScenes tables), a sanity check of
# the official metric on it, and the shipped models scored on it when they are present.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/demo}
SIM=.venv/bin/simdistill
start=$(date +%s)
echo "== 1/3 synthesize 2 scenes x 6 frames (6 cameras + LiDAR) into $OUT"
$SIM synth --out "$OUT" --scenes 2 --frames-per-scene 6 --seed 7 --image-size 160x400 --overwrite
echo "== 2/3 official nuScenes metrics of the ground truth itself (must be mAP 1.0)"
$SIM evaluate --data "$OUT" --split val --gt-as-results
echo "== 3/3 shipped models on the val scene"
for m in student_tiny baseline_tiny teacher_tiny; do
  if [ -f "models/$m/model.safetensors" ]; then
    echo "-- $m"
    $SIM evaluate --data "$OUT" --split val --model "$m" --out "$OUT/eval_$m"
  else
    echo "-- $m: not shipped in this checkout, skipped"
  fi
done
echo "== done in $(($(date +%s) - start)) s; bags in $OUT/bags, tables in $OUT/v1.0-synth"
