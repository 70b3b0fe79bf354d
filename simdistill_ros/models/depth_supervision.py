"""Depth supervision from LiDAR: the returns projected into each camera give the depth bin of every image
feature cell they hit, and the view transform's depth distribution is trained against it.

The targets are made after augmentation, from the very intrinsics and extrinsics the model sees (the pixel
map folded into ``K``, the BEV augmentation folded into ``cam_to_base`` and the points alike), so a return
lands on the feature cell whose content it belongs to. Depth is the optical-axis distance (the frustum's
``z``), the quantity the depth bins discretise; a cell hit by several returns takes the nearest, the surface
the camera sees.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from simdistill_ros.models.config import BEVGridConfig

NO_RETURN = -1  # a feature cell no LiDAR return hits: not supervised


def project_to_cameras(
    points: Tensor, intrinsics: Tensor, cam_to_base: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Base-frame points (P, >=3) into N cameras: pixel u, v (N, P) (pixel-corner convention) and optical
    depth z (N, P). ``intrinsics`` (N, 3, 3), ``cam_to_base`` (N, 4, 4) (a similarity: BEV scale allowed)."""
    xyz = points[:, :3].to(torch.float64)
    base_to_cam = torch.linalg.inv(cam_to_base.to(torch.float64))  # (N, 4, 4)
    cam = xyz @ base_to_cam[:, :3, :3].transpose(1, 2) + base_to_cam[:, None, :3, 3]  # (N, P, 3)
    z = cam[..., 2]
    pix = cam @ intrinsics.to(torch.float64).transpose(1, 2)  # (N, P, 3)
    safe = torch.where(z.abs() > 1e-6, z, torch.ones_like(z))
    return pix[..., 0] / safe, pix[..., 1] / safe, z


def nearest_depth_per_cell(
    u: Tensor, v: Tensor, z: Tensor, image_hw: tuple[int, int], feat_hw: tuple[int, int], dbound: tuple
) -> Tensor:
    """Per camera the nearest in-range depth (metres) on each feature cell: (N, fH, fW) float32, +inf where
    no return lands. ``u``, ``v``, ``z`` (N, P) as from :func:`project_to_cameras`."""
    (h, w), (fh, fw) = image_hw, feat_hw
    n = u.shape[0]
    col = torch.floor(u / (w / fw)).long()
    row = torch.floor(v / (h / fh)).long()
    keep = (z >= dbound[0]) & (z < dbound[1]) & (col >= 0) & (col < fw) & (row >= 0) & (row < fh)
    cam = torch.arange(n, device=u.device)[:, None].expand_as(col)
    flat = (cam * fh + row) * fw + col
    out = torch.full((n * fh * fw,), math.inf, dtype=torch.float32, device=u.device)
    out.scatter_reduce_(0, flat[keep], z[keep].to(torch.float32), reduce="amin", include_self=True)
    return out.view(n, fh, fw)


def depth_bins(depth_m: Tensor, dbound: tuple) -> Tensor:
    """Metres -> depth bin index (same shape, int64); ``NO_RETURN`` where the depth is not finite."""
    d0, d1, step = dbound
    num_bins = int(round((d1 - d0) / step))
    finite = torch.isfinite(depth_m)
    idx = torch.floor((torch.where(finite, depth_m, torch.zeros_like(depth_m)) - d0) / step).long()
    return torch.where(finite, idx.clamp(0, num_bins - 1), torch.full_like(idx, NO_RETURN))


def lidar_depth_targets(
    points: list[Tensor],
    intrinsics: Tensor,
    cam_to_base: Tensor,
    image_hw: tuple[int, int],
    feat_hw: tuple[int, int],
    grid: BEVGridConfig,
) -> Tensor:
    """The depth bin of every image feature cell that a LiDAR return hits: (B, N, fH, fW) int64,
    ``NO_RETURN`` elsewhere. ``points`` B x (P_i, >=3) in the (augmented) base frame; ``intrinsics``
    (B, N, 3, 3) for images of ``image_hw``; ``cam_to_base`` (B, N, 4, 4)."""
    out = []
    for b, pts in enumerate(points):
        u, v, z = project_to_cameras(pts, intrinsics[b], cam_to_base[b])
        nearest = nearest_depth_per_cell(u, v, z, image_hw, feat_hw, grid.dbound)
        out.append(depth_bins(nearest, grid.dbound))
    return torch.stack(out).to(intrinsics.device)


def depth_loss(depth: Tensor, target: Tensor) -> Tensor:
    """Binary cross-entropy of the depth distribution against the one-hot target bin, over the supervised
    cells only, summed over bins and averaged over cells (zero when no cell is supervised).

    depth: (B, N, D, fH, fW) softmax probabilities; target: (B, N, fH, fW) bin index or ``NO_RETURN``.
    """
    probs = depth.movedim(2, -1)  # (B, N, fH, fW, D)
    hit = target != NO_RETURN
    if not bool(hit.any()):
        return depth.sum() * 0.0
    p = probs[hit].float().clamp(1e-6, 1.0 - 1e-6)  # (M, D)
    onehot = F.one_hot(target[hit], p.shape[-1]).to(p.dtype)
    return F.binary_cross_entropy(p, onehot, reduction="sum") / p.shape[0]


@torch.no_grad()
def depth_quality(depth: Tensor, target: Tensor, grid: BEVGridConfig) -> dict[str, float]:
    """How well a depth distribution (B, N, D, fH, fW) matches LiDAR on the cells a return hits:
    median |expected depth - LiDAR bin centre| (m), the share of argmax bins within 1 m, the mean entropy
    (nats; uniform over D bins is log D) and the number of cells."""
    d0, _, step = grid.dbound
    probs = depth.movedim(2, -1)
    hit = target != NO_RETURN
    p = probs[hit].float()
    if p.shape[0] == 0:
        return {"cells": 0}
    centres = d0 + (torch.arange(p.shape[-1], dtype=torch.float32, device=p.device) + 0.5) * step
    truth = centres[target[hit]]
    expected = (p * centres).sum(-1)
    argmax = centres[p.argmax(-1)]
    entropy = -(p * p.clamp(min=1e-12).log()).sum(-1)
    return {
        "cells": int(p.shape[0]),
        "median_abs_error_m": float((expected - truth).abs().median()),
        "argmax_within_1m": float(((argmax - truth).abs() <= 1.0).float().mean()),
        "entropy_nats": float(entropy.mean()),
        "uniform_entropy_nats": math.log(p.shape[-1]),
    }
