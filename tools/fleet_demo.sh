#!/usr/bin/env bash
# Unlabeled fleet data: the teacher replays bags that have no labels, a student learns only from that target
# store (teacher pseudo-labels + distillation targets), and is scored on labeled held-out val scenes
# beside the camera-only baseline trained on the labeled scenes.
#
#   bash tools/fleet_demo.sh [OUT]                       # tiny smoke run (random-init teacher)
#   TEACHER=runs/teacher/last FLEET_SCENES=8 FRAMES=12 EPOCHS=20 bash tools/fleet_demo.sh out/fleet
#
# Environment: TEACHER (checkpoint; default: a random-init tiny teacher, which only proves the plumbing),
# FLEET_SCENES, LABELED_SCENES, FRAMES (per scene), IMAGE_SIZE, EPOCHS, MAX_STEPS (empty: no cap),
# BATCH, DEVICE, PY (python of the venv).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code, whatever the venv's install
OUT=${1:-out/fleet_demo}
PY=${PY:-.venv/bin/python}
SIM="$PY -m simdistill_ros.cli"
FLEET_SCENES=${FLEET_SCENES:-2}
LABELED_SCENES=${LABELED_SCENES:-2}
FRAMES=${FRAMES:-3}
IMAGE_SIZE=${IMAGE_SIZE:-64x112}
EPOCHS=${EPOCHS:-1}
MAX_STEPS=${MAX_STEPS:-2}
BATCH=${BATCH:-2}
DEVICE=${DEVICE:-auto}
steps=()
[ -n "$MAX_STEPS" ] && steps=(--max-steps "$MAX_STEPS")
start=$(date +%s)
mkdir -p "$OUT"

echo "== 1/6 labeled world: $LABELED_SCENES scenes (half train, half held-out val)"
$SIM synth --out "$OUT/labeled" --scenes "$LABELED_SCENES" --frames-per-scene "$FRAMES" --seed 101 \
  --render-size "$IMAGE_SIZE" --val-fraction 0.5 --overwrite
echo "== 2/6 unlabeled fleet: $FLEET_SCENES scenes, labels deleted"
$SIM synth --out "$OUT/fleet" --scenes "$FLEET_SCENES" --frames-per-scene "$FRAMES" --seed 202 \
  --render-size "$IMAGE_SIZE" --val-fraction 0 --overwrite
rm -rf "$OUT/fleet/v1.0-synth" "$OUT/fleet/cache"  # fleet bags come without annotations

if [ -z "${TEACHER:-}" ]; then
  TEACHER="$OUT/teacher_random"
  echo "== 3/6 no TEACHER given: a random-init tiny teacher at $TEACHER (plumbing only, no real accuracy)"
  $PY - "$TEACHER" <<'PYEOF'
import sys, torch
from simdistill_ros.models import TeacherModel, save_checkpoint, tiny
torch.manual_seed(0)
cfg = tiny()
save_checkpoint(sys.argv[1], TeacherModel(cfg), cfg, {"model_type": "teacher", "note": "random init (fleet demo)"})
PYEOF
else
  echo "== 3/6 teacher: $TEACHER"
fi

echo "== 4/6 replay the fleet bags with the teacher (no --data: targets and pseudo-labels only)"
rm -rf "$OUT/store"
$SIM replay --teacher "$TEACHER" --bags "$OUT"/fleet/bags/* --out "$OUT/store" --device "$DEVICE"
$SIM replay --out "$OUT/store" --verify

echo "== 5/6 train: student from the store only; baseline on the labeled train scenes"
$SIM train student --targets "$OUT/store" --init-from "$TEACHER" --out "$OUT/student" --epochs "$EPOCHS" --batch-size "$BATCH" \
  --device "$DEVICE" "${steps[@]}"
$SIM train baseline --data "$OUT/labeled" --out "$OUT/baseline" --epochs "$EPOCHS" --batch-size "$BATCH" \
  --device "$DEVICE" "${steps[@]}"

echo "== 6/6 official metrics on the labeled held-out val scenes"
for m in student baseline; do
  $SIM evaluate --data "$OUT/labeled" --split val --model "$OUT/$m/last" --out "$OUT/eval_$m" --device "$DEVICE"
done
$PY - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print(f"{'model':28s} {'mAP':>7s} {'NDS':>7s}")
for name, label in (("student", "student (fleet store only)"), ("baseline", "baseline (labeled train)")):
    s = json.loads((out / f"eval_{name}" / "metrics_summary.json").read_text())
    print(f"{label:28s} {s['mean_ap']:7.4f} {s['nd_score']:7.4f}")
PYEOF
echo "== done in $(($(date +%s) - start)) s under $OUT"
