"""What each model type minimises, as a function of (model, batch) -> named loss terms.

The teacher inside the student's objective is frozen (eval mode, no gradients) and its outputs are computed
under ``torch.no_grad``; only the student's parameters are optimised.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from simdistill_ros.models import CameraInputs, ModelConfig, TeacherModel
from simdistill_ros.models.distill import pseudo_label_targets, simdistill_loss
from simdistill_ros.models.losses import detection_loss
from simdistill_ros.training.batch import Batch


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)  # DistributedDataParallel


class TeacherObjective:
    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    def __call__(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        if len(batch.points) != len(batch):
            raise ValueError("the teacher needs a LiDAR sweep for every frame of the batch")
        out = model(CameraInputs.from_batch(batch), batch.points)
        targets = _unwrap(model).head.build_targets(batch.boxes, batch.labels)
        return detection_loss(out.head, targets, self.config.head, self.config.loss)


class BaselineObjective:
    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    def __call__(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        out = model(CameraInputs.from_batch(batch))
        targets = _unwrap(model).head.build_targets(batch.boxes, batch.labels)
        return detection_loss(out.head, targets, self.config.head, self.config.loss)


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
        return simdistill_loss(student_out, teacher_out, targets, None, self.config.head, self.config.loss)
