#!/usr/bin/env bash
# The reproduction table on the synthetic benchmark: teacher, camera-only baseline, the student without
# distillation, the SimDistill student and its ablations, all with the same data, schedule and seed, each
# scored by the official devkit on the held-out val scenes. Finished runs are skipped, so the script can be
# interrupted and re-run. Usage:
#   tools/reproduce.sh                      # everything (about 4 h on 2 CPU cores)
#   RUNS_ONLY="teacher baseline student" tools/reproduce.sh   # the shipped three only
# Environment: DATA (data/synth), RUNS (runs/reproduce), EPOCHS (6), BATCH (4), SEED (0), DEVICE (auto).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/synth}
RUNS=${RUNS:-runs/reproduce}
EPOCHS=${EPOCHS:-6}
BATCH=${BATCH:-4}
SEED=${SEED:-0}
DEVICE=${DEVICE:-auto}
ALL="teacher baseline student_nodistill student ablate_imd ablate_cmd ablate_mmd_feat ablate_mmd_pred ablate_gcm"
RUNS_ONLY=${RUNS_ONLY:-$ALL}
SIM=.venv/bin/simdistill

if [ ! -f "$DATA/v1.0-synth/splits.json" ]; then
  echo "== synthesizing the benchmark into $DATA (100 scenes x 8 frames, 20 val scenes)"
  $SIM synth --out "$DATA" --scenes 100 --frames-per-scene 8 --seed 1000 --image-size 160x400 \
    --val-fraction 0.2 --overwrite
fi

run() {  # run NAME MODEL [train args...]
  local name=$1 model=$2
  shift 2
  case " $RUNS_ONLY " in *" $name "*) ;; *) return 0 ;; esac
  local dir="$RUNS/$name"
  if [ -f "$dir/eval/metrics_summary.json" ]; then
    echo "== $name: done, skipped"
    return 0
  fi
  echo "== $name: training $model"
  local resume=()
  [ -f "$dir/last/meta.json" ] && resume=(--resume)
  $SIM train "$model" --config tiny --data "$DATA" --out "$dir" --epochs "$EPOCHS" --batch-size "$BATCH" \
    --seed "$SEED" --device "$DEVICE" "${resume[@]}" "$@"
  $SIM evaluate --data "$DATA" --split val --model "$dir/last" --device "$DEVICE" --out "$dir/eval"
}

TEACHER="$RUNS/teacher/last"
run teacher teacher
run baseline baseline
run student_nodistill student --disable distill
run student student --teacher "$TEACHER"
run ablate_imd student --teacher "$TEACHER" --disable imd
run ablate_cmd student --teacher "$TEACHER" --disable cmd
run ablate_mmd_feat student --teacher "$TEACHER" --disable mmd_feat
run ablate_mmd_pred student --teacher "$TEACHER" --disable mmd_pred
run ablate_gcm student --teacher "$TEACHER" --disable gcm

echo
.venv/bin/python -m simdistill_ros.evaluation.table "$RUNS" | tee "$RUNS/table.md"
