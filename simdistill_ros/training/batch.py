"""A training/inference batch: what the models consume, already on one device.

Images are normalised float (B, N, 3, H, W); intrinsics (B, N, 3, 3) describe the pixels as given
(augmentation folded in); cam_to_base (B, N, 4, 4) maps optical frames into the (augmented) base frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import torch

from simdistill_ros.models.preprocess import normalize_images


@dataclass
class Batch:
    images: torch.Tensor  # (B, N, 3, H, W) float
    intrinsics: torch.Tensor  # (B, N, 3, 3)
    cam_to_base: torch.Tensor  # (B, N, 4, 4)
    points: list[torch.Tensor] = field(default_factory=list)  # B x (P_i, 4); empty for camera-only data
    boxes: list[torch.Tensor] = field(default_factory=list)  # B x (M_i, 9)
    labels: list[torch.Tensor] = field(default_factory=list)  # B x (M_i,)
    bev_aug: torch.Tensor | None = None  # (B, 4, 4) base-frame augmentation applied to everything above
    tokens: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # frame keys (target stores index by them)

    def to(self, device: torch.device | str) -> Batch:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                v = v.to(device, non_blocking=True)
            elif isinstance(v, list) and v and isinstance(v[0], torch.Tensor):
                v = [t.to(device, non_blocking=True) for t in v]
            out[f.name] = v
        return Batch(**out)

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass
class Sample:
    """One augmented frame before collation (numpy, uint8 images)."""

    images: np.ndarray  # (N, H, W, 3) uint8
    intrinsics: np.ndarray  # (N, 3, 3)
    cam_to_base: np.ndarray  # (N, 4, 4)
    points: np.ndarray | None  # (P, 4)
    boxes: np.ndarray  # (M, 9)
    labels: np.ndarray  # (M,)
    bev_aug: np.ndarray  # (4, 4)
    token: str = ""
    key: str = ""


def collate(samples: list[Sample]) -> Batch:
    images = torch.from_numpy(np.stack([s.images for s in samples]))
    return Batch(
        images=normalize_images(images),
        intrinsics=torch.from_numpy(np.stack([s.intrinsics for s in samples]).astype(np.float32)),
        cam_to_base=torch.from_numpy(np.stack([s.cam_to_base for s in samples]).astype(np.float32)),
        points=[torch.from_numpy(s.points.astype(np.float32)) for s in samples if s.points is not None],
        boxes=[torch.from_numpy(s.boxes.astype(np.float32)) for s in samples],
        labels=[torch.from_numpy(s.labels.astype(np.int64)) for s in samples],
        bev_aug=torch.from_numpy(np.stack([s.bev_aug for s in samples]).astype(np.float32)),
        tokens=[s.token for s in samples],
        keys=[s.key for s in samples],
    )
