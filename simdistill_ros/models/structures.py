"""What the models take and return."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch


@dataclass
class CameraInputs:
    """Multi-camera input of one batch.

    images: (B, N, 3, H, W) float32, already normalised (ImageNet mean/std).
    intrinsics: (B, N, 3, 3) for the pixels as given (resize/crop folded in; pixel-corner convention, the
        centre of pixel (i, j) is at (j + 0.5, i + 0.5)).
    cam_to_base: (B, N, 4, 4) optical frame (x right, y down, z forward) -> base frame (x forward, y left,
        z up), with any BEV augmentation folded in.
    """

    images: torch.Tensor
    intrinsics: torch.Tensor
    cam_to_base: torch.Tensor

    @classmethod
    def from_batch(cls, batch: object) -> CameraInputs:
        """Take ``images``, ``intrinsics`` and ``cam_to_base`` from any object that has them."""
        return cls(batch.images, batch.intrinsics, batch.cam_to_base)  # type: ignore[attr-defined]

    def to(self, device: torch.device | str) -> CameraInputs:
        return CameraInputs(self.images.to(device), self.intrinsics.to(device), self.cam_to_base.to(device))

    @property
    def batch_size(self) -> int:
        return self.images.shape[0]

    @property
    def num_cameras(self) -> int:
        return self.images.shape[1]


@dataclass
class DetectorOutputs:
    """Everything a forward pass produces; all BEV maps are (B, C, X, Y) on the working BEV grid.

    camera_bev: the camera (LSS) BEV branch.
    lidar_bev: teacher: the pillar LiDAR BEV; student: the simulated-LiDAR branch after its adapter (same
        channel count as the teacher's); baseline: None.
    fused_bev: teacher/student: the ConvFuser output; baseline: the camera BEV itself (no fusion).
    head: CenterHead raw outputs: heatmap (B, K, X, Y) logits, offset (B, 2, X, Y), height (B, 1, X, Y),
        size (B, 3, X, Y) log metres, rot (B, 2, X, Y) (sin, cos), vel (B, 2, X, Y).
    depth: (B, N, D, fH, fW) depth distribution of the camera branch.
    """

    camera_bev: torch.Tensor
    lidar_bev: torch.Tensor | None
    fused_bev: torch.Tensor
    head: dict[str, torch.Tensor] = field(default_factory=dict)
    depth: torch.Tensor | None = None


class Detections(NamedTuple):
    """Decoded detections of one sample: boxes (M, 9) [x, y, z, l, w, h, yaw, vx, vy] in the base frame,
    scores (M,), labels (M,) int64."""

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
