"""Per-class non-maximum suppression of decoded BEV boxes, without rotated IoU.

Small classes (pedestrian, cone, bicycle, motorcycle, barrier) use CenterPoint's circle NMS: a detection
suppresses same-class ones whose centre lies within a per-class radius. A long object (car, truck, bus,
trailer, construction vehicle) can give several heatmap peaks along its length, farther apart than any
radius that would not also merge two cars parked nose to tail; for those classes a detection also
suppresses same-class ones whose centre lies inside its footprint (or whose footprint holds its centre):
two real vehicles never overlap that much, so such a pair is a duplicate. Classes never suppress each other.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _greedy(order: Tensor, close: Tensor) -> Tensor:
    """Greedy keep over ``order`` given ``close`` (M, M) bool in that order; returns kept positions."""
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    close = close.cpu()
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= close[i]
    return order[torch.tensor(keep, dtype=torch.long, device=order.device)]


def circle_nms(centres: Tensor, scores: Tensor, radius: float) -> Tensor:
    """Greedy NMS on BEV centres (M, 2): keep the best, drop others within ``radius`` metres.
    Returns kept indices sorted by descending score."""
    order = scores.argsort(descending=True)
    c = centres[order]
    return _greedy(order, torch.cdist(c, c) <= radius)


def centre_inside(boxes: Tensor, points: Tensor) -> Tensor:
    """(M, >=7) boxes [x, y, z, l, w, h, yaw, ...] and (P, 2) points -> (M, P) bool: point p's BEV position
    lies inside box m's rotated footprint (edges included)."""
    d = points[None, :, :2] - boxes[:, None, :2]  # (M, P, 2)
    cos, sin = torch.cos(boxes[:, 6])[:, None], torch.sin(boxes[:, 6])[:, None]
    along = d[..., 0] * cos + d[..., 1] * sin
    across = -d[..., 0] * sin + d[..., 1] * cos
    return (along.abs() <= boxes[:, 3:4] / 2) & (across.abs() <= boxes[:, 4:5] / 2)


def footprint_nms(boxes: Tensor, scores: Tensor, radius: float) -> Tensor:
    """Greedy NMS for large objects on (M, >=7) boxes: a kept box suppresses the others whose centre is
    within ``radius`` metres of its own, inside its footprint, or whose footprint holds its centre.
    Returns kept indices sorted by descending score."""
    order = scores.argsort(descending=True)
    b = boxes[order]
    inside = centre_inside(b, b)
    close = (torch.cdist(b[:, :2], b[:, :2]) <= radius) | inside | inside.T
    return _greedy(order, close)


def per_class_nms(
    boxes: Tensor,
    scores: Tensor,
    labels: Tensor,
    radius: tuple[float, ...],
    footprint_classes: tuple[int, ...],
) -> Tensor:
    """Indices of the detections kept by per-class NMS, by descending score. boxes (M, 9), scores (M,),
    labels (M,); ``radius[c]`` is class c's circle radius in metres; classes in ``footprint_classes``
    additionally suppress by footprint (``footprint_nms``)."""
    kept = []
    for c in labels.unique().tolist():
        sel = (labels == c).nonzero().flatten()
        if c in footprint_classes:
            kept.append(sel[footprint_nms(boxes[sel], scores[sel], radius[c])])
        else:
            kept.append(sel[circle_nms(boxes[sel, :2], scores[sel], radius[c])])
    if not kept:
        return torch.zeros(0, dtype=torch.long, device=scores.device)
    idx = torch.cat(kept)
    return idx[scores[idx].argsort(descending=True)]
