#!/usr/bin/env bash
# The first reproduction table (world v1, config tiny, one seed per row; superseded by tools/reproduce.sh):
# teacher, camera-only baseline, the student without distillation, the SimDistill student and its
# ablations, all with the same data, schedule and seed, each scored by the
# official devkit on the held-out val scenes. Finished runs are skipped, so the script can be interrupted
# and re-run. Usage:
#   tools/reproduce_v1.sh                      # everything (about 2 h on 2 CPU cores)
#   RUNS_ONLY="teacher baseline student" tools/reproduce_v1.sh   # the shipped three only
# Environment: DATA (data/synth), RUNS (runs/reproduce), EPOCHS (6), BATCH (4), SEED (0), DEVICE (auto),
# JOBS (2: runs trained side by side), THREADS (1: torch threads per run). On a small CPU machine, single-thread
# runs side by side beat one multi-thread run by far (a tiny-config step is 0.65 s with 1 thread, 4 s with 2
# threads contending with anything else). Logs go to RUNS/NAME/train.log.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/synth}
RUNS=${RUNS:-runs/reproduce}
EPOCHS=${EPOCHS:-6}
BATCH=${BATCH:-4}
SEED=${SEED:-0}
DEVICE=${DEVICE:-auto}
JOBS=${JOBS:-2}
export OMP_NUM_THREADS=${THREADS:-1}
ALL="teacher baseline student_nodistill student ablate_cmd ablate_gcm ablate_init ablate_imd ablate_mmd_feat ablate_mmd_pred"
RUNS_ONLY=${RUNS_ONLY:-$ALL}
SIM=.venv/bin/simdistill

if [ ! -f "$DATA/v1.0-synth/splits.json" ]; then
  echo "== synthesizing the benchmark into $DATA (100 scenes x 8 frames, 20 val scenes)"
  $SIM synth --out "$DATA" --scenes 100 --frames-per-scene 8 --seed 1000 --render-size 160x400 \
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
  local resume=()
  [ -f "$dir/last/meta.json" ] && resume=(--resume)
  mkdir -p "$dir"
  echo "== $name: training $model (log: $dir/train.log)"
  $SIM train "$model" --config tiny --data "$DATA" --out "$dir" --epochs "$EPOCHS" --batch-size "$BATCH" \
    --seed "$SEED" --device "$DEVICE" "${resume[@]}" "$@" >>"$dir/train.log" 2>&1
  $SIM evaluate --data "$DATA" --split val --model "$dir/last" --device "$DEVICE" --out "$dir/eval" \
    >"$dir/eval.log" 2>&1
  echo "== $name: $(grep -E '^(mAP|NDS)' "$dir/eval.log" | tr '\n' ' ')"
}

spawned=()
spawn() {  # run in the background, at most JOBS at a time
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  run "$@" &
  spawned+=("$1")
}

finished() {  # finished NAME...: fail unless each run has its evaluation (exit codes can be reaped early)
  local name
  for name in "$@"; do
    [ -f "$RUNS/$name/eval/metrics_summary.json" ] && continue
    case " $RUNS_ONLY " in *" $name "*) ;; *) continue ;; esac
    echo "$name failed; see $RUNS/$name/train.log and eval.log" >&2
    exit 1
  done
}

TEACHER="$RUNS/teacher/last"
# The teacher first; the runs that need no teacher fill the other slots while it trains.
spawn teacher teacher
teacher_pid=$!
spawn baseline baseline
spawn student_nodistill student --disable distill
wait "$teacher_pid" 2>/dev/null || true
finished teacher
# Every distilled student starts from the teacher's camera branch, fuser, decoder and head (--init-from);
# the student without distillation and the "- initialisation" ablation start from scratch like the baseline.
DISTILL=(--teacher "$TEACHER" --init-from "$TEACHER")
spawn student student "${DISTILL[@]}"
spawn ablate_cmd student "${DISTILL[@]}" --disable cmd
spawn ablate_gcm student "${DISTILL[@]}" --disable gcm
spawn ablate_init student --teacher "$TEACHER"
spawn ablate_imd student "${DISTILL[@]}" --disable imd
spawn ablate_mmd_feat student "${DISTILL[@]}" --disable mmd_feat
spawn ablate_mmd_pred student "${DISTILL[@]}" --disable mmd_pred
wait
finished "${spawned[@]}"

echo
.venv/bin/python tools/reproduction_table.py legacy "$RUNS" | tee "$RUNS/table.md"
