"""Oriented 3D boxes and their conversions to the nuScenes global convention and to ROS conventions.

A :class:`Box3D` lives in one frame (usually base_link: x forward, y left, z up): ``center`` is the box
centre, ``size`` is (length, width, height) with length along the heading, ``yaw`` is the heading
about +z (0 faces +x), ``velocity`` is (vx, vy) in the same frame. nuScenes orders sizes (w, l, h) and
stores rotations as (w, x, y, z) quaternions in the global frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simdistill_ros.classes import NUSCENES_CLASSES, class_index
from simdistill_ros.geometry.transforms import (
    Transform,
    quat_to_yaw,
    quat_wxyz_to_xyzw,
    rotation_z,
    yaw_to_quat,
)

# Layout of box arrays used between the models and the rest of the code.
BOX_FIELDS = ("x", "y", "z", "length", "width", "height", "yaw", "vx", "vy")


@dataclass
class Box3D:
    center: np.ndarray
    size: np.ndarray  # (length, width, height)
    yaw: float
    label: str
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    score: float = 1.0
    instance_id: str = ""

    def __post_init__(self) -> None:
        self.center = np.asarray(self.center, dtype=np.float64).reshape(3)
        self.size = np.asarray(self.size, dtype=np.float64).reshape(3)
        self.velocity = np.asarray(self.velocity, dtype=np.float64).reshape(2)
        self.yaw = float(self.yaw)
        class_index(self.label)  # validates the name

    @property
    def label_index(self) -> int:
        return class_index(self.label)

    def to_array(self) -> np.ndarray:
        """(9,) = [x, y, z, length, width, height, yaw, vx, vy]."""
        return np.concatenate([self.center, self.size, [self.yaw], self.velocity])

    @classmethod
    def from_array(cls, a: np.ndarray, label: str | int, score: float = 1.0, instance_id: str = "") -> Box3D:
        a = np.asarray(a, dtype=np.float64)
        name = NUSCENES_CLASSES[label] if isinstance(label, (int, np.integer)) else label
        return cls(a[0:3], a[3:6], float(a[6]), name, a[7:9], float(score), instance_id)

    def corners(self) -> np.ndarray:
        """The 8 corners (8, 3): bottom face first (counter-clockwise from front-left seen from above),
        then the top face in the same order."""
        length, width, height = self.size
        x = np.array([1, -1, -1, 1, 1, -1, -1, 1]) * length / 2
        y = np.array([1, 1, -1, -1, 1, 1, -1, -1]) * width / 2
        z = np.array([-1, -1, -1, -1, 1, 1, 1, 1]) * height / 2
        return np.stack([x, y, z], 1) @ rotation_z(self.yaw).T + self.center

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean mask (N,) of points (N, >=3) inside the box (boundary included)."""
        local = (np.asarray(points)[:, :3] - self.center) @ rotation_z(self.yaw)
        half = self.size / 2 + 1e-9
        return np.all(np.abs(local) <= half, axis=1)

    def transformed(self, t: Transform) -> Box3D:
        """The same physical box expressed in t's parent frame (t maps this box's frame into it)."""
        heading = t.rotation @ np.array([np.cos(self.yaw), np.sin(self.yaw), 0.0])
        v = t.rotation @ np.array([self.velocity[0], self.velocity[1], 0.0])
        return Box3D(
            t.apply(self.center[None])[0],
            self.size.copy(),
            float(np.arctan2(heading[1], heading[0])),
            self.label,
            v[:2],
            self.score,
            self.instance_id,
        )

    # nuScenes global convention -------------------------------------------------------------------------
    def to_nuscenes(self, base_to_global: Transform) -> dict:
        """Fields of a nuScenes box (results or sample_annotation) in the global frame."""
        g = self.transformed(base_to_global)
        length, width, height = g.size
        return {
            "translation": g.center.tolist(),
            "size": [float(width), float(length), float(height)],
            "rotation": yaw_to_quat(g.yaw).tolist(),
            "velocity": g.velocity.tolist(),
        }

    @classmethod
    def from_nuscenes(
        cls, record: dict, base_to_global: Transform, label: str, score: float = 1.0, instance_id: str = ""
    ) -> Box3D:
        """Inverse of :meth:`to_nuscenes`: a global-frame nuScenes box expressed in the base frame."""
        w, length, h = record["size"]
        vel = record.get("velocity", [0.0, 0.0])
        vel = [0.0 if not np.isfinite(v) else v for v in vel[:2]]
        g = cls(
            record["translation"],
            [length, w, h],
            quat_to_yaw(record["rotation"]),
            label,
            vel,
            score,
            instance_id,
        )
        return g.transformed(base_to_global.inverse())

    # ROS convention --------------------------------------------------------------------------------------
    def ros_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """(position (3,), orientation quaternion (x, y, z, w)) as geometry_msgs/Pose wants them."""
        return self.center.copy(), quat_wxyz_to_xyzw(yaw_to_quat(self.yaw))


def boxes_to_array(boxes: list[Box3D]) -> tuple[np.ndarray, np.ndarray]:
    """(M, 9) float32 box array and (M,) int64 label indices."""
    if not boxes:
        return np.zeros((0, len(BOX_FIELDS)), np.float32), np.zeros((0,), np.int64)
    return (
        np.stack([b.to_array() for b in boxes]).astype(np.float32),
        np.array([b.label_index for b in boxes], np.int64),
    )


def boxes_from_array(array: np.ndarray, labels: np.ndarray, scores: np.ndarray | None = None) -> list[Box3D]:
    scores = np.ones(len(array)) if scores is None else scores
    return [Box3D.from_array(a, int(lbl), float(s)) for a, lbl, s in zip(array, labels, scores)]


def points_in_boxes(points: np.ndarray, boxes: list[Box3D]) -> np.ndarray:
    """Count (M,) of points (N, >=3) inside each box."""
    return np.array([int(b.contains(points).sum()) for b in boxes], dtype=np.int64)
