"""Minimal teacher boxes -> vision_msgs/Detection3DArray (the detector node has the full conversion)."""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Time
from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose

from simdistill_ros.classes import NUSCENES_CLASSES


def stamp_msg(stamp_ns: int) -> Time:
    return Time(sec=int(stamp_ns // 1_000_000_000), nanosec=int(stamp_ns % 1_000_000_000))


def detections_to_msg(
    boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, stamp_ns: int, frame_id: str = "base_link"
) -> Detection3DArray:
    """Boxes (M, 9) [x, y, z, l, w, h, yaw, vx, vy] in ``frame_id``, scores (M,), labels (M,) class indices.

    class_id is the nuScenes class name; bbox.size is (length, width, height); the velocity has no field in
    Detection3D and is dropped."""
    out = Detection3DArray()
    out.header.stamp = stamp_msg(stamp_ns)
    out.header.frame_id = frame_id
    for box, score, label in zip(np.asarray(boxes, np.float64), scores, labels):
        det = Detection3D()
        det.header = out.header
        x, y, z, length, width, height, yaw = (float(v) for v in box[:7])
        det.bbox.center.position.x, det.bbox.center.position.y, det.bbox.center.position.z = x, y, z
        det.bbox.center.orientation.z = math.sin(yaw / 2)  # rotation about +z only
        det.bbox.center.orientation.w = math.cos(yaw / 2)
        det.bbox.size.x, det.bbox.size.y, det.bbox.size.z = length, width, height
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = NUSCENES_CLASSES[int(label)]
        hyp.hypothesis.score = float(score)
        hyp.pose.pose = det.bbox.center
        det.results.append(hyp)
        out.detections.append(det)
    return out
