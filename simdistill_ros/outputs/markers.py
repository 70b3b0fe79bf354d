"""Box3D lists -> the fields of visualization_msgs/MarkerArray for RViz and Foxglove (no ROS): per box its
edges, a "class score" label and, for a moving box, a velocity arrow."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simdistill_ros.classes import CLASS_COLOR
from simdistill_ros.geometry import Box3D

# visualization_msgs/Marker constants (fixed by the message definition)
MARKER_ARROW = 0
MARKER_LINE_LIST = 5
MARKER_TEXT_VIEW_FACING = 9
MARKER_ADD = 0
MARKER_DELETEALL = 3
# Slower boxes get no arrow: an arrow shorter than this many metres (1 s of travel) is unreadable.
MIN_ARROW_SPEED = 0.2

# Box edges as corner index pairs (Box3D.corners order: bottom face, then top face) plus a heading tick.
_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)]


@dataclass
class MarkerFields:
    """One visualization_msgs/Marker (pose is identity for LINE_LIST and ARROW, whose points are in
    frame_id)."""

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


def _point(v: np.ndarray) -> tuple[float, float, float]:
    return tuple(float(x) for x in v)


def marker_fields(
    boxes: list[Box3D], line_width: float = 0.08, text_height: float = 0.8
) -> list[MarkerFields]:
    """A DELETEALL marker (clears the previous frame's), then per box its edges (LINE_LIST, class colour),
    a TEXT_VIEW_FACING label "class score" above it and, when it moves at ``MIN_ARROW_SPEED`` or more, an
    ARROW from its top centre to where it will be in one second (ns "velocity", the box's id)."""
    out = [MarkerFields(ns="", id=0, type=MARKER_LINE_LIST, action=MARKER_DELETEALL)]
    for i, b in enumerate(boxes):
        r, g, bl = CLASS_COLOR[b.label]
        corners = b.corners()
        front = b.center + np.array([np.cos(b.yaw), np.sin(b.yaw), 0.0]) * b.size[0] / 2
        bottom = b.center - np.array([0.0, 0.0, b.size[2] / 2])
        pts = [_point(corners[j]) for e in _EDGES for j in e]
        pts += [_point(bottom), _point(front - [0.0, 0.0, b.size[2] / 2])]
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
                position=_point(top),
                scale=(0.0, 0.0, text_height),
                color_rgba=(r, g, bl, 1.0),
                text=f"{b.label} {b.score:.2f}",
            )
        )
        if float(np.hypot(*b.velocity)) >= MIN_ARROW_SPEED:
            start = b.center + np.array([0.0, 0.0, b.size[2] / 2])
            end = start + np.array([b.velocity[0], b.velocity[1], 0.0])
            out.append(
                MarkerFields(
                    ns="velocity",
                    id=i,
                    type=MARKER_ARROW,
                    action=MARKER_ADD,
                    # shaft diameter, head diameter, head length (ARROW given by two points)
                    scale=(0.15, 0.35, 0.4),
                    color_rgba=(r, g, bl, 1.0),
                    points=[_point(start), _point(end)],
                )
            )
    return out
