"""Torch dataset over labelled frames (bags or a nuScenes dataroot), with geometry-consistent augmentation."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from simdistill_ros.dataset.frame_cache import CachedScene
from simdistill_ros.dataset.frame_source import CachedFrames, FrameSource
from simdistill_ros.models.preprocess import camera_input
from simdistill_ros.training.augment import (
    BEVAugConfig,
    ImageAugConfig,
    bev_matrix,
    image_affine,
    photometric,
    pixel_noise,
    transform_boxes,
    transform_points,
)
from simdistill_ros.training.batch import Sample

NOISE_SEED = 20261207  # of the evaluation noise (image_noise): fixed, so that runs and models compare


class FrameDataset(Dataset):
    """Frames of a :class:`FrameSource` (or of cached scenes) resized to the model input ``input_hw``;
    augmented when ``augment``. ``image_noise`` > 0 adds Gaussian noise of that standard deviation (grey
    levels) to every source image, the same for frame ``i`` on every run (seeded by ``i``): a robustness
    test of a trained model, not a training augmentation (that is ``image_aug``)."""

    def __init__(
        self,
        frames: FrameSource | list[CachedScene],
        input_hw: tuple[int, int],
        augment: bool = False,
        with_points: bool = True,
        image_aug: ImageAugConfig | None = None,
        bev_aug: BEVAugConfig | None = None,
        image_noise: float = 0.0,
    ) -> None:
        self.frames = frames if isinstance(frames, FrameSource) else CachedFrames(frames)
        self.input_hw = tuple(input_hw)
        self.augment = augment
        self.with_points = with_points
        self.image_aug = image_aug or ImageAugConfig()
        self.bev_aug = bev_aug or BEVAugConfig()
        self.image_noise = float(image_noise)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> Sample:
        frame = self.frames[i]
        # torch's generator is seeded per run and per worker, so augmentation is reproducible.
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)))) if self.augment else None
        src_hw = frame.images.shape[1:3]
        noise_rng = np.random.default_rng([NOISE_SEED, i]) if self.image_noise > 0 else None
        images, ks = [], []
        for c in range(frame.images.shape[0]):
            k0 = frame.intrinsics[c]
            a = image_affine(src_hw, self.input_hw, rng, self.image_aug, k0)
            source = np.asarray(frame.images[c])
            if noise_rng is not None:  # on the camera's own pixels, as a sensor's noise is
                source = pixel_noise(source, noise_rng, self.image_noise)
            image, k = camera_input(source, k0, self.input_hw, a)
            images.append(photometric(image, rng, self.image_aug))
            ks.append(k)
        m = bev_matrix(rng, self.bev_aug)
        points = transform_points(frame.points, m) if self.with_points else None
        return Sample(
            images=np.stack(images),
            intrinsics=np.stack(ks).astype(np.float32),
            cam_to_base=(m @ frame.cam_to_base.astype(np.float64)).astype(np.float32),
            points=None if points is None else points.astype(np.float32),
            boxes=transform_boxes(frame.boxes.astype(np.float64), m).astype(np.float32),
            labels=frame.labels.copy(),
            bev_aug=m.astype(np.float32),
            token=frame.token,
            key=frame.key,
        )
