"""Train the student from a target store: the stored teacher outputs replace the online teacher.

Inputs are the stored images, decoded and made model input by :mod:`simdistill_ros.models.preprocess`;
labels are the stored ground truth, or the teacher's stored boxes above a score threshold where a frame has
none (or with ``pseudo_labels``). Augmentation is off: the stored teacher maps describe the un-augmented
view, and warping them would make the targets approximate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from simdistill_ros.defaults import PSEUDO_LABEL_THRESHOLD
from simdistill_ros.errors import UserError
from simdistill_ros.frames.images import decode_compressed
from simdistill_ros.models import CameraInputs, DetectorOutputs, ModelConfig
from simdistill_ros.models.preprocess import camera_input
from simdistill_ros.targets.store import TargetStore
from simdistill_ros.training.batch import Batch, Sample, collate
from simdistill_ros.training.distillation import simdistill_loss
from simdistill_ros.training.objectives import with_depth_supervision


@dataclass
class StoredSample:
    sample: Sample
    features: dict[str, np.ndarray]  # camera_bev / lidar_bev / fused_bev (C, X, Y) fp16
    head: dict[str, np.ndarray]  # CenterHead outputs (C, X, Y) fp16
    pseudo_labels: bool  # the labels are the teacher's boxes


@dataclass
class StoredBatch:
    """A student batch plus the stored teacher outputs as float32 ``DetectorOutputs`` (B, C, X, Y)."""

    batch: Batch
    teacher: DetectorOutputs
    pseudo_labels: Tensor  # (B,) bool

    def to(self, device: torch.device | str) -> StoredBatch:
        t = self.teacher
        return StoredBatch(
            self.batch.to(device),
            DetectorOutputs(
                t.camera_bev.to(device),
                t.lidar_bev.to(device) if t.lidar_bev is not None else None,
                t.fused_bev.to(device),
                {k: v.to(device) for k, v in t.head.items()},
            ),
            self.pseudo_labels.to(device),
        )

    def __len__(self) -> int:
        return len(self.batch)


class StoreDataset(Dataset):
    """Frames of a target store as student samples (``input_hw`` the student's input size)."""

    def __init__(
        self,
        store: TargetStore,
        input_hw: tuple[int, int],
        pseudo_labels: bool = False,
        pseudo_label_threshold: float = PSEUDO_LABEL_THRESHOLD,
        with_depth_points: bool = False,
    ) -> None:
        self.store = store
        self.input_hw = tuple(input_hw)
        self.pseudo_labels = pseudo_labels
        self.threshold = pseudo_label_threshold
        self.with_depth_points = with_depth_points

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, i: int) -> StoredSample:
        f = self.store[i]
        if f.encoded:
            rgb = [decode_compressed(f.image_format, b) for b in f.images]
        else:
            rgb = list(f.images)
        images, ks = [], []
        for c, img in enumerate(rgb):
            image, k = camera_input(img, f.intrinsics[c], self.input_hw)
            images.append(image)
            ks.append(k)
        pseudo = self.pseudo_labels or not f.has_gt
        if pseudo:
            keep = f.det_scores >= self.threshold
            boxes, labels = f.det_boxes[keep], f.det_labels[keep]
        else:
            boxes, labels = f.gt_boxes, f.gt_labels
        sample = Sample(
            images=np.stack(images),
            intrinsics=np.stack(ks).astype(np.float32),
            cam_to_base=f.cam_to_base.astype(np.float32),
            # the stored LiDAR returns in view: depth targets are made from them at this input size
            points=f.depth_points if self.with_depth_points else None,
            boxes=boxes.astype(np.float32),
            labels=labels.astype(np.int64),
            bev_aug=np.eye(4, dtype=np.float32),
            token=f.sample_token,
            key=f.key,
        )
        return StoredSample(sample, f.features, f.head, pseudo)


def collate_stored(samples: list[StoredSample]) -> StoredBatch:
    def stack(arrays: list[np.ndarray]) -> Tensor:
        return torch.from_numpy(np.stack(arrays)).float()

    head_names = list(samples[0].head)
    teacher = DetectorOutputs(
        stack([s.features["camera_bev"] for s in samples]),
        stack([s.features["lidar_bev"] for s in samples]),
        stack([s.features["fused_bev"] for s in samples]),
        {k: stack([s.head[k] for s in samples]) for k in head_names},
    )
    return StoredBatch(
        collate([s.sample for s in samples]),
        teacher,
        torch.tensor([s.pseudo_labels for s in samples], dtype=torch.bool),
    )


class StoredDistillationObjective:
    """The SimDistill student objective with the teacher's outputs read from the store (no teacher)."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    def __call__(self, model: nn.Module, sb: StoredBatch) -> dict[str, Tensor]:
        student_out = model(CameraInputs.from_batch(sb.batch))
        head = getattr(model, "module", model).head
        targets = head.build_targets(sb.batch.boxes, sb.batch.labels)
        terms = simdistill_loss(student_out, sb.teacher, targets, None, self.config.head, self.config.loss)
        return with_depth_supervision(terms, student_out, sb.batch, self.config)


def check_store_matches(store: TargetStore, cfg: ModelConfig) -> None:
    """The store's teacher must produce maps the student can be compared with: same grid and widths."""
    t = ModelConfig.from_dict(store.teacher["config"])
    problems = []
    if t.grid != cfg.grid:
        problems.append(f"BEV grid {t.grid} vs the student's {cfg.grid}")
    pairs = {
        "camera BEV channels": (t.view_transform.out_channels, cfg.view_transform.out_channels),
        "LiDAR BEV channels": (t.pillars.out_channels, cfg.pillars.out_channels),
        "fused channels": (t.fused_channels, cfg.fused_channels),
        "classes": (t.head.num_classes, cfg.head.num_classes),
    }
    problems += [f"{name} {a} vs the student's {b}" for name, (a, b) in pairs.items() if a != b]
    if problems:
        raise UserError(
            f"{store.root}: the store's teacher does not match the student config: {'; '.join(problems)}"
        )


def open_training_store(
    path: str | Path, cfg: ModelConfig, pseudo_labels: bool, threshold: float
) -> StoreDataset:
    """A checked store as a student dataset; prints how many frames use ground truth."""
    store = TargetStore(path)
    if len(store) == 0:
        raise UserError(f"{path}: the target store holds no frames")
    check_store_matches(store, cfg)
    with_depth = cfg.loss.depth > 0.0
    if with_depth:
        have = store.frames_with_depth_points()
        if have < len(store):
            raise UserError(
                f"{path}: depth supervision needs the LiDAR returns the replay stores with each frame, and "
                f"{len(store) - have} of {len(store)} frames have none (replayed before depth targets "
                "existed): replay the bags again into a new store, or train with --depth-weight 0"
            )
    return StoreDataset(store, cfg.input_hw, pseudo_labels, threshold, with_depth)
