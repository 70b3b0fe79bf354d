"""CenterPoint losses: Gaussian focal loss on the heatmaps, L1 on box regression at object centres."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from simdistill_ros.models.config import HeadConfig, LossWeights
from simdistill_ros.models.head import HeadTargets, gather_regression


def gaussian_focal_loss(logits: Tensor, target: Tensor, alpha: float = 2.0, gamma: float = 4.0) -> Tensor:
    """CenterNet focal loss. logits, target: (B, K, X, Y); target is 1 at centres, a Gaussian around them.
    Normalised by the number of centres (at least 1)."""
    logits = logits.float()
    pos = target.eq(1).float()
    neg_weight = (1 - target).pow(gamma)
    # log-sigmoid forms stay finite for large logits, unlike log(sigmoid(x))
    log_p, log_1mp = F.logsigmoid(logits), F.logsigmoid(-logits)
    p = logits.sigmoid()
    pos_loss = -(log_p * (1 - p).pow(alpha) * pos).sum()
    neg_loss = -(log_1mp * p.pow(alpha) * neg_weight * (1 - pos)).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp(min=1.0)


def box_l1_loss(outputs: dict[str, Tensor], targets: HeadTargets, code_weights: tuple[float, ...]) -> Tensor:
    """Weighted L1 between predicted and target regression vectors at object centres, per object."""
    pred = gather_regression(outputs, targets.indices).float()  # (B, M, 10)
    w = pred.new_tensor(code_weights)
    mask = targets.mask[..., None].float()
    loss = ((pred - targets.reg).abs() * w * mask).sum()
    return loss / targets.mask.sum().clamp(min=1).float()


def centerpoint_loss(
    outputs: dict[str, Tensor], targets: HeadTargets, head_cfg: HeadConfig, weights: LossWeights
) -> dict[str, Tensor]:
    """Weighted ground-truth terms {"gt_heatmap", "gt_bbox"} (each already multiplied by its weight)."""
    return {
        "gt_heatmap": weights.gt_heatmap * gaussian_focal_loss(outputs["heatmap"], targets.heatmap),
        "gt_bbox": weights.gt_bbox * box_l1_loss(outputs, targets, head_cfg.code_weights),
    }


def detection_loss(
    outputs: dict[str, Tensor], targets: HeadTargets, head_cfg: HeadConfig, weights: LossWeights
) -> dict[str, Tensor]:
    """The teacher's / baseline's objective: ``centerpoint_loss`` terms plus "loss", their sum."""
    terms = centerpoint_loss(outputs, targets, head_cfg, weights)
    terms["loss"] = total(terms)
    return terms


def total(terms: dict[str, Tensor]) -> Tensor:
    """Sum of the terms (a zero tensor when there are none)."""
    vals = list(terms.values())
    return torch.stack([v.float() for v in vals]).sum() if vals else torch.zeros(())
