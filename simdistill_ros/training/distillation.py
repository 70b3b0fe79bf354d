"""SimDistill distillation terms (all in BEV space) and the student's total objective.

Every teacher tensor is detached here, so a frozen teacher never receives gradient through these losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from simdistill_ros.defaults import PSEUDO_LABEL_THRESHOLD
from simdistill_ros.models.config import HeadConfig, LossWeights
from simdistill_ros.models.head import CenterHead, HeadTargets, gather_regression
from simdistill_ros.models.losses import centerpoint_loss, total
from simdistill_ros.models.structures import DetectorOutputs


def foreground_mask(heatmap: Tensor) -> Tensor:
    """(B, K, X, Y) Gaussian heatmaps (GT targets, or the teacher's pseudo-label targets) -> (B, 1, X, Y),
    the per-cell sum over classes clamped to 1."""
    return heatmap.sum(dim=1, keepdim=True).clamp(max=1.0)


def imd_loss(student_camera_bev: Tensor, teacher_camera_bev: Tensor) -> Tensor:
    """Intra-modal: MSE between the camera BEV maps (B, C, X, Y)."""
    return F.mse_loss(student_camera_bev.float(), teacher_camera_bev.detach().float())


def cmd_loss(
    student_sim_lidar_bev: Tensor,
    teacher_lidar_bev: Tensor,
    fg_mask: Tensor,
    mean_over_all_cells: bool = False,
) -> Tensor:
    """Cross-modal: squared error on foreground cells only, weighted by ``fg_mask`` (B, 1, X, Y); cells
    where the mask is zero contribute nothing. Normalised by the mask sum times the channel count (the
    mean over masked elements), or with ``mean_over_all_cells`` by B*C*X*Y as the reference code does."""
    s, t = student_sim_lidar_bev.float(), teacher_lidar_bev.detach().float()
    m = fg_mask.detach().float()
    err = ((s - t) ** 2 * m).sum()
    if mean_over_all_cells:
        return err / s.numel()
    return err / (m.sum() * s.shape[1]).clamp(min=1.0)


def balanced_feature_loss(
    student_bev: Tensor, teacher_bev: Tensor, fg_mask: Tensor, fg: float, bg: float
) -> Tensor:
    """Feature imitation that the detection loss does not drown and the background does not dominate:
    each channel of both maps (B, C, X, Y) is divided by the teacher channel's RMS over the batch (so every
    channel weighs alike whatever its activation scale), the squared error is averaged over channels, then
    over the foreground cells (weighted by ``fg_mask`` (B, 1, X, Y)) and over the background cells apart:
    ``fg * mean_fg + bg * mean_bg``."""
    s, t = student_bev.float(), teacher_bev.detach().float()
    scale = t.pow(2).mean(dim=(0, 2, 3), keepdim=True).sqrt().clamp(min=1e-4)
    err = ((s - t) / scale).pow(2).mean(dim=1, keepdim=True)  # (B, 1, X, Y)
    m = fg_mask.detach().float()
    fg_mean = (err * m).sum() / m.sum().clamp(min=1.0)
    bg_mean = (err * (1.0 - m)).sum() / (1.0 - m).sum().clamp(min=1.0)
    return fg * fg_mean + bg * bg_mean


def mmd_feature_loss(student_fused_bev: Tensor, teacher_fused_bev: Tensor) -> Tensor:
    """Multi-modal fusion, features: MSE between the fused BEV maps."""
    return F.mse_loss(student_fused_bev.float(), teacher_fused_bev.detach().float())


def mmd_heatmap_loss(
    student_logits: Tensor, teacher_logits: Tensor, num_objects: Tensor, beta: float = 2.0
) -> Tensor:
    """Soft-target focal (quality-focal) loss: BCE(student logits, sigmoid(teacher logits)) * |p - t|^beta,
    summed and divided by the number of objects (at least 1). The teacher is sigmoid-ed exactly once."""
    target = teacher_logits.detach().float().sigmoid()
    logits = student_logits.float()
    scale = (logits.sigmoid() - target).abs().pow(beta)
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none") * scale
    return loss.sum() / num_objects.float().clamp(min=1.0)


def mmd_box_loss(
    student_head: dict[str, Tensor],
    teacher_head: dict[str, Tensor],
    targets: HeadTargets,
    code_weights: tuple[float, ...],
) -> Tensor:
    """Smooth-L1 between student and teacher regression vectors at object centres, per object."""
    s = gather_regression(student_head, targets.indices).float()
    t = gather_regression({k: v.detach() for k, v in teacher_head.items()}, targets.indices).float()
    w = s.new_tensor(code_weights)
    loss = F.smooth_l1_loss(s, t, reduction="none") * w * targets.mask[..., None].float()
    return loss.sum() / targets.mask.sum().clamp(min=1).float()


def distillation_losses(
    student: DetectorOutputs,
    teacher: DetectorOutputs,
    targets: HeadTargets,
    fg_mask: Tensor,
    weights: LossWeights,
    code_weights: tuple[float, ...],
) -> dict[str, Tensor]:
    """Weighted distillation terms {"imd", "cmd", "mmd_feat", "mmd_pred_heatmap", "mmd_pred_box"} (only
    the active ones). ``targets`` locate object centres for the box term (GT or pseudo-labels);
    ``fg_mask`` (B, 1, X, Y) is the CMD mask (see ``foreground_mask``)."""
    out: dict[str, Tensor] = {}
    if weights.active("cmd") and (student.lidar_bev is None or teacher.lidar_bev is None):
        raise ValueError("CMD needs the student's simulated-LiDAR BEV and the teacher's LiDAR BEV")
    if weights.feature_loss == "balanced":
        pairs = {
            "imd": (student.camera_bev, teacher.camera_bev),
            "cmd": (student.lidar_bev, teacher.lidar_bev),
            "mmd_feat": (student.fused_bev, teacher.fused_bev),
        }
        for name, (s, t) in pairs.items():
            if weights.active(name):
                w = getattr(weights, name)
                out[name] = w * balanced_feature_loss(s, t, fg_mask, weights.feature_fg, weights.feature_bg)
    else:
        if weights.active("imd"):
            out["imd"] = weights.imd * imd_loss(student.camera_bev, teacher.camera_bev)
        if weights.active("cmd"):
            out["cmd"] = weights.cmd * cmd_loss(
                student.lidar_bev, teacher.lidar_bev, fg_mask, weights.cmd_mean_over_all_cells
            )
        if weights.active("mmd_feat"):
            out["mmd_feat"] = weights.mmd_feat * mmd_feature_loss(student.fused_bev, teacher.fused_bev)
    if weights.active("mmd_pred_heatmap"):
        out["mmd_pred_heatmap"] = weights.mmd_pred_heatmap * mmd_heatmap_loss(
            student.head["heatmap"], teacher.head["heatmap"], targets.num_objects
        )
    if weights.active("mmd_pred_box"):
        out["mmd_pred_box"] = weights.mmd_pred_box * mmd_box_loss(
            student.head, teacher.head, targets, code_weights
        )
    return out


def simdistill_loss(
    student: DetectorOutputs,
    teacher: DetectorOutputs,
    targets: HeadTargets,
    fg_mask: Tensor | None,
    head_cfg: HeadConfig,
    weights: LossWeights,
) -> dict[str, Tensor]:
    """The student's objective: GT CenterPoint terms (if ``weights.use_gt``) plus the distillation terms,
    each already weighted, and "loss", their sum. ``fg_mask`` defaults to
    ``foreground_mask(targets.heatmap)``."""
    if fg_mask is None:
        fg_mask = foreground_mask(targets.heatmap)
    terms: dict[str, Tensor] = {}
    if weights.use_gt:
        terms.update(centerpoint_loss(student.head, targets, head_cfg, weights))
    terms.update(distillation_losses(student, teacher, targets, fg_mask, weights, head_cfg.code_weights))
    terms["loss"] = total(terms).to(student.fused_bev.device)
    return terms


@torch.no_grad()
def pseudo_label_targets(
    head: CenterHead, teacher_head_outputs: dict[str, Tensor], score_threshold: float = PSEUDO_LABEL_THRESHOLD
) -> HeadTargets:
    """Targets from the teacher's own decoded boxes (for unlabeled data): their heatmap is the CMD mask
    source (``foreground_mask(targets.heatmap)``) and their centres locate the box-distillation term."""
    dets = head.decode(teacher_head_outputs, score_threshold=score_threshold)
    return head.build_targets([d.boxes for d in dets], [d.labels for d in dets])
