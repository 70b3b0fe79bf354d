"""Record vision_msgs/Detection3DArray messages to JSON (and optionally nuScenes results), with the
velocity of the autoware_perception_msgs/DetectedObjects of the same frames.

    python -m simdistill_ros.nodes.detection_recorder --out rec.json [--topic /simdistill_detector/detections]
        [--objects-topic /simdistill_detector/objects] [--count N] [--idle 5] [--timeout 120]
        [--data DIR --split val --results results.json]

Exits after ``--count`` messages, after ``--idle`` seconds without one (once one has come), at
``--timeout``, or on Ctrl-C; the JSON is written in every case. The JSON holds one entry per message:
``{"stamp_ns", "frame_id", "has_velocity", "boxes": [{"label", "score", "center", "size", "yaw",
"velocity", "id"}]}``. With ``--objects-topic`` each frame's boxes get the velocity its DetectedObjects
carried (``has_velocity``; the node publishes both with ``outputs: [vision_msgs, autoware]``), otherwise
zero. With ``--data`` the frames are matched to the dataset's samples by stamp and written as nuScenes
results (mAVE from the recorded velocities).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from simdistill_ros.evaluation.published import results_from_published
from simdistill_ros.frames.messages import stamp_to_ns
from simdistill_ros.outputs import DETECTIONS_TOPIC, OutputsError
from simdistill_ros.outputs.autoware import with_published_velocity
from simdistill_ros.outputs.records import box_from_record, box_record
from simdistill_ros.outputs.vision import boxes_from_detection_array

# After the last detection message, how long to wait for the DetectedObjects of the same frames
OBJECTS_GRACE_S = 3.0


def recording_to_results(frames: list[dict], dataroot: str | Path, split: str) -> tuple[dict, int]:
    """(nuScenes results dict, frames matched) for recorded frames; unmatched samples get no boxes."""
    published = [(f["stamp_ns"], [box_from_record(b) for b in f["boxes"]]) for f in frames]
    return results_from_published(published, dataroot, split)


def record(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from vision_msgs.msg import Detection3DArray

    received: list[tuple[Any, float]] = []  # (Detection3DArray, wall time)
    objects: dict[int, Any] = {}  # stamp_ns -> DetectedObjects
    last = [0.0]

    def on_msg(msg: Any) -> None:
        received.append((msg, time.time()))
        last[0] = time.monotonic()

    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    rclpy.init()
    node = rclpy.create_node(args.node_name)
    sub = node.create_subscription(Detection3DArray, args.topic, on_msg, qos)
    if args.objects_topic:
        from autoware_perception_msgs.msg import DetectedObjects

        node.create_subscription(
            DetectedObjects,
            args.objects_topic,
            lambda m: objects.__setitem__(stamp_to_ns(m.header.stamp), m),
            qos,
        )
    start = time.monotonic()
    matched, done_at = False, None
    try:
        while rclpy.ok():
            rclpy.spin_once(node, timeout_sec=0.1)
            now = time.monotonic()
            if not matched and sub.get_publisher_count() > 0:
                matched = True  # scripts wait for this line before they start the input
                print(f"detection_recorder: publisher matched on {args.topic}", flush=True)
            if done_at is None:
                if args.count and len(received) >= args.count:
                    done_at = now
                elif received and args.idle > 0 and now - last[0] > args.idle:
                    done_at = now
                elif args.timeout > 0 and now - start > args.timeout:
                    break
            if done_at is not None:
                stamps = {stamp_to_ns(m.header.stamp) for m, _ in received}
                if not args.objects_topic or stamps <= set(objects) or now - done_at > OBJECTS_GRACE_S:
                    break
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    frames = [_frame(msg, t, objects) for msg, t in received]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"topic": args.topic, "objects_topic": args.objects_topic or None, "frames": frames}
    out.write_text(json.dumps(doc, indent=1))
    with_velocity = sum(f["has_velocity"] for f in frames)
    print(
        f"detection_recorder: {len(frames)} messages on {args.topic} -> {out}"
        + (f" ({with_velocity} with the velocity of {args.objects_topic})" if args.objects_topic else ""),
        flush=True,
    )
    if args.data:
        results, matched = recording_to_results(frames, args.data, args.split)
        res_path = Path(args.results or out.with_name(out.stem + "_results.json"))
        res_path.write_text(json.dumps(results))
        print(f"detection_recorder: {matched} frames matched {args.split} samples -> {res_path}", flush=True)
    return 0


def _frame(msg: Any, received_s: float, objects: dict[int, Any]) -> dict[str, Any]:
    """The JSON entry of one Detection3DArray, its boxes with the velocity of the frame's DetectedObjects."""
    stamp = stamp_to_ns(msg.header.stamp)
    boxes = boxes_from_detection_array(msg)
    has_velocity = False
    if stamp in objects:
        try:
            boxes, has_velocity = with_published_velocity(boxes, objects[stamp]), True
        except OutputsError as err:  # recorded without velocity, and said why
            print(f"detection_recorder: frame {stamp}: {err}", flush=True)
    return {
        "stamp_ns": stamp,
        "frame_id": msg.header.frame_id,
        "received_s": received_s,
        "has_velocity": has_velocity,
        "boxes": [box_record(b) for b in boxes],
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="detection_recorder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--topic",
        default=DETECTIONS_TOPIC,
        help=f"the Detection3DArray topic (default {DETECTIONS_TOPIC})",
    )
    p.add_argument(
        "--objects-topic",
        help="also the DetectedObjects topic (e.g. /simdistill_detector/objects): each frame's boxes get the "
        "velocity it carried (needs autoware_perception_msgs)",
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
