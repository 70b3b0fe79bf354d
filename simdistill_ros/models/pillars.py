"""Dynamic-pillar LiDAR encoder (PointPillars-style, plain PyTorch) on the camera BEV grid."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from simdistill_ros.models.backbone import conv_bn_relu
from simdistill_ros.models.config import BEVGridConfig, PillarConfig

POINT_FEATURES = 9  # x, y, z, intensity, offsets to pillar centre (2), offsets to pillar mean (3)


class PillarEncoder(nn.Module):
    """Points -> per-point Linear+BN+ReLU -> max into pillars -> dense canvas -> 2D convs.

    forward: points, a list of B tensors (P_i, 4) [x, y, z, intensity] in the base frame, (P_i, 5) with the
        time lag (s) of each point's sweep when ``cfg.lidar_sweeps`` > 1
        -> (B, C_lidar, X, Y) on the working BEV grid (the splat grid downsampled like the camera BEV).
    Non-finite points and points outside the grid are dropped.
    """

    def __init__(self, grid: BEVGridConfig, cfg: PillarConfig) -> None:
        super().__init__()
        self.grid = grid
        self.out_channels = cfg.out_channels
        self.point_columns = 5 if cfg.lidar_sweeps > 1 else 4
        self.pfn = nn.Sequential(
            nn.Linear(POINT_FEATURES + self.point_columns - 4, cfg.point_channels, bias=False),
            nn.BatchNorm1d(cfg.point_channels),
            nn.ReLU(inplace=True),
        )
        convs = [conv_bn_relu(cfg.point_channels, cfg.out_channels, 3, stride=grid.downsample)]
        convs += [
            conv_bn_relu(cfg.out_channels, cfg.out_channels, 3) for _ in range(max(cfg.num_convs - 1, 0))
        ]
        self.convs = nn.Sequential(*convs)
        # scales that bring raw coordinates to about [-1, 1] before the Linear
        half = [max(abs(grid.xbound[0]), abs(grid.xbound[1])), max(abs(grid.ybound[0]), abs(grid.ybound[1]))]
        self.register_buffer("coord_scale", torch.tensor(half + [4.0], dtype=torch.float32), persistent=False)

    def forward(self, points: list[Tensor]) -> Tensor:
        g = self.grid
        sx, sy = g.splat_shape
        b = len(points)
        c = self.pfn[0].out_features
        device = self.coord_scale.device
        pts, cells = [], []
        for i, p in enumerate(points):
            if p.shape[1] < self.point_columns:
                raise ValueError(f"points have {p.shape[1]} columns, the encoder needs {self.point_columns}")
            p = p.to(device=device, dtype=torch.float32)[:, : self.point_columns]
            p = p[torch.isfinite(p).all(dim=1)]
            ix = torch.floor((p[:, 0] - g.xbound[0]) / g.xbound[2]).long()
            iy = torch.floor((p[:, 1] - g.ybound[0]) / g.ybound[2]).long()
            keep = (
                (ix >= 0)
                & (ix < sx)
                & (iy >= 0)
                & (iy < sy)
                & (p[:, 2] >= g.zbound[0])
                & (p[:, 2] < g.zbound[1])
            )
            pts.append(p[keep])
            cells.append(i * sx * sy + ix[keep] * sy + iy[keep])
        p = torch.cat(pts)
        cell = torch.cat(cells)
        canvas = torch.zeros(b * sx * sy, c, device=device, dtype=torch.float32)
        if p.shape[0] > 1:
            feats = self.pfn(self._point_features(p, cell, b * sx * sy))
            # ReLU output is >= 0, so max with the zero canvas equals the max over the pillar's points
            canvas = canvas.scatter_reduce(0, cell[:, None].expand(-1, c), feats.to(canvas.dtype), "amax")
        else:
            # keep every parameter in the graph (DDP) even for an empty cloud
            canvas = canvas + 0.0 * sum(q.sum() for q in self.pfn.parameters())
        canvas = canvas.view(b, sx, sy, c).permute(0, 3, 1, 2).contiguous()
        return self.convs(canvas)

    def _point_features(self, p: Tensor, cell: Tensor, num_cells: int) -> Tensor:
        g = self.grid
        sy = g.splat_shape[1]
        local = cell % (g.splat_shape[0] * sy)
        cx = g.xbound[0] + (torch.div(local, sy, rounding_mode="floor").float() + 0.5) * g.xbound[2]
        cy = g.ybound[0] + ((local % sy).float() + 0.5) * g.ybound[2]
        xyz = p[:, :3]
        sums = xyz.new_zeros(num_cells, 3).index_add_(0, cell, xyz)
        counts = xyz.new_zeros(num_cells).index_add_(0, cell, torch.ones_like(xyz[:, 0]))
        mean = sums[cell] / counts[cell, None]
        centre_off = torch.stack([(xyz[:, 0] - cx) / g.xbound[2], (xyz[:, 1] - cy) / g.ybound[2]], 1)
        return torch.cat([xyz / self.coord_scale, p[:, 3:4], centre_off, xyz - mean, p[:, 4:]], dim=1)
