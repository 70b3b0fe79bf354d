#!/usr/bin/env bash
# The main job, end to end on a small synthetic world:
#   1. synthesize 2 scenes (6 cameras + LiDAR bags, nuScenes tables) and check the metric (GT = mAP 1.0)
#   2. live: bag_player -> detector_node (shipped baseline_v3) -> detection_recorder, three ROS 2 processes; the
#      node publishes Detection3DArray and Autoware DetectedObjects (velocity), the recorder takes both
#   3. offline: `simdistill detect` on the same bag: output bag (both messages) + per-frame pictures (BEV +
#      cameras) + overview
#   4. official nuScenes metrics of the live detections (mAVE from the published velocity) and of the bag
#   5. the report: what ran, frames, the live metrics beside the model card's, where the outputs are
#      (tools/demo_report.py)
# MODEL=path/to/checkpoint uses another checkpoint; SCORE, RATE (player speed factor) are tunable.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/demo}
PY=$PWD/.venv/bin/python
MODEL=${MODEL:-baseline_v3}
SCORE=${SCORE:-0.25}
RATE=${RATE:-0.1}
FRAMES=6  # per scene
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$((RANDOM % 100 + 1))}
start=$(date +%s)

if ! MODEL_DIR=$($PY -c "from simdistill_ros.models.checkpoint import resolve_model_path as r; print(r('$MODEL'))" 2>/dev/null) \
   || [ ! -f "$MODEL_DIR/model.safetensors" ]; then
  echo "demo: error: model '$MODEL' not found (models/baseline_v3 ships with the package; train your own" >&2
  echo "      with \`make reproduce\` + tools/ship_models.py, or pass MODEL=/path/to/checkpoint)" >&2
  exit 1
fi
# the synthetic world the model was trained on (its meta.json; models without the key: world v1, 160x400)
read -r WORLD SIZE < <($PY -c "import json, sys; w = json.load(open(sys.argv[1])).get('synthetic_world', {}); \
print(w.get('world', 'v1'), w.get('image_size', '160x400'))" "$MODEL_DIR/meta.json")
echo "== model: $MODEL_DIR; ROS_DOMAIN_ID=$ROS_DOMAIN_ID (the demo takes 1-3 min on 2 cores)"

echo "== 1/5 synthesize 2 scenes x 6 frames (6 cameras + LiDAR, world $WORLD, $SIZE) into $OUT"
$PY -m simdistill_ros.cli synth --out "$OUT" --world "$WORLD" --scenes 2 --frames-per-scene "$FRAMES" --seed 7 \
  --render-size "$SIZE" --overwrite
# The metric's sanity check (ground truth scored as detections must give mAP 1.0); the report quotes it.
$PY -m simdistill_ros.cli evaluate --data "$OUT" --split val --gt-as-results --out "$OUT/sanity" > "$OUT/sanity.log"
VAL=$($PY -c "import json; print(json.load(open('$OUT/v1.0-synth/splits.json'))['val'][0])")
BAG="$OUT/bags/$VAL"
LIVE="$OUT/live"
rm -rf "$LIVE" "$OUT/detect_bag" "$OUT/pictures" "$OUT/offline_eval"
mkdir -p "$LIVE"

echo "== 2/5 live: bag_player ($VAL at ${RATE}x) -> detector_node -> detection_recorder"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
# frame_queue_size: keep every frame here (a CPU student is slower than 12 Hz; live it would drop old ones)
$PY -m simdistill_ros.nodes.detector_node --ros-args -p model:="$MODEL_DIR" -p score_threshold:="$SCORE" \
  -p frame_queue_size:=100 -p "outputs:=[vision_msgs, autoware]" > "$LIVE/node.log" 2>&1 &
NODE=$!; pids+=("$NODE")
$PY -m simdistill_ros.nodes.detection_recorder --out "$LIVE/detections.json" --count "$FRAMES" --timeout 240 \
  --objects-topic /simdistill_detector/objects --data "$OUT" --split val --results "$LIVE/results.json" \
  > "$LIVE/recorder.log" 2>&1 &
REC=$!; pids+=("$REC")
for _ in $(seq 300); do  # input before the recorder sees the node's publisher would be lost
  grep -q "publisher matched" "$LIVE/recorder.log" 2>/dev/null && break
  kill -0 "$NODE" 2>/dev/null || { echo "demo: detector_node exited:" >&2; cat "$LIVE/node.log" >&2; exit 1; }
  sleep 0.2
done
$PY -m simdistill_ros.nodes.bag_player "$BAG" --rate "$RATE" --wait-subscribers 30 --topics \
  $(for c in CAM_FRONT CAM_FRONT_RIGHT CAM_BACK_RIGHT CAM_BACK CAM_BACK_LEFT CAM_FRONT_LEFT; do
      echo "/$c/image_rect_compressed /$c/camera_info"; done) /tf_static
wait "$REC" || true
kill -INT "$NODE"; wait "$NODE" || true
trap - EXIT
cat "$LIVE/recorder.log"
grep -E "stopped:|skipped|ERROR" "$LIVE/node.log" || true

echo "== 3/5 offline: simdistill detect on the same bag (output bag + pictures)"
$PY -m simdistill_ros.cli detect --model "$MODEL_DIR" --bag "$BAG" --out "$OUT/detect_bag" --png "$OUT/pictures" \
  --data "$OUT" --score-threshold "$SCORE" --outputs vision_msgs autoware | tee "$OUT/detect.log"

echo "== 4/5 official nuScenes metrics of the live detections ($VAL; full table in $LIVE/eval/report.txt)"
mkdir -p "$LIVE/eval"
$PY -m simdistill_ros.cli evaluate --data "$OUT" --split val --results "$LIVE/results.json" --out "$LIVE/eval" \
  > "$LIVE/eval/report.txt"
# the offline bag scored from its messages: boxes from Detection3DArray, velocity from DetectedObjects
$PY -m simdistill_ros.cli evaluate --data "$OUT" --split val --detections "$OUT/detect_bag" \
  --out "$OUT/offline_eval" > "$OUT/offline_eval.txt"
echo "== 5/5 report"
$PY tools/demo_report.py "$OUT" --model "$MODEL_DIR" --scene "$VAL" --frames "$FRAMES" \
  --seconds "$(($(date +%s) - start))"
