#!/usr/bin/env bash
# Train the tiny teacher, camera-only baseline and SimDistill student on a synthetic world, then score each
# on the held-out val scenes with the official metric. Usage: tools/train_tiny.sh [DATA] [RUNS] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data/synth}
RUNS=${2:-runs/tiny}
EPOCHS=${3:-6}
SIM=.venv/bin/simdistill
if [ ! -d "$DATA/v1.0-synth" ]; then
  $SIM synth --out "$DATA" --scenes 120 --frames-per-scene 10 --seed 1000 --image-size 160x400 --val-fraction 0.2
fi
$SIM train teacher --config tiny --data "$DATA" --out "$RUNS/teacher" --epochs "$EPOCHS" --batch-size 4
$SIM train baseline --config tiny --data "$DATA" --out "$RUNS/baseline" --epochs "$EPOCHS" --batch-size 4
$SIM train student --config tiny --data "$DATA" --out "$RUNS/student" --epochs "$EPOCHS" --batch-size 4 \
  --teacher "$RUNS/teacher/last"
for m in teacher baseline student; do
  echo "== $m"
  $SIM evaluate --data "$DATA" --split val --model "$RUNS/$m/last" --out "$RUNS/$m/eval"
done
