"""LSS view transform: per-pixel depth distribution x context, splatted (sum-pooled) into the BEV grid."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from simdistill_ros.models.backbone import conv_bn_relu
from simdistill_ros.models.config import BEVGridConfig


@dataclass
class LiftSplatOutput:
    """bev: (B, C_out, X, Y) on the working grid; depth: (B, N, D, fH, fW) softmax over depth bins;
    indices: (B*N*D*fH*fW,) int64 flat splat cells (B*X*Y is the dump cell), reusable by a second lift."""

    bev: Tensor
    depth: Tensor
    indices: Tensor


class LiftSplat(nn.Module):
    """Depth net -> softmax over D bins and C context channels -> outer product -> splat -> downsample.

    The frustum -> cell indices depend only on calibration and sizes; they are cached per calibration
    (keyed by a hash of the calibration tensors' bytes), so a fixed rig computes them once.

    forward: feats (B*N, C_in, fH, fW), intrinsics (B, N, 3, 3), cam_to_base (B, N, 4, 4), image_hw
        -> LiftSplatOutput
    """

    def __init__(
        self,
        grid: BEVGridConfig,
        in_channels: int,
        context_channels: int,
        out_channels: int,
        depthnet_channels: int = 64,
        cache_size: int = 8,
    ) -> None:
        super().__init__()
        self.grid = grid
        self.num_bins = grid.num_depth_bins
        self.context_channels = context_channels
        self.depthnet = nn.Sequential(
            conv_bn_relu(in_channels, depthnet_channels, 3),
            nn.Conv2d(depthnet_channels, self.num_bins + context_channels, 1),
        )
        ds = grid.downsample
        self.downsample = nn.Sequential(
            conv_bn_relu(context_channels, context_channels, 3),
            conv_bn_relu(context_channels, out_channels, 3, stride=ds),
            conv_bn_relu(out_channels, out_channels, 3),
        )
        d0, _, dstep = grid.dbound
        # bin centres, metres
        self.register_buffer(
            "depth_values",
            d0 + (torch.arange(self.num_bins, dtype=torch.float32) + 0.5) * dstep,
            persistent=False,
        )
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple, Tensor] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0

    # --- geometry -------------------------------------------------------------------------------------
    def geometry(
        self, intrinsics: Tensor, cam_to_base: Tensor, image_hw: tuple[int, int], feat_hw: tuple[int, int]
    ) -> Tensor:
        """(B*N*D*fH*fW,) int64 flat splat-cell index of every frustum point, cached per calibration."""
        key = (
            _tensor_digest(intrinsics),
            _tensor_digest(cam_to_base),
            tuple(intrinsics.shape[:2]),
            tuple(image_hw),
            tuple(feat_hw),
            str(intrinsics.device),
        )
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            self.cache_hits += 1
            return hit
        self.cache_misses += 1
        idx = self._compute_indices(intrinsics, cam_to_base, image_hw, feat_hw)
        self._cache[key] = idx
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return idx

    def clear_cache(self) -> None:
        self._cache.clear()

    @torch.no_grad()
    def frustum_points(
        self, intrinsics: Tensor, cam_to_base: Tensor, image_hw: tuple[int, int], feat_hw: tuple[int, int]
    ) -> Tensor:
        """Base-frame position of every frustum point: (B, N, D, fH*fW, 3)."""
        h, w = image_hw
        fh, fw = feat_hw
        dev = intrinsics.device
        k = intrinsics.to(torch.float64)
        t = cam_to_base.to(torch.float64)
        # feature cell (i, j) covers pixels [j*sx, (j+1)*sx); its centre in pixel-corner coordinates
        u = (torch.arange(fw, device=dev, dtype=torch.float64) + 0.5) * (w / fw)
        v = (torch.arange(fh, device=dev, dtype=torch.float64) + 0.5) * (h / fh)
        vv, uu = torch.meshgrid(v, u, indexing="ij")
        pix = torch.stack([uu.reshape(-1), vv.reshape(-1), torch.ones_like(uu).reshape(-1)], 0)  # (3, P)
        rays = torch.linalg.inv(k) @ pix  # (B, N, 3, P), z = 1
        d = self.depth_values.to(torch.float64)
        pts = rays[:, :, None] * d[None, None, :, None, None]  # (B, N, D, 3, P)
        rot, trans = t[:, :, None, :3, :3], t[:, :, None, :3, 3:]
        base = rot @ pts + trans  # (B, N, D, 3, P)
        return base.transpose(-1, -2)

    def _compute_indices(
        self, intrinsics: Tensor, cam_to_base: Tensor, image_hw: tuple[int, int], feat_hw: tuple[int, int]
    ) -> Tensor:
        g = self.grid
        sx, sy = g.splat_shape
        b = intrinsics.shape[0]
        p = self.frustum_points(intrinsics, cam_to_base, image_hw, feat_hw)  # (B, N, D, P, 3)
        ix = torch.floor((p[..., 0] - g.xbound[0]) / g.xbound[2]).long()
        iy = torch.floor((p[..., 1] - g.ybound[0]) / g.ybound[2]).long()
        z = p[..., 2]
        valid = (ix >= 0) & (ix < sx) & (iy >= 0) & (iy < sy) & (z >= g.zbound[0]) & (z < g.zbound[1])
        batch = torch.arange(b, device=ix.device).view(b, 1, 1, 1)
        flat = batch * (sx * sy) + ix * sy + iy
        dump = b * sx * sy
        return torch.where(valid, flat, torch.full_like(flat, dump)).reshape(-1)

    # --- lift / splat -----------------------------------------------------------------------------------
    def lift(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        """feats (B*N, C_in, fH, fW) -> depth (B*N, D, fH, fW) softmax, context (B*N, fH, fW, C)."""
        x = self.depthnet(feats)
        depth = x[:, : self.num_bins].softmax(dim=1)
        context = x[:, self.num_bins :].permute(0, 2, 3, 1)
        return depth, context

    def splat(self, depth: Tensor, context: Tensor, indices: Tensor, batch_size: int) -> Tensor:
        """Sum-pool the outer product into the splat grid: -> (B, C, X_splat, Y_splat)."""
        sx, sy = self.grid.splat_shape
        c = context.shape[-1]
        # (B*N, D, fH, fW, C) in the same (B, N, D, fH, fW) order as the indices
        vol = (depth.unsqueeze(-1) * context.unsqueeze(1)).reshape(-1, c)
        out = vol.new_zeros(batch_size * sx * sy + 1, c)  # + 1: the dump cell for out-of-grid points
        out.index_add_(0, indices, vol)
        return out[:-1].view(batch_size, sx, sy, c).permute(0, 3, 1, 2).contiguous()

    def forward(
        self,
        feats: Tensor,
        intrinsics: Tensor,
        cam_to_base: Tensor,
        image_hw: tuple[int, int],
        indices: Tensor | None = None,
    ) -> LiftSplatOutput:
        b, n = intrinsics.shape[:2]
        fh, fw = feats.shape[-2:]
        if indices is None:
            indices = self.geometry(intrinsics, cam_to_base, image_hw, (fh, fw))
        depth, context = self.lift(feats)
        bev = self.downsample(self.splat(depth, context, indices, b))
        return LiftSplatOutput(bev=bev, depth=depth.view(b, n, self.num_bins, fh, fw), indices=indices)


def _tensor_digest(t: Tensor) -> bytes:
    data = t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return hashlib.blake2b(data, digest_size=16).digest()
