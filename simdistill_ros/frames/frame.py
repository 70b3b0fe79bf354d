"""One synchronised multi-camera frame read from a bag."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simdistill_ros.geometry import CameraRig, Transform


@dataclass
class Frame:
    """Images of every camera at one reference stamp, with the rig calibrated at that instant.

    ``rig`` holds the intrinsics (from CameraInfo) and the camera-to-base extrinsics (from tf at each
    image's stamp), and ``rig.lidar_to_base`` when a LiDAR sweep is attached. ``points`` is that sweep,
    (N, 4) [x, y, z, intensity] float32 in the base frame (at the sweep's own stamp ``lidar_stamp_ns``).
    ``ego_pose`` is the base frame in the world frame (``map``) at ``stamp_ns`` when /tf has it.
    ``assumed``: topic -> what was assumed for an input its message lacks (a cloud without intensity, a
    distorting camera used as if rectified); empty when nothing was.
    """

    stamp_ns: int
    images: dict[str, np.ndarray]
    image_stamps_ns: dict[str, int]
    rig: CameraRig
    points: np.ndarray | None = None
    lidar_stamp_ns: int | None = None
    ego_pose: Transform | None = None
    source: str = ""
    index: int = 0
    assumed: dict[str, str] = field(default_factory=dict)

    @property
    def camera_names(self) -> list[str]:
        return self.rig.names

    def image_stack(self) -> np.ndarray:
        """(N, H, W, 3) uint8 in rig order (all images must share one size)."""
        return np.stack([self.images[n] for n in self.rig.names])
