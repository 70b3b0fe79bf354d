"""Pinhole cameras and the camera rig (cameras plus the LiDAR pose, all in the base frame).

Camera frames are optical frames (x right, y down, z forward), as in nuScenes and in ROS
``*_optical_frame`` conventions; ``cam_to_base`` maps optical-frame points into base_link.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from simdistill_ros.errors import UserError
from simdistill_ros.geometry.transforms import Transform, rotation_z

# Optical frame (x right, y down, z forward) expressed in a body frame (x forward, y left, z up).
OPTICAL_IN_BODY = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


class CalibrationError(UserError, ValueError):
    """A camera's calibration is unusable (zero or non-finite intrinsics, bad size)."""


# A pinhole camera's field of view lies well inside (0, 180) degrees: outside this range a K is a unit
# error or garbage (fx = 1e30 puts every pixel on the optical axis), not a lens.
MIN_FOV_DEG = 1.0
MAX_FOV_DEG = 175.0


def intrinsics_problem(k: np.ndarray, width: int, height: int) -> str | None:
    """Why K (3, 3) cannot describe a real camera taking ``width`` x ``height`` images, or None.

    Checked: finite values, positive focal lengths, a field of view of ``MIN_FOV_DEG``..``MAX_FOV_DEG``
    per axis, fx/fy within 1:4, the principal point within one image size of the image, last row (0, 0, 1).
    """
    k = np.asarray(k, dtype=np.float64)
    if k.shape != (3, 3):
        return f"K has shape {k.shape}, expected (3, 3)"
    values = f"K={k.reshape(-1).tolist()}"
    if not np.isfinite(k).all():
        return f"{values} contains NaN/inf"
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    if fx <= 0 or fy <= 0:
        return f"{values}: focal lengths must be positive (an all-zero K means an uncalibrated CameraInfo)"
    if width <= 0 or height <= 0:
        return f"image size {width}x{height} is empty"
    fov_x = np.degrees(2 * np.arctan(width / (2 * fx)))
    fov_y = np.degrees(2 * np.arctan(height / (2 * fy)))
    if not (MIN_FOV_DEG <= fov_x <= MAX_FOV_DEG and MIN_FOV_DEG <= fov_y <= MAX_FOV_DEG):
        return (
            f"{values}: fx={fx:.4g}, fy={fy:.4g} give a {fov_x:.3g} x {fov_y:.3g} deg field of view for "
            f"{width}x{height} images, outside {MIN_FOV_DEG:g}..{MAX_FOV_DEG:g} deg (K for another "
            "resolution or unit?)"
        )
    if not 0.25 <= fx / fy <= 4.0:
        return f"{values}: fx/fy = {fx / fy:.3g} is not a physical pixel aspect ratio (1:4 to 4:1)"
    if not (-width <= cx <= 2 * width and -height <= cy <= 2 * height):
        return f"{values}: principal point ({cx:.4g}, {cy:.4g}) lies far outside the {width}x{height} image"
    if np.abs(k[2] - (0.0, 0.0, 1.0)).max() > 1e-6 or k[1, 0] != 0.0:
        return f"{values}: not an upper-triangular K with last row (0, 0, 1)"
    return None


@dataclass(frozen=True)
class PinholeCamera:
    """An undistorted pinhole camera.

    ``intrinsics`` is K (3, 3) for images of ``width`` x ``height`` pixels; ``cam_to_base`` places the
    optical frame in the base frame.
    """

    name: str
    width: int
    height: int
    intrinsics: np.ndarray
    cam_to_base: Transform = field(default_factory=Transform)
    frame_id: str = ""

    def __post_init__(self) -> None:
        k = np.asarray(self.intrinsics, dtype=np.float64).reshape(3, 3)
        problem = intrinsics_problem(k, self.width, self.height)
        if problem is not None:
            raise CalibrationError(f"camera {self.name!r}: unusable intrinsics: {problem}")
        object.__setattr__(self, "intrinsics", k)
        if not self.frame_id:
            object.__setattr__(self, "frame_id", self.name)

    @classmethod
    def from_fov(
        cls, name: str, width: int, height: int, hfov_deg: float, cam_to_base: Transform
    ) -> PinholeCamera:
        f = 0.5 * width / np.tan(np.deg2rad(hfov_deg) / 2)
        k = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
        return cls(name, width, height, k, cam_to_base)

    @property
    def base_to_cam(self) -> Transform:
        return self.cam_to_base.inverse()

    def project(self, points_base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project base-frame points (N, 3) to pixels.

        Returns ``(uv (N, 2), depth (N,))``; depth is the optical z and is <= 0 behind the camera.
        """
        p = self.base_to_cam.apply(np.asarray(points_base)[:, :3])
        depth = p[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uvw = p @ self.intrinsics.T
            uv = uvw[:, :2] / uvw[:, 2:3]
        return uv, depth

    def in_image(self, uv: np.ndarray, depth: np.ndarray) -> np.ndarray:
        return (
            (depth > 1e-3)
            & (uv[:, 0] >= 0)
            & (uv[:, 0] < self.width)
            & (uv[:, 1] >= 0)
            & (uv[:, 1] < self.height)
        )

    def scaled(self, width: int, height: int) -> PinholeCamera:
        """The same camera for an image resized to ``width`` x ``height`` (pixel-corner convention)."""
        sx, sy = width / self.width, height / self.height
        k = self.intrinsics.copy()
        k[0] *= sx
        k[1] *= sy
        return replace(self, width=width, height=height, intrinsics=k)


@dataclass(frozen=True)
class CameraRig:
    """Any number of cameras (any intrinsics and resolutions) plus the LiDAR pose, in ``base_frame``."""

    cameras: tuple[PinholeCamera, ...]
    lidar_to_base: Transform | None = None
    base_frame: str = "base_link"
    lidar_frame: str = "LIDAR_TOP"

    def __post_init__(self) -> None:
        object.__setattr__(self, "cameras", tuple(self.cameras))
        if not self.cameras:
            raise CalibrationError("a camera rig needs at least one camera")
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise CalibrationError(f"camera names must be unique, got {names}")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    def __len__(self) -> int:
        return len(self.cameras)

    def camera(self, name: str) -> PinholeCamera:
        for c in self.cameras:
            if c.name == name:
                return c
        raise KeyError(f"rig has no camera {name!r}; it has {self.names}")

    def intrinsics_array(self) -> np.ndarray:
        """(N, 3, 3) float32 stack of K."""
        return np.stack([c.intrinsics for c in self.cameras]).astype(np.float32)

    def cam_to_base_array(self) -> np.ndarray:
        """(N, 4, 4) float32 stack of optical-frame-to-base transforms."""
        return np.stack([c.cam_to_base.matrix() for c in self.cameras]).astype(np.float32)

    def scaled(self, width: int, height: int) -> CameraRig:
        return replace(self, cameras=tuple(c.scaled(width, height) for c in self.cameras))


def camera_mount(x: float, y: float, z: float, yaw_deg: float, pitch_deg: float = 0.0) -> Transform:
    """Optical-frame-to-base transform of a camera at (x, y, z) looking along ``yaw_deg`` (about +z),
    tilted down by ``pitch_deg``."""
    pitch = np.deg2rad(pitch_deg)
    c, s = np.cos(pitch), np.sin(pitch)
    tilt = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # rotation about body y: +pitch looks down
    body = rotation_z(np.deg2rad(yaw_deg)) @ tilt
    return Transform(body @ OPTICAL_IN_BODY, np.array([x, y, z], dtype=np.float64))


# The nuScenes camera layout (approximate mounting positions and headings of its six cameras).
NUSCENES_CAMERAS: tuple[tuple[str, float, float, float, float, float], ...] = (
    # name, x, y, z, yaw_deg, horizontal fov (deg)
    ("CAM_FRONT", 1.70, 0.00, 1.51, 0.0, 64.0),
    ("CAM_FRONT_RIGHT", 1.55, -0.49, 1.50, -55.0, 64.0),
    ("CAM_BACK_RIGHT", 1.05, -0.48, 1.56, -110.0, 64.0),
    ("CAM_BACK", 0.05, 0.00, 1.57, 180.0, 110.0),
    ("CAM_BACK_LEFT", 1.05, 0.48, 1.56, 110.0, 64.0),
    ("CAM_FRONT_LEFT", 1.52, 0.49, 1.51, 55.0, 64.0),
)
NUSCENES_LIDAR_MOUNT = Transform.from_xyz_yaw(0.94, 0.0, 1.84, 0.0)


def nuscenes_like_rig(height: int = 224, width: int = 400) -> CameraRig:
    """A six-camera 360-degree rig laid out like nuScenes', with images of ``height`` x ``width``."""
    cams = [
        PinholeCamera.from_fov(name, width, height, fov, camera_mount(x, y, z, yaw))
        for name, x, y, z, yaw, fov in NUSCENES_CAMERAS
    ]
    return CameraRig(tuple(cams), NUSCENES_LIDAR_MOUNT)
