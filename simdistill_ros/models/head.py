"""CenterPoint head: class heatmaps plus box regression maps; training targets and decoding."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from simdistill_ros.models.backbone import conv_bn_relu
from simdistill_ros.models.config import BEVGridConfig, HeadConfig
from simdistill_ros.models.nms import per_class_nms
from simdistill_ros.models.structures import Detections

# regression maps, in the order their channels are concatenated into the 10-vector of a box
REG_FIELDS: tuple[tuple[str, int], ...] = (("offset", 2), ("height", 1), ("size", 3), ("rot", 2), ("vel", 2))
REG_DIM = sum(n for _, n in REG_FIELDS)


@dataclass
class HeadTargets:
    """CenterPoint training targets on the working BEV grid.

    heatmap: (B, K, X, Y) Gaussian class heatmaps (1 at object centres).
    indices: (B, M) int64 flat cell index ix * Y + iy of each object centre (0 where padded).
    mask: (B, M) bool, True for real objects.
    reg: (B, M, 10) [offset x, offset y, z, log l, log w, log h, sin yaw, cos yaw, vx, vy].
    labels: (B, M) int64.
    """

    heatmap: Tensor
    indices: Tensor
    mask: Tensor
    reg: Tensor
    labels: Tensor

    @property
    def num_objects(self) -> Tensor:
        return self.mask.sum()


class CenterHead(nn.Module):
    """(B, C, X, Y) -> dict of heatmap (B, K, X, Y) logits, offset (B, 2, X, Y), height (B, 1, X, Y),
    size (B, 3, X, Y) (log metres), rot (B, 2, X, Y) (sin, cos), vel (B, 2, X, Y)."""

    def __init__(self, in_channels: int, grid: BEVGridConfig, cfg: HeadConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.grid = grid
        hc = cfg.head_channels
        self.shared = conv_bn_relu(in_channels, hc, 3)
        outs = {"heatmap": cfg.num_classes, **dict(REG_FIELDS)}
        self.branches = nn.ModuleDict(
            {name: nn.Sequential(conv_bn_relu(hc, hc, 3), nn.Conv2d(hc, n, 1)) for name, n in outs.items()}
        )
        nn.init.constant_(self.branches["heatmap"][-1].bias, cfg.heatmap_bias)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.shared(x)
        return {name: branch(x) for name, branch in self.branches.items()}

    # --- targets ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def build_targets(self, boxes: list[Tensor], labels: list[Tensor]) -> HeadTargets:
        """boxes: B x (M_i, 9), labels: B x (M_i,) -> HeadTargets. Boxes centred outside the grid are
        dropped; at most ``max_objects`` per sample are kept."""
        return build_targets(boxes, labels, self.grid, self.cfg)

    # --- decoding ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def decode(
        self,
        outputs: dict[str, Tensor],
        score_threshold: float | None = None,
        max_detections: int | None = None,
        nms: bool | None = None,
    ) -> list[Detections]:
        """Peaks of the sigmoid heatmaps (3x3 max-pool) -> per-sample Detections; optional per-class
        NMS (``models.nms``: circle NMS, plus footprint suppression for ``nms_footprint_classes``).
        ``None`` arguments take the HeadConfig values."""
        return decode_head_maps(outputs, self.grid, self.cfg, score_threshold, max_detections, nms)


def decode_head_maps(
    outputs: dict[str, Tensor],
    grid: BEVGridConfig,
    head: HeadConfig,
    score_threshold: float | None = None,
    max_detections: int | None = None,
    nms: bool | None = None,
) -> list[Detections]:
    """:meth:`CenterHead.decode` of head maps from anywhere (PyTorch or onnxruntime): every decoding and NMS
    setting from ``head``, ``None`` arguments included, so that no caller can drop one."""
    return decode(
        outputs,
        grid,
        head.score_threshold if score_threshold is None else score_threshold,
        head.max_detections if max_detections is None else max_detections,
        head.nms if nms is None else nms,
        head.nms_radius,
        head.nms_footprint_classes,
    )


def gaussian_radius(length: float, width: float, min_overlap: float) -> float:
    """CenterPoint's radius (in cells) for a box of ``length`` x ``width`` cells and IoU ``min_overlap``.

    CenterPoint takes the smallest of three corner-shift cases. The third (both corners shifted) is always
    the smallest: it is at most (length + width) / 4, the other two at least (length + width) / 2, so it is
    the only one computed (``test_head_reference`` checks it against all three)."""
    s, p, o = length + width, length * width, min_overlap
    return math.sqrt(o * o * s * s + 4 * o * (1 - o) * p) - o * s


def draw_gaussian(heatmap: Tensor, cx: int, cy: int, radius: int) -> None:
    """Max a Gaussian (sigma = (2r + 1) / 6, peak 1) centred on cell (cx, cy) into ``heatmap`` (X, Y)."""
    sigma = (2 * radius + 1) / 6.0
    r = torch.arange(-radius, radius + 1, dtype=heatmap.dtype, device=heatmap.device)
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma * sigma))
    nx, ny = heatmap.shape
    x0, x1 = max(cx - radius, 0), min(cx + radius + 1, nx)
    y0, y1 = max(cy - radius, 0), min(cy + radius + 1, ny)
    patch = g[x0 - cx + radius : x1 - cx + radius, y0 - cy + radius : y1 - cy + radius]
    torch.maximum(heatmap[x0:x1, y0:y1], patch, out=heatmap[x0:x1, y0:y1])


def build_targets(
    boxes: list[Tensor], labels: list[Tensor], grid: BEVGridConfig, cfg: HeadConfig
) -> HeadTargets:
    """See ``CenterHead.build_targets``."""
    nx, ny = grid.bev_shape
    cell_x, cell_y = grid.bev_cell
    x0, y0 = grid.xbound[0], grid.ybound[0]
    b, m, k = len(boxes), cfg.max_objects, cfg.num_classes
    device = boxes[0].device if b else torch.device("cpu")
    heat = torch.zeros(b, k, nx, ny)
    indices = torch.zeros(b, m, dtype=torch.long)
    mask = torch.zeros(b, m, dtype=torch.bool)
    reg = torch.zeros(b, m, REG_DIM)
    lab = torch.zeros(b, m, dtype=torch.long)
    for i, (bx, lb) in enumerate(zip(boxes, labels)):
        bx = bx.detach().to("cpu", torch.float64)
        lb = lb.detach().to("cpu").long()
        if bx.numel() == 0:
            continue
        fx = (bx[:, 0] - x0) / cell_x
        fy = (bx[:, 1] - y0) / cell_y
        ix, iy = torch.floor(fx).long(), torch.floor(fy).long()
        ok = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny) & (lb >= 0) & (lb < k) & torch.isfinite(bx).all(1)
        ok &= (bx[:, 3] > 0) & (bx[:, 4] > 0) & (bx[:, 5] > 0)
        sel = ok.nonzero().flatten()[:m]
        for j, n in enumerate(sel.tolist()):
            radius = gaussian_radius(float(bx[n, 3]) / cell_x, float(bx[n, 4]) / cell_y, cfg.min_overlap)
            radius = max(cfg.min_radius, int(radius))
            cx, cy = int(ix[n]), int(iy[n])
            draw_gaussian(heat[i, int(lb[n])], cx, cy, radius)
            indices[i, j] = cx * ny + cy
            mask[i, j] = True
            lab[i, j] = lb[n]
            yaw = bx[n, 6]
            reg[i, j] = torch.stack(
                [
                    fx[n] - cx,
                    fy[n] - cy,
                    bx[n, 2],
                    torch.log(bx[n, 3]),
                    torch.log(bx[n, 4]),
                    torch.log(bx[n, 5]),
                    torch.sin(yaw),
                    torch.cos(yaw),
                    bx[n, 7],
                    bx[n, 8],
                ]
            ).float()
    return HeadTargets(heat.to(device), indices.to(device), mask.to(device), reg.to(device), lab.to(device))


def regression_map(outputs: dict[str, Tensor]) -> Tensor:
    """Concatenate the regression outputs into (B, 10, X, Y) in ``REG_FIELDS`` order."""
    return torch.cat([outputs[name] for name, _ in REG_FIELDS], dim=1)


def gather_regression(outputs: dict[str, Tensor], indices: Tensor) -> Tensor:
    """(B, M) flat cell indices -> (B, M, 10) regression vectors at those cells."""
    reg = regression_map(outputs)
    b, c = reg.shape[:2]
    flat = reg.reshape(b, c, -1)
    return flat.gather(2, indices[:, None, :].expand(-1, c, -1)).transpose(1, 2)


def decode(
    outputs: dict[str, Tensor],
    grid: BEVGridConfig,
    score_threshold: float,
    max_detections: int,
    nms: bool,
    nms_radius: tuple[float, ...],
    nms_footprint_classes: tuple[int, ...] = (),
) -> list[Detections]:
    """See ``CenterHead.decode``."""
    heat = outputs["heatmap"].float().sigmoid()
    b, k, nx, ny = heat.shape
    peaks = heat == F.max_pool2d(heat, 3, stride=1, padding=1)
    heat = heat * peaks
    reg = regression_map(outputs).float().reshape(b, REG_DIM, -1)
    cell_x, cell_y = grid.bev_cell
    candidates = min(k * nx * ny, max(max_detections, 500))
    scores_all, idx_all = heat.reshape(b, -1).topk(candidates, dim=1)
    results = []
    for i in range(b):
        keep = scores_all[i] >= score_threshold
        scores, idx = scores_all[i][keep], idx_all[i][keep]
        labels = torch.div(idx, nx * ny, rounding_mode="floor")
        cell = idx % (nx * ny)
        ix = torch.div(cell, ny, rounding_mode="floor").float()
        iy = (cell % ny).float()
        r = reg[i][:, cell].T  # (M, 10)
        x = grid.xbound[0] + (ix + r[:, 0]) * cell_x
        y = grid.ybound[0] + (iy + r[:, 1]) * cell_y
        size = r[:, 3:6].clamp(max=10.0).exp()  # clamp: exp of an untrained output must stay finite
        yaw = torch.atan2(r[:, 6], r[:, 7])
        boxes = torch.cat([x[:, None], y[:, None], r[:, 2:3], size, yaw[:, None], r[:, 8:10]], dim=1)
        if nms and len(scores) > 1:
            kept_idx = per_class_nms(boxes, scores, labels, nms_radius, nms_footprint_classes)
            boxes, scores, labels = boxes[kept_idx], scores[kept_idx], labels[kept_idx]
        results.append(Detections(boxes[:max_detections], scores[:max_detections], labels[:max_detections]))
    return results
