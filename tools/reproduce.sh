#!/usr/bin/env bash
# The fair reproduction table (issue 10): every arm gets the same number of optimizer steps on the same data
# (world v2, config tiny_v2: ImageNet EfficientNet-Lite0 camera start), scored by the official devkit on
# >= 400 val frames; the main arms with several seeds (mean +- sd), each ablation with one seed.
#   1. baseline      camera-only, ImageNet-pretrained start                 (SEEDS)
#   2. teacher       staged like BEVFusion: starts from baseline_s0's camera branch, decoder and head, then
#                    trains LiDAR + fusion; its camera BEV is probed against the GT before and after
#   3. baseline_warm camera-only, warm-started from the teacher like the student   (SEEDS)
#   4. student_nodistill  student, same start (teacher), no distillation         (SEEDS)
#   5. student       SimDistill student, same start, all four terms              (SEEDS)
#   6. student_light SimDistill student with the light simulated-LiDAR branch (8 channels, depth net 32, BEV
#                    GCM on the 2x-pooled BEV: the speed lever of issue 15; seed 0 only)
#   7. ablations     - IMD / CMD / MMD-F / MMD-P / GCM / warm start              (seed 0 only)
#   8. baseline_long camera-only, ImageNet start, LONG_STEPS (3 x STEPS: the student's whole lineage, camera
#                    stage + teacher + student): the equal-training control                    (SEEDS)
#   9. baseline_depth_long  the same with LiDAR depth supervision (--depth-weight DEPTH_WEIGHT)      (SEEDS)
#  10. student_depth SimDistill student (faithful terms) plus depth supervision                (SEEDS)
#  11. student_v3    the v3 recipe (V3_ARGS: depth supervision + balanced distillation)         (SEEDS)
#  12. baseline_depth_warm  camera-only, warm-started from the teacher like the student, with depth supervision:
#                    the control that shares student_v3's start, steps and depth loss            (SEEDS)
#  13. v3 ablations  student_v3 without IMD / CMD / MMD-F / MMD-P (ablate_v3_*)               (seed 0 only)
# Arms 3, 5 and 8-12 also keep snapshots at a third and two thirds of their steps, scored on val (val_at_steps in the
# record, beside the loss curve), so the table shows whether a run had converged.
# Every run is scored on val and on a fresh world (FRESH_SCENES val-only scenes, seed FRESH_SEED) that no model
# trained or was chosen on.
# Every student is also probed against the teacher, map by map (bev_probe --teacher: RESULTS/NAME.probe.json on
# val, NAME.probe_fresh.json on the fresh world), to measure what the distillation put into its features.
# Two invocations may share RUNS (e.g. another SEEDS on a free core): each run is locked
# (RUNS/NAME.lock), so the second waits for it and then skips it as recorded.
# Resumable across sittings: each finished run writes RESULTS/NAME.json (metrics on val and on the fresh world,
# per-class AP, AP at 0.5/1/2/4 m, steps, when trained; commit these, not the checkpoints) and is skipped
# afterwards; a record without fresh-world metrics gets them added while its checkpoint is still on disk. A later run that needs
# the teacher when its checkpoint is no longer on disk re-trains it first (and baseline_s0, its camera stage),
# unless TEACHER names a teacher checkpoint: the shipped models/teacher_v2 is this script's teacher run (its model
# card gives the command), so TEACHER=models/teacher_v2 lets a fresh machine go on without re-training it.
# The table is assembled from the JSONs alone into RESULTS/table.md.
# Environment (defaults): DATA (data/fair_v2), RUNS (runs/fair), RESULTS (results/reproduce), CONFIG (tiny_v2),
# WORLD (v2), STEPS (1000), BATCH (4), SEEDS ("0 1 2"), ARMS_ONLY (all), JOBS (2), THREADS (1), DEVICE (auto),
# TRAIN_SCENES (100), VAL_SCENES (50), FRAMES (8), IMAGE_SIZE (224x400), DATA_SEED (1000), FRESH
# (data/fair_v2_fresh), FRESH_SCENES (25), FRESH_SEED (2000), TEACHER (RUNS/teacher/last, trained here), SIM, PY,
# LONG_STEPS (3 x STEPS), DEPTH_WEIGHT (3), V3_ARGS (see below), LINEAGE_ARGS (none: see below), TRAIN_ARGS
# (none: see below).
# TRAIN_ARGS: extra `simdistill train` arguments for every run this invocation trains, for a screen of a
# training option across arms (e.g. "--image-noise 8 --color-jitter 0.2"); the records say so (`train_args`,
# and a line under the table); use a RESULTS and RUNS of its own.
# LINEAGE_ARGS: extra `simdistill train` arguments for the teacher's lineage when this script trains it, e.g.
# "--depth-weight 3" for a teacher whose camera stage and fusion stage both had depth supervision
# (teacher_v3). The camera stage is then its own run (`camera_stage`, not baseline_s0), every baseline seed
# runs as usual, and the records of both say so (`lineage_args`); use a RESULTS and RUNS of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/fair_v2}
RUNS=${RUNS:-runs/fair}
RESULTS=${RESULTS:-results/reproduce}
CONFIG=${CONFIG:-tiny_v2}
WORLD=${WORLD:-v2}
STEPS=${STEPS:-1000}
LONG_STEPS=${LONG_STEPS:-$((3 * STEPS))}
DEPTH_WEIGHT=${DEPTH_WEIGHT:-3}
# the v3 recipe: depth supervision, and the feature terms balanced (per-channel scale, foreground and
# background apart) with weights from the measured gradient shares (docs/reproduction.md)
V3_ARGS=${V3_ARGS:---depth-weight $DEPTH_WEIGHT --feature-loss balanced --loss-weights imd=1.5 cmd=0.3 mmd_feat=0.2}
LINEAGE_ARGS=${LINEAGE_ARGS:-}
TRAIN_ARGS=${TRAIN_ARGS:-}
read -r -a TRAIN_EXTRA <<<"$TRAIN_ARGS"
BATCH=${BATCH:-4}
SEEDS=${SEEDS:-0 1 2}
DEVICE=${DEVICE:-auto}
JOBS=${JOBS:-2}
TRAIN_SCENES=${TRAIN_SCENES:-100}
VAL_SCENES=${VAL_SCENES:-50}
FRAMES=${FRAMES:-8}
IMAGE_SIZE=${IMAGE_SIZE:-224x400}
DATA_SEED=${DATA_SEED:-1000}
FRESH=${FRESH:-data/fair_v2_fresh}
FRESH_SCENES=${FRESH_SCENES:-25}
FRESH_SEED=${FRESH_SEED:-2000}
SIM=${SIM:-.venv/bin/simdistill}
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${THREADS:-1}
ALL="teacher baseline baseline_warm student_nodistill student student_light ablate_imd ablate_cmd ablate_mmd_feat ablate_mmd_pred ablate_gcm ablate_init baseline_long baseline_depth_long student_depth student_v3 baseline_depth_warm ablate_v3_imd ablate_v3_cmd ablate_v3_mmd_feat ablate_v3_mmd_pred"
ARMS_ONLY=${ARMS_ONLY:-$ALL}
mkdir -p "$RESULTS" "$RUNS"

if [ ! -f "$DATA/v1.0-synth/splits.json" ]; then
  scenes=$((TRAIN_SCENES + VAL_SCENES))
  echo "== synthesizing world $WORLD into $DATA ($scenes scenes x $FRAMES frames, $VAL_SCENES val scenes)"
  $SIM synth --out "$DATA" --world "$WORLD" --scenes "$scenes" --frames-per-scene "$FRAMES" \
    --seed "$DATA_SEED" --render-size "$IMAGE_SIZE" --val-fraction "$($PY -c "print($VAL_SCENES / $scenes)")" \
    --overwrite --workers "$(nproc)"
fi
if [ ! -f "$FRESH/v1.0-synth/splits.json" ]; then
  echo "== synthesizing the fresh world $WORLD into $FRESH ($FRESH_SCENES val-only scenes, seed $FRESH_SEED)"
  $SIM synth --out "$FRESH" --world "$WORLD" --scenes "$FRESH_SCENES" --frames-per-scene "$FRAMES" \
    --seed "$FRESH_SEED" --render-size "$IMAGE_SIZE" --val-fraction 1.0 --overwrite --workers "$(nproc)"
fi
val_frames() { $PY -c "import json,sys; s=json.load(open(sys.argv[1]+'/synth.json')); print(len(s['split']['val'])*s['frames_per_scene'])" "$1"; }
VAL_FRAMES=$(val_frames "$DATA")
FRESH_FRAMES=$(val_frames "$FRESH")
extra() {  # extra STEPS ARM: what a record says of its run beside the metrics
  local lineage=""
  case $2 in teacher | camera_stage) lineage=$LINEAGE_ARGS ;; esac
  printf '{"steps": %d, "batch": %d, "config": "%s", "world": "%s", "data_seed": %d, "image_size": "%s", "val_frames": %d, "fresh_seed": %d, "fresh_frames": %d, "lineage_args": "%s", "train_args": "%s"}' \
    "$1" "$BATCH" "$CONFIG" "$WORLD" "$DATA_SEED" "$IMAGE_SIZE" "$VAL_FRAMES" "$FRESH_SEED" "$FRESH_FRAMES" "$lineage" "$TRAIN_ARGS"
}

wanted() { case " $ARMS_ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
one_seed() { case $1 in teacher | camera_stage | ablate_* | student_light) return 0 ;; *) return 1 ;; esac; }  # runs named ARM

arm_steps() {  # arm_steps ARM: its optimizer steps
  case $1 in baseline_long | baseline_depth_long) echo "$LONG_STEPS" ;; *) echo "$STEPS" ;; esac
}

train_eval() {  # train_eval NAME ARM SEED MODEL [train args...]: train, evaluate, record RESULTS/NAME.json
  local name=$1 arm=$2 seed=$3 model=$4
  shift 4
  local dir="$RUNS/$name" resume=() snapshots=() steps
  steps=$(arm_steps "$arm")
  case $arm in baseline_warm | student | baseline_long | baseline_depth_long | student_depth | student_v3 | baseline_depth_warm)
    [ $((steps / 3)) -gt 0 ] && snapshots=(--snapshot-steps $((steps / 3)) $((2 * steps / 3))) ;;
  esac
  [ -f "$dir/last/meta.json" ] && [ ! -f "$dir/done" ] && resume=(--resume)
  mkdir -p "$dir"
  if [ ! -f "$dir/done" ]; then
    echo "== $name: training $model, $steps steps, seed $seed (log: $dir/train.log)"
    # --epochs only bounds the loop: every arm stops (and anneals its one-cycle schedule) at its steps
    $SIM train "$model" --config "$CONFIG" --data "$DATA" --out "$dir" --epochs 100000 --max-steps "$steps" \
      --batch-size "$BATCH" --seed "$seed" --device "$DEVICE" "${resume[@]}" "${snapshots[@]}" "$@" \
      "${TRAIN_EXTRA[@]}" >>"$dir/train.log" 2>&1
    touch "$dir/done"
  fi
  $SIM evaluate --data "$DATA" --split val --model "$dir/last" --device "$DEVICE" --out "$dir/eval" \
    >"$dir/eval.log" 2>&1
  local snap
  for snap in "$dir"/step_*; do
    [ -f "$snap/meta.json" ] || continue
    [ -f "$dir/eval_${snap##*/}/metrics_summary.json" ] && continue
    $SIM evaluate --data "$DATA" --split val --model "$snap" --device "$DEVICE" --out "$dir/eval_${snap##*/}" \
      >"$dir/eval_${snap##*/}.log" 2>&1
  done
  score_fresh "$name" "$arm" "$seed"
}

score_fresh() {  # score_fresh NAME ARM SEED: score RUNS/NAME on the fresh world, (re)write RESULTS/NAME.json
  local name=$1 arm=$2 seed=$3 dir="$RUNS/$1"
  $SIM evaluate --data "$FRESH" --split val --model "$dir/last" --device "$DEVICE" --out "$dir/eval_fresh" \
    >"$dir/eval_fresh.log" 2>&1
  record "$name" "$arm" "$seed"
  echo "== $name: val $(grep -E '^(mAP|NDS)' "$dir/eval.log" | tr '\n' ' ')| fresh world $(grep -E '^(mAP|NDS)' "$dir/eval_fresh.log" | tr '\n' ' ')"
}

record() {  # record NAME ARM SEED: (re)write RESULTS/NAME.json from RUNS/NAME's evaluations (no scoring)
  $PY tools/reproduction_table.py record --name "$1" --arm "$2" --seed "$3" --run "$RUNS/$1" \
    --out "$RESULTS/$1.json" --extra "$(extra "$(arm_steps "$2")" "$2")" --data "$DATA" --fresh-data "$FRESH"
}

has_fresh() { grep -q '"metrics_fresh"' "$RESULTS/$1.json"; }

called_if_missing() {  # a record from before the vehicle-naming count: add it if the run's scores are on disk
  if ! grep -q '"class_called"' "$RESULTS/$1.json" && [ -f "$RUNS/$1/eval/results.json" ] \
    && [ -f "$RUNS/$1/eval/metrics_summary.json" ]; then
    record "$@"
  fi
}

fresh_if_missing() {  # a record from before the fresh world: add its fresh-world metrics if the run is on disk
  if ! has_fresh "$1"; then
    if [ -f "$RUNS/$1/last/meta.json" ] && [ -f "$RUNS/$1/eval/metrics_summary.json" ]; then
      score_fresh "$@"
    else
      echo "== $1: no fresh-world metrics and its checkpoint is gone from $RUNS; re-train it for them"
    fi
  fi
}

probe_distillation() {  # probe_distillation NAME: a student's BEV maps against the teacher's, val + fresh world
  local dir="$RUNS/$1" world out
  for world in "$DATA:probe" "$FRESH:probe_fresh"; do
    out="$RESULTS/$1.${world##*:}.json"
    [ -f "$out" ] && continue
    if [ ! -f "$dir/last/meta.json" ]; then echo "== $1: checkpoint gone from $RUNS, no BEV probe"; return 0; fi
    $PY -m simdistill_ros.evaluation.bev_probe --teacher "$TEACHER" --model "$dir/last" --data "${world%:*}" \
      --split val --frames 40 --out "$out" >/dev/null
  done
}

probe_depth() {  # probe_depth NAME: the camera depth against the LiDAR on 40 val frames (RESULTS/NAME.depth.json)
  local out="$RESULTS/$1.depth.json"
  [ -f "$out" ] || [ ! -f "$RUNS/$1/last/meta.json" ] && return 0
  $PY -m simdistill_ros.evaluation.bev_probe --depth --model "$RUNS/$1/last" --data "$DATA" --split val \
    --frames 40 --out "$out" >/dev/null
}

run() {  # run NAME ARM SEED MODEL [args]: skipped when its result JSON exists
  wanted "$2" || return 0
  mkdir -p "$RUNS"
  # one writer per run: a second invocation on the same RUNS waits for it, then finds its record
  (flock 9 && run_unlocked "$@") 9>"$RUNS/$1.lock"
}

run_unlocked() {
  if [ -f "$RESULTS/$1.json" ]; then
    echo "== $1: recorded in $RESULTS/$1.json, skipped"
    fresh_if_missing "$1" "$2" "$3"
    called_if_missing "$1" "$2" "$3"
  else
    train_eval "$@"
  fi
  if [ "$4" = student ]; then probe_distillation "$1"; fi
  probe_depth "$1"
}

ensure() {  # ensure NAME ARM SEED MODEL [args]: a checkpoint later runs start from; re-trained if gone
  mkdir -p "$RUNS"
  (flock 9 && ensure_unlocked "$@") 9>"$RUNS/$1.lock"
}

ensure_unlocked() {
  if [ -f "$RUNS/$1/done" ] && [ -f "$RUNS/$1/last/meta.json" ]; then
    if [ -f "$RESULTS/$1.json" ]; then
      fresh_if_missing "$1" "$2" "$3"
      called_if_missing "$1" "$2" "$3"
    else
      train_eval "$@"
    fi
  else
    [ -f "$RESULTS/$1.json" ] && echo "== $1: checkpoint gone, re-training it (its record is replaced)"
    train_eval "$@"
  fi
  probe_depth "$1"
}

spawn() {  # run in the background, at most JOBS at a time
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  run "$@" &
}

finished() {  # fail unless each named run has its record (background exit codes can be reaped early)
  local name
  for name in "$@"; do
    [ -f "$RESULTS/$name.json" ] || { echo "$name failed; see $RUNS/$name/train.log and eval.log" >&2; exit 1; }
  done
}

needs_teacher=0
for a in baseline_warm student_nodistill student student_light ablate_imd ablate_cmd ablate_mmd_feat ablate_mmd_pred ablate_gcm ablate_init student_depth student_v3 baseline_depth_warm ablate_v3_imd ablate_v3_cmd ablate_v3_mmd_feat ablate_v3_mmd_pred; do
  if wanted "$a"; then
    for s in $SEEDS; do
      if one_seed "$a"; then n=$a; else n=${a}_s$s; fi
      [ -f "$RESULTS/$n.json" ] || needs_teacher=1
    done
  fi
done
if wanted teacher && [ ! -f "$RESULTS/teacher.json" ]; then needs_teacher=1; fi

FIRST_SEED=${SEEDS%% *}
read -r -a LINEAGE <<<"$LINEAGE_ARGS"
if [ -n "$LINEAGE_ARGS" ]; then CAMERA_STAGE=camera_stage CAMERA_ARM=camera_stage; else
  CAMERA_STAGE="baseline_s$FIRST_SEED" CAMERA_ARM=baseline; fi
TEACHER=${TEACHER:-$RUNS/teacher/last}
if [ "$TEACHER" != "$RUNS/teacher/last" ]; then
  [ -f "$TEACHER/meta.json" ] || { echo "TEACHER=$TEACHER is not a checkpoint (no meta.json)" >&2; exit 1; }
  echo "== teacher: $TEACHER (given, not trained here)"
  needs_teacher=0
elif [ -f "$RUNS/teacher/done" ] && [ -f "$TEACHER/meta.json" ] && [ -f "$RESULTS/teacher.json" ]; then
  needs_teacher=0  # on disk: its camera stage is not needed again
fi
if [ "$needs_teacher" = 1 ]; then
  # BEVFusion's order: the camera-only model first (it is also the first baseline seed), then the teacher
  # from its camera branch, decoder and head with the LiDAR branch and fuser added.
  # the other baseline seeds one after the other in the background, beside the camera stage and teacher
  (for s in $SEEDS; do [ "baseline_s$s" = "$CAMERA_STAGE" ] || run "baseline_s$s" baseline "$s" baseline; done) &
  ensure "$CAMERA_STAGE" "$CAMERA_ARM" "$FIRST_SEED" baseline "${LINEAGE[@]}"
  ensure teacher teacher "$FIRST_SEED" teacher --init-from "$RUNS/$CAMERA_STAGE/last" "${LINEAGE[@]}"
  if [ ! -f "$RESULTS/teacher_probe.json" ]; then
    $PY -m simdistill_ros.evaluation.bev_probe --model "$RUNS/$CAMERA_STAGE/last" --model "$TEACHER" \
      --data "$DATA" --split val --frames 40 --out "$RESULTS/teacher_probe.json" >/dev/null
  fi
else
  for s in $SEEDS; do spawn "baseline_s$s" baseline "$s" baseline; done
fi
# a teacher recorded before the fresh world (the branch above skips a recorded teacher)
if wanted teacher && [ -f "$RESULTS/teacher.json" ]; then fresh_if_missing teacher teacher "$FIRST_SEED"; fi
START=(--init-from "$TEACHER")
for s in $SEEDS; do
  spawn "baseline_warm_s$s" baseline_warm "$s" baseline "${START[@]}"
  spawn "student_nodistill_s$s" student_nodistill "$s" student "${START[@]}" --disable distill
  spawn "student_s$s" student "$s" student --teacher "$TEACHER" "${START[@]}"
done
spawn student_light student_light "$FIRST_SEED" student --teacher "$TEACHER" "${START[@]}" \
  --sim-channels 8 --sim-depthnet-channels 32 --sim-gcm-stride 2
spawn ablate_imd ablate_imd "$FIRST_SEED" student --teacher "$TEACHER" "${START[@]}" --disable imd
spawn ablate_cmd ablate_cmd "$FIRST_SEED" student --teacher "$TEACHER" "${START[@]}" --disable cmd
spawn ablate_mmd_feat ablate_mmd_feat "$FIRST_SEED" student --teacher "$TEACHER" "${START[@]}" --disable mmd_feat
spawn ablate_mmd_pred ablate_mmd_pred "$FIRST_SEED" student --teacher "$TEACHER" "${START[@]}" --disable mmd_pred
spawn ablate_gcm ablate_gcm "$FIRST_SEED" student --teacher "$TEACHER" "${START[@]}" --disable gcm
spawn ablate_init ablate_init "$FIRST_SEED" student --teacher "$TEACHER"
read -r -a V3 <<<"$V3_ARGS"
for s in $SEEDS; do
  spawn "baseline_long_s$s" baseline_long "$s" baseline
  spawn "baseline_depth_long_s$s" baseline_depth_long "$s" baseline --depth-weight "$DEPTH_WEIGHT"
  spawn "student_depth_s$s" student_depth "$s" student --teacher "$TEACHER" "${START[@]}" \
    --depth-weight "$DEPTH_WEIGHT"
  spawn "student_v3_s$s" student_v3 "$s" student --teacher "$TEACHER" "${START[@]}" "${V3[@]}"
  spawn "baseline_depth_warm_s$s" baseline_depth_warm "$s" baseline "${START[@]}" --depth-weight "$DEPTH_WEIGHT"
done
for term in imd cmd mmd_feat mmd_pred; do
  spawn "ablate_v3_$term" "ablate_v3_$term" "$FIRST_SEED" student --teacher "$TEACHER" "${START[@]}" "${V3[@]}" \
    --disable "$term"
done
wait

expected=()
for a in $ALL; do
  wanted "$a" || continue
  if one_seed "$a"; then expected+=("$a"); else for s in $SEEDS; do expected+=("${a}_s$s"); done; fi
done
finished "${expected[@]}"
echo
$PY tools/reproduction_table.py fair "$RESULTS" | tee "$RESULTS/table.md"
