"""Box3D lists -> the fields of vision_msgs/Detection3DArray and visualization_msgs/MarkerArray, and back.

Plain dataclasses, no ROS: :mod:`simdistill_ros.detection.ros_messages` copies them into real message
classes. Reading (:func:`boxes_from_detection_array`) uses attribute access only, so it takes rclpy and
rosbags messages alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simdistill_ros.classes import CLASS_COLOR
from simdistill_ros.geometry import Box3D, quat_to_yaw, quat_xyzw_to_wxyz

# visualization_msgs/Marker constants (fixed by the message definition)
MARKER_LINE_LIST = 5
MARKER_TEXT_VIEW_FACING = 9
MARKER_ADD = 0
MARKER_DELETEALL = 3

# Box edges as corner index pairs (Box3D.corners order: bottom face, then top face) plus a heading tick.
_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)]


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


@dataclass
class MarkerFields:
    """One visualization_msgs/Marker (pose is identity for LINE_LIST, whose points are in frame_id)."""

    ns: str
    id: int
    type: int
    action: int
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    orientation_xyzw: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    color_rgba: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    points: list[tuple[float, float, float]] = field(default_factory=list)
    text: str = ""


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


def marker_fields(
    boxes: list[Box3D], line_width: float = 0.08, text_height: float = 0.8
) -> list[MarkerFields]:
    """A DELETEALL marker (clears the previous frame's), then per box its edges (LINE_LIST, class colour)
    and a TEXT_VIEW_FACING label "class score" above it."""
    out = [MarkerFields(ns="", id=0, type=MARKER_LINE_LIST, action=MARKER_DELETEALL)]
    for i, b in enumerate(boxes):
        r, g, bl = CLASS_COLOR[b.label]
        corners = b.corners()
        front = b.center + np.array([np.cos(b.yaw), np.sin(b.yaw), 0.0]) * b.size[0] / 2
        bottom = b.center - np.array([0.0, 0.0, b.size[2] / 2])
        pts = [tuple(float(v) for v in corners[j]) for e in _EDGES for j in e]
        pts += [tuple(float(v) for v in bottom), tuple(float(v) for v in front - [0.0, 0.0, b.size[2] / 2])]
        out.append(
            MarkerFields(
                ns="boxes",
                id=i,
                type=MARKER_LINE_LIST,
                action=MARKER_ADD,
                scale=(line_width, 0.0, 0.0),
                color_rgba=(r, g, bl, 1.0),
                points=pts,
            )
        )
        top = b.center + np.array([0.0, 0.0, b.size[2] / 2 + 0.6])
        out.append(
            MarkerFields(
                ns="labels",
                id=i,
                type=MARKER_TEXT_VIEW_FACING,
                action=MARKER_ADD,
                position=tuple(float(v) for v in top),
                scale=(0.0, 0.0, text_height),
                color_rgba=(r, g, bl, 1.0),
                text=f"{b.label} {b.score:.2f}",
            )
        )
    return out


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


def box_record(b: Box3D) -> dict:
    """JSON-friendly record of a box (what the recorder writes)."""
    return {
        "label": b.label,
        "score": float(b.score),
        "center": [float(v) for v in b.center],
        "size": [float(v) for v in b.size],
        "yaw": float(b.yaw),
        "id": b.instance_id,
    }


def box_from_record(r: dict) -> Box3D:
    """Inverse of :func:`box_record`."""
    return Box3D(r["center"], r["size"], r["yaw"], r["label"], score=r["score"], instance_id=r.get("id", ""))
