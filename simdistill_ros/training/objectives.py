"""What each model type minimises, as a function of (model, batch) -> named loss terms.

The teacher inside the student's objective is frozen (eval mode, no gradients) and its outputs are computed
under ``torch.no_grad``; only the student's parameters are optimised.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from simdistill_ros.models import CameraInputs, ModelConfig, TeacherModel
from simdistill_ros.models.depth_supervision import depth_loss, lidar_depth_targets
from simdistill_ros.models.losses import detection_loss
from simdistill_ros.models.structures import DetectorOutputs
from simdistill_ros.training.batch import Batch
from simdistill_ros.training.distillation import pseudo_label_targets, simdistill_loss


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)  # DistributedDataParallel


def with_depth_supervision(
    terms: dict[str, Tensor], out: DetectorOutputs, batch: Batch, config: ModelConfig
) -> dict[str, Tensor]:
    """``terms`` plus the weighted LiDAR depth term ("depth", added to "loss") when ``config.loss.depth``
    is set; the targets come from the batch's (augmented) LiDAR points and calibration."""
    weight = config.loss.depth
    if weight == 0.0:
        return terms
    if out.depth is None:
        raise ValueError("depth supervision needs the model's depth distribution")
    if len(batch.points) != len(batch):
        raise ValueError("depth supervision needs a LiDAR sweep for every frame of the batch")
    image_hw = tuple(batch.images.shape[-2:])
    feat_hw = tuple(out.depth.shape[-2:])
    target = lidar_depth_targets(
        batch.points, batch.intrinsics, batch.cam_to_base, image_hw, feat_hw, config.grid
    )
    terms = dict(terms)
    terms["depth"] = weight * depth_loss(out.depth, target)
    terms["loss"] = terms["loss"] + terms["depth"]
    return terms


class TeacherObjective:
    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    def __call__(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        if len(batch.points) != len(batch):
            raise ValueError("the teacher needs a LiDAR sweep for every frame of the batch")
        out = model(CameraInputs.from_batch(batch), batch.points)
        targets = _unwrap(model).head.build_targets(batch.boxes, batch.labels)
        terms = detection_loss(out.head, targets, self.config.head, self.config.loss)
        return with_depth_supervision(terms, out, batch, self.config)


class BaselineObjective:
    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    def __call__(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        out = model(CameraInputs.from_batch(batch))
        targets = _unwrap(model).head.build_targets(batch.boxes, batch.labels)
        terms = detection_loss(out.head, targets, self.config.head, self.config.loss)
        return with_depth_supervision(terms, out, batch, self.config)


class OnlineDistillationObjective:
    """The SimDistill student against a frozen teacher run on the same (augmented) frame.

    With ``use_labels=False`` the teacher's decoded boxes replace the ground truth (unlabeled bags): they
    supervise the head and locate the foreground for CMD and the box-distillation term.
    """

    def __init__(self, config: ModelConfig, teacher: TeacherModel, use_labels: bool = True) -> None:
        self.config = config
        self.teacher = teacher.freeze()
        self.use_labels = use_labels

    def __call__(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        cameras = CameraInputs.from_batch(batch)
        with torch.no_grad():
            teacher_out = self.teacher(cameras, batch.points)
        student_out = model(cameras)
        head = _unwrap(model).head
        if self.use_labels:
            targets = head.build_targets(batch.boxes, batch.labels)
        else:
            targets = pseudo_label_targets(head, teacher_out.head)
        terms = simdistill_loss(student_out, teacher_out, targets, None, self.config.head, self.config.loss)
        return with_depth_supervision(terms, student_out, batch, self.config)
