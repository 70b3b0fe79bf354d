"""Rigid transforms and unit quaternions.

Quaternions are stored (w, x, y, z) as nuScenes does; ROS messages order them (x, y, z, w), so the
conversions at the message edge use :func:`quat_wxyz_to_xyzw` / :func:`quat_xyzw_to_wxyz`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _normalized(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    n = np.linalg.norm(q)
    if not np.isfinite(n) or n < 1e-12:
        raise ValueError(f"quaternion {q.tolist()} has no direction (norm {n})")
    return q / n


def quat_to_matrix(q_wxyz: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) of a quaternion (w, x, y, z); the quaternion need not be unit length."""
    w, x, y, z = _normalized(q_wxyz)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat(r: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) with w >= 0 of a rotation matrix (3, 3)."""
    r = np.asarray(r, dtype=np.float64)
    tr = np.trace(r)
    # Branch on the largest diagonal term to keep the square root well conditioned.
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = 2.0 * np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
        q = [(r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s]
    elif r[1, 1] > r[2, 2]:
        s = 2.0 * np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2])
        q = [(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1])
        q = [(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s]
    q = _normalized(np.array(q))
    return -q if q[0] < 0 else q


def yaw_to_quat(yaw: float) -> np.ndarray:
    """Quaternion (w, x, y, z) of a rotation by ``yaw`` radians about +z."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def quat_to_yaw(q_wxyz: np.ndarray) -> float:
    """Heading about +z of a quaternion (w, x, y, z): the angle of the rotated x axis in the xy plane."""
    r = quat_to_matrix(q_wxyz)
    return float(np.arctan2(r[1, 0], r[0, 0]))


def quat_wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return np.array([q[1], q[2], q[3], q[0]])


def quat_xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return np.array([q[3], q[0], q[1], q[2]])


def rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def wrap_angle(a: np.ndarray | float) -> np.ndarray | float:
    """Angle(s) wrapped to [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


@dataclass(frozen=True)
class Transform:
    """A rigid transform ``p_parent = R @ p_child + t`` (child frame expressed in the parent frame)."""

    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def __post_init__(self) -> None:
        r = np.asarray(self.rotation, dtype=np.float64).reshape(3, 3)
        t = np.asarray(self.translation, dtype=np.float64).reshape(3)
        if not (np.isfinite(r).all() and np.isfinite(t).all()):
            raise ValueError("transform has non-finite values")
        if not np.allclose(r @ r.T, np.eye(3), atol=1e-5) or np.linalg.det(r) < 0:
            raise ValueError("transform rotation is not a proper rotation matrix")
        object.__setattr__(self, "rotation", r)
        object.__setattr__(self, "translation", t)

    @classmethod
    def identity(cls) -> Transform:
        return cls()

    @classmethod
    def from_quat(cls, translation: np.ndarray, quat_wxyz: np.ndarray) -> Transform:
        return cls(quat_to_matrix(quat_wxyz), np.asarray(translation, dtype=np.float64))

    @classmethod
    def from_matrix(cls, m: np.ndarray) -> Transform:
        m = np.asarray(m, dtype=np.float64)
        return cls(m[:3, :3], m[:3, 3])

    @classmethod
    def from_xyz_yaw(cls, x: float, y: float, z: float, yaw: float) -> Transform:
        return cls(rotation_z(yaw), np.array([x, y, z], dtype=np.float64))

    @property
    def quat_wxyz(self) -> np.ndarray:
        return matrix_to_quat(self.rotation)

    @property
    def yaw(self) -> float:
        return float(np.arctan2(self.rotation[1, 0], self.rotation[0, 0]))

    def matrix(self) -> np.ndarray:
        """Homogeneous matrix (4, 4)."""
        m = np.eye(4)
        m[:3, :3] = self.rotation
        m[:3, 3] = self.translation
        return m

    def inverse(self) -> Transform:
        rt = self.rotation.T
        return Transform(rt, -rt @ self.translation)

    def __matmul__(self, other: Transform) -> Transform:
        """Composition: ``(a @ b)`` maps b's child frame into a's parent frame."""
        return Transform(self.rotation @ other.rotation, self.rotation @ other.translation + self.translation)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform points (N, 3) (extra columns are passed through unchanged)."""
        points = np.asarray(points)
        out = points.astype(np.float64, copy=True)
        out[:, :3] = points[:, :3] @ self.rotation.T + self.translation
        return out

    def apply_vector(self, vectors: np.ndarray) -> np.ndarray:
        """Rotate direction vectors (N, 3) (no translation)."""
        return np.asarray(vectors, dtype=np.float64) @ self.rotation.T
