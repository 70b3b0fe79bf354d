"""Record vision_msgs/Detection3DArray messages to JSON (and optionally nuScenes results).

    python -m simdistill_ros.nodes.detection_recorder --out rec.json [--topic /simdistill_detector/detections]
        [--count N] [--idle 5] [--timeout 120] [--data DIR --split val --results results.json]

Exits after ``--count`` messages, after ``--idle`` seconds without one (once one has come), at
``--timeout``, or on Ctrl-C; the JSON is written in every case. The JSON holds one entry per message:
``{"stamp_ns", "frame_id", "boxes": [{"label", "score", "center", "size", "yaw", "id"}]}``.
With ``--data`` the frames are matched to the dataset's samples by stamp and written as nuScenes results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from simdistill_ros.dataset.ground_truth import GroundTruthIndex
from simdistill_ros.dataset.nuscenes_tables import load_split_samples
from simdistill_ros.detection.messages import box_from_record, box_record, boxes_from_detection_array
from simdistill_ros.evaluation.nuscenes_eval import results_from_boxes
from simdistill_ros.frames.messages import stamp_to_ns


def recording_to_results(frames: list[dict], dataroot: str | Path, split: str) -> tuple[dict, int]:
    """(nuScenes results dict, frames matched) for recorded frames; unmatched samples get no boxes."""
    samples = load_split_samples(dataroot, split)
    ground_truth = GroundTruthIndex(samples)
    per_sample: dict[str, list] = {s.token: [] for s in samples}
    matched = 0
    for f in frames:
        sample = ground_truth.lookup(f["stamp_ns"])
        if sample is None:
            continue
        per_sample[sample.token] = [box_from_record(b) for b in f["boxes"]]
        matched += 1
    poses = {s.token: s.ego_pose for s in samples}
    return results_from_boxes(per_sample, poses, meta={"source": "detector_node (live)"}), matched


def record(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from vision_msgs.msg import Detection3DArray

    frames: list[dict[str, Any]] = []
    last = [0.0]

    def on_msg(msg: Any) -> None:
        frames.append(
            {
                "stamp_ns": stamp_to_ns(msg.header.stamp),
                "frame_id": msg.header.frame_id,
                "received_s": time.time(),
                "boxes": [box_record(b) for b in boxes_from_detection_array(msg)],
            }
        )
        last[0] = time.monotonic()

    rclpy.init()
    node = rclpy.create_node(args.node_name)
    sub = node.create_subscription(
        Detection3DArray, args.topic, on_msg, QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    )
    start = time.monotonic()
    matched = False
    try:
        while rclpy.ok():
            rclpy.spin_once(node, timeout_sec=0.1)
            now = time.monotonic()
            if not matched and sub.get_publisher_count() > 0:
                matched = True  # scripts wait for this line before they start the input
                print(f"detection_recorder: publisher matched on {args.topic}", flush=True)
            if args.count and len(frames) >= args.count:
                break
            if frames and args.idle > 0 and now - last[0] > args.idle:
                break
            if args.timeout > 0 and now - start > args.timeout:
                break
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"topic": args.topic, "frames": frames}, indent=1))
    print(f"detection_recorder: {len(frames)} messages on {args.topic} -> {out}", flush=True)
    if args.data:
        results, matched = recording_to_results(frames, args.data, args.split)
        res_path = Path(args.results or out.with_name(out.stem + "_results.json"))
        res_path.write_text(json.dumps(results))
        print(f"detection_recorder: {matched} frames matched {args.split} samples -> {res_path}", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="detection_recorder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--topic",
        default="/simdistill_detector/detections",
        help="the Detection3DArray topic (default /simdistill_detector/detections)",
    )
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--count", type=int, default=0, help="stop after this many messages (default 0: no limit)")
    p.add_argument(
        "--idle",
        type=float,
        default=0.0,
        help="stop this many seconds after the last message (default 0: off)",
    )
    p.add_argument(
        "--timeout", type=float, default=0.0, help="stop after this many seconds in all (default 0: off)"
    )
    p.add_argument("--data", help="dataset root: also write nuScenes results for --split")
    p.add_argument("--split", default="val", help="the dataset split the frames belong to (default val)")
    p.add_argument("--results", help="nuScenes results JSON path (default: <out>_results.json)")
    p.add_argument(
        "--node-name", default="detection_recorder", help="the ROS node name (default detection_recorder)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    return record(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
