"""Box3D lists <-> the fields of vision_msgs/Detection3DArray (no ROS).

Detection3DArray has no velocity field: boxes read back from it have zero velocity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simdistill_ros.geometry import Box3D, quat_to_yaw, quat_xyzw_to_wxyz


@dataclass
class DetectionFields:
    """One vision_msgs/Detection3D: a single hypothesis (nuScenes class name, score) with the box pose.

    position (3,) and orientation_xyzw (4,) form bbox.center (also the hypothesis pose); size is (length,
    width, height) = bbox.size (x along the heading)."""

    id: str
    class_id: str
    score: float
    position: tuple[float, float, float]
    orientation_xyzw: tuple[float, float, float, float]
    size: tuple[float, float, float]


@dataclass
class DetectionArrayFields:
    """vision_msgs/Detection3DArray: header (stamp = the frame's stamp, frame_id = the base frame)."""

    stamp_ns: int
    frame_id: str
    detections: list[DetectionFields] = field(default_factory=list)


def detection_id(stamp_ns: int, index: int) -> str:
    """A stable id: the same frame and rank give the same string live and offline."""
    return f"{int(stamp_ns)}-{index}"


def detection_array_fields(boxes: list[Box3D], stamp_ns: int, frame_id: str) -> DetectionArrayFields:
    """Fields of a Detection3DArray of base-frame ``boxes`` (in the given order)."""
    dets = []
    for i, b in enumerate(boxes):
        pos, q = b.ros_pose()
        dets.append(
            DetectionFields(
                id=detection_id(stamp_ns, i),
                class_id=b.label,
                score=float(b.score),
                position=tuple(float(v) for v in pos),
                orientation_xyzw=tuple(float(v) for v in q),
                size=tuple(float(v) for v in b.size),
            )
        )
    return DetectionArrayFields(int(stamp_ns), frame_id, dets)


def boxes_from_detection_array(msg: Any) -> list[Box3D]:
    """Box3D list of a Detection3DArray (rclpy or rosbags message); velocity is not carried (zero)."""
    boxes = []
    for det in msg.detections:
        c = det.bbox.center
        q = quat_xyzw_to_wxyz(np.array([c.orientation.x, c.orientation.y, c.orientation.z, c.orientation.w]))
        hyp = det.results[0].hypothesis if det.results else None
        boxes.append(
            Box3D(
                [c.position.x, c.position.y, c.position.z],
                [det.bbox.size.x, det.bbox.size.y, det.bbox.size.z],
                quat_to_yaw(q),
                hyp.class_id if hyp is not None else "car",
                score=float(hyp.score) if hyp is not None else 1.0,
                instance_id=det.id,
            )
        )
    return boxes
