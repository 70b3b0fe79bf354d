"""`simdistill detect`: the detector node's core run offline over a bag's frames.

Frames come from :class:`simdistill_ros.frames.FrameReader` (the same synchronisation, CameraInfo and tf
handling as training data), detections from :class:`simdistill_ros.detection.DetectorCore` (the node's
code), messages from :mod:`simdistill_ros.outputs` (as the node); so a bag replayed through the live node
publishes what this writes. Output: a rosbag2 (mcap) with the chosen detection topics (``--outputs``:
Detection3DArray, DetectedObjects) and MarkerArray, optional pictures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from pathlib import Path

from simdistill_ros.dataset.ground_truth import GroundTruthIndex
from simdistill_ros.detection.core import DetectorCore, FrameInputError, cameras_from_frame
from simdistill_ros.detection.pictures import frame_picture, save_picture
from simdistill_ros.errors import UserError
from simdistill_ros.frames import BagReader, BagSensors, FrameReader, SensorBagWriter, SensorConfig
from simdistill_ros.frames.assembly import summary_line
from simdistill_ros.frames.sensors import sensor_config_from_args
from simdistill_ros.outputs import (
    DETECTIONS_TOPIC,
    MARKER_ARRAY,
    MARKERS_TOPIC,
    MESSAGE_TYPE,
    OUTPUT_TOPIC,
    VISION_MSGS,
    parse_outputs,
)
from simdistill_ros.outputs.autoware import DEFAULT_ORIENTATION, orientation_availability
from simdistill_ros.outputs.ros import markers_msg, message_class, output_messages

__all__ = ["DETECTIONS_TOPIC", "bag_sensors", "run_detect_command"]


def _ground_truth(gt: GroundTruthIndex, stamp_ns: int) -> list:
    sample = gt.lookup(stamp_ns)
    return sample.boxes if sample is not None else []


def run_detect_command(args: argparse.Namespace) -> int:
    from rclpy.serialization import serialize_message  # rclpy only when the command runs

    bag, out = Path(args.bag), Path(args.out)
    if out.exists():
        raise UserError(f"output bag {out} already exists (remove it first)")
    outputs = parse_outputs(getattr(args, "outputs", None) or [VISION_MSGS])
    orientation = getattr(args, "orientation_availability", DEFAULT_ORIENTATION)
    orientation_availability(orientation)
    for output in outputs:  # a missing message package fails here, before the model loads
        message_class(output)
    gt = GroundTruthIndex.from_dataset(args.data) if getattr(args, "data", None) else GroundTruthIndex([])
    png_dir = Path(args.png) if getattr(args, "png", None) else None
    if png_dir is not None:
        png_dir.mkdir(parents=True, exist_ok=True)
    core = DetectorCore.from_checkpoint(
        args.model,
        args.device,
        args.backend,
        verify=not args.no_verify,
        score_threshold=args.score_threshold,
    )
    for note in core.notes:
        print(f"note: {note}")
    sensors = sensor_config_from_args(args)
    found = bag_sensors(bag, sensors, core.trained_cameras)
    core.camera_names = [c.name for c in found.cameras]
    base_frame = sensors.base_frame
    reader = FrameReader(bag, sensors, model_cameras=core.trained_cameras)
    n_frames = n_boxes = n_gt = 0
    model_ms: list[float] = []
    failed: list[str] = []
    t0 = time.perf_counter()
    with SensorBagWriter(out, storage="mcap") as writer:
        for frame in reader:
            try:
                result = core.detect_frame(frame)
            except FrameInputError as err:  # one bad frame must not end the run (as in the node)
                failed.append(f"{frame.stamp_ns}: {err}")
                continue
            messages = output_messages(result.boxes, frame.stamp_ns, base_frame, outputs, orientation)
            for output, msg in messages.items():
                topic, msgtype = OUTPUT_TOPIC[output], MESSAGE_TYPE[output]
                writer.write_serialized(topic, msgtype, serialize_message(msg), frame.stamp_ns)
            mk_msg = markers_msg(result.boxes, frame.stamp_ns, base_frame)
            writer.write_serialized(MARKERS_TOPIC, MARKER_ARRAY, serialize_message(mk_msg), frame.stamp_ns)
            n_frames += 1
            n_gt += int(gt.lookup(frame.stamp_ns) is not None)
            n_boxes += len(result.boxes)
            model_ms.append(result.model_ms)
            if png_dir is not None:
                cams = cameras_from_frame(frame)
                picture = frame_picture(
                    [c.image for c in cams],
                    frame.rig.cameras,
                    result.boxes,
                    _ground_truth(gt, frame.stamp_ns),
                )
                save_picture(picture, png_dir / f"frame_{frame.index:04d}_{frame.stamp_ns}.png")
    overview = None
    if png_dir is not None:
        from simdistill_ros.detection.pictures import write_overview

        overview = write_overview(png_dir)
    seconds = time.perf_counter() - t0
    median = statistics.median(model_ms) if model_ms else float("nan")
    print(
        f"detect: {n_frames} frames, {n_boxes} detections (score >= {args.score_threshold}) with "
        f"{core.model_type} ({core.runs_on}) on {core.device}; model median {median:.1f} ms/frame; "
        f"{seconds:.1f} s in all"
    )
    print(f"  bag reader: {reader.stats}")
    if failed:
        print(f"  {len(failed)} frames failed: {failed[0]}" + (" ..." if len(failed) > 1 else ""))
    print(
        f"  wrote {out} ({', '.join(OUTPUT_TOPIC[o] for o in outputs)}, {MARKERS_TOPIC})"
        + (f" and pictures in {png_dir}" if png_dir else "")
        + (f" (overview: {overview})" if overview else "")
    )
    skipped = Counter(reader.stats.skipped)
    if failed:
        skipped["bad input"] += len(failed)
    if gt.samples and n_gt < n_frames:
        print(f"warning: {n_frames - n_gt} of {n_frames} frames match no ground-truth sample of {args.data}")
    print(summary_line("detect", n_frames, skipped, gt_matched=n_gt if gt.samples else None))
    if not n_frames:
        raise UserError(
            f"{args.bag}: no frame could be detected on ({reader.stats}); fix what the bag reader names"
        )
    return 1 if skipped and getattr(args, "strict", False) else 0


def bag_sensors(bag: Path, sensors: SensorConfig, model_cameras: list[str] | None) -> BagSensors:
    """The bag's cameras in model order, told to the user with the recognised layout and any warning."""
    with BagReader(bag) as reader:
        found = reader.sensors(sensors, model_cameras)
    print(found.describe())
    for warning in found.warnings:
        print(f"warning: {warning}")
    return found
