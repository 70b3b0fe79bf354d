"""Torch dataset over cached frames, with geometry-consistent augmentation."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from simdistill_ros.dataset.frame_cache import CachedScene
from simdistill_ros.models.preprocess import camera_input
from simdistill_ros.training.augment import (
    BEVAugConfig,
    ImageAugConfig,
    bev_matrix,
    image_affine,
    transform_boxes,
    transform_points,
)
from simdistill_ros.training.batch import Sample


class FrameDataset(Dataset):
    """Frames of cached scenes resized to the model input ``input_hw``; augmented when ``augment``."""

    def __init__(
        self,
        scenes: list[CachedScene],
        input_hw: tuple[int, int],
        augment: bool = False,
        with_points: bool = True,
        image_aug: ImageAugConfig | None = None,
        bev_aug: BEVAugConfig | None = None,
    ) -> None:
        self.scenes = scenes
        self.input_hw = tuple(input_hw)
        self.augment = augment
        self.with_points = with_points
        self.image_aug = image_aug or ImageAugConfig()
        self.bev_aug = bev_aug or BEVAugConfig()
        self.index = [(si, fi) for si, s in enumerate(scenes) for fi in range(len(s))]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Sample:
        si, fi = self.index[i]
        scene = self.scenes[si]
        # torch's generator is seeded per run and per worker, so augmentation is reproducible.
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)))) if self.augment else None
        src_hw = scene.images.shape[2:4]
        images, ks = [], []
        for c in range(scene.images.shape[1]):
            k0 = scene.intrinsics[fi, c]
            a = image_affine(src_hw, self.input_hw, rng, self.image_aug, k0)
            image, k = camera_input(np.asarray(scene.images[fi, c]), k0, self.input_hw, a)
            images.append(image)
            ks.append(k)
        m = bev_matrix(rng, self.bev_aug)
        boxes, labels = scene.frame_boxes(fi)
        points = transform_points(scene.frame_points(fi), m) if self.with_points else None
        return Sample(
            images=np.stack(images),
            intrinsics=np.stack(ks).astype(np.float32),
            cam_to_base=(m @ scene.cam_to_base[fi].astype(np.float64)).astype(np.float32),
            points=None if points is None else points.astype(np.float32),
            boxes=transform_boxes(boxes.astype(np.float64), m).astype(np.float32),
            labels=labels.copy(),
            bev_aug=m.astype(np.float32),
            token=scene.tokens[fi],
            key=f"{scene.scene}/{int(scene.stamps_ns[fi])}",
        )
