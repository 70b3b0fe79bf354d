"""LSS view transform: per-pixel depth distribution x context, splatted (sum-pooled) into the BEV grid."""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from simdistill_ros.models.backbone import conv_bn_relu
from simdistill_ros.models.config import BEVGridConfig


@dataclass
class SplatGeometry:
    """Where every frustum point of one rig lands: depends only on calibration and sizes, so it is cached
    per calibration (and fed to an exported ONNX graph as inputs).

    indices: (B*N*D*fH*fW,) int64 flat splat cell (b, x, y) of every frustum point; B*X*Y (the dump cell)
        for points outside the grid.
    point: (M,) int64 the frustum points inside the grid, flat (B, N, D, fH, fW) index, sorted by cell.
    pixel: (M,) int64 their feature pixel, flat (B, N, fH, fW) index.
    cell: (M,) int64 their splat cell, flat (B, X, Y) index, ascending.
    crow: (B*X*Y + 1,) int64 row pointers: the points of cell k are ``point[crow[k]:crow[k + 1]]``.
    """

    point: Tensor
    pixel: Tensor
    cell: Tensor
    crow: Tensor | None = None  # None in an exported graph (no sparse splat there)
    indices: Tensor | None = None

    @classmethod
    def from_indices(cls, indices: Tensor, num_cells: int, depth_bins: int, pixels: int) -> SplatGeometry:
        """``num_cells`` = B*X*Y (the dump index); ``pixels`` = fH*fW per camera."""
        valid = (indices < num_cells).nonzero().flatten()
        cell, order = torch.sort(indices[valid], stable=True)
        point = valid[order]
        pixel = torch.div(point, depth_bins * pixels, rounding_mode="floor") * pixels + point % pixels
        counts = torch.bincount(cell, minlength=num_cells)
        crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        return cls(point, pixel, cell, crow, indices)


@dataclass
class LiftSplatOutput:
    """bev: (B, C_out, X, Y) on the working grid; depth: (B, N, D, fH, fW) softmax over depth bins;
    geometry: the rig's splat geometry, reusable by a second lift on the same features."""

    bev: Tensor
    depth: Tensor
    geometry: SplatGeometry

    @property
    def indices(self) -> Tensor | None:
        """(B*N*D*fH*fW,) int64 flat splat cells (B*X*Y is the dump cell)."""
        return self.geometry.indices


class LiftSplat(nn.Module):
    """Depth net -> softmax over D bins and C context channels -> outer product -> splat -> downsample.

    The frustum -> cell indices depend only on calibration and sizes; they are cached per calibration
    (keyed by a hash of the calibration tensors' bytes), so a fixed rig computes them once.

    The splat sums, per BEV cell, depth x context over the frustum points that land in it. Without
    gradients on the CPU it is one sparse (cells x pixels) @ (pixels x C) product whose pattern is the
    cached geometry and whose values are the depth probabilities: it never materialises the
    (points x C) outer product, which made the splat the model's most expensive step. With gradients,
    on other devices and in ONNX export it gathers the in-grid points and scatter-adds them.

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
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple, SplatGeometry] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0

    # --- geometry -------------------------------------------------------------------------------------
    def geometry(
        self, intrinsics: Tensor, cam_to_base: Tensor, image_hw: tuple[int, int], feat_hw: tuple[int, int]
    ) -> Tensor:
        """(B*N*D*fH*fW,) int64 flat splat-cell index of every frustum point, cached per calibration."""
        return self.splat_geometry(intrinsics, cam_to_base, image_hw, feat_hw).indices

    def splat_geometry(
        self, intrinsics: Tensor, cam_to_base: Tensor, image_hw: tuple[int, int], feat_hw: tuple[int, int]
    ) -> SplatGeometry:
        """The rig's :class:`SplatGeometry`, cached per calibration."""
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
        geom = splat_geometry(self.grid, intrinsics, cam_to_base, image_hw, feat_hw)
        self._cache[key] = geom
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return geom

    def _plan(self, indices: Tensor, batch_size: int, feat_hw: tuple[int, int]) -> SplatGeometry:
        sx, sy = self.grid.splat_shape
        return SplatGeometry.from_indices(
            indices, batch_size * sx * sy, self.num_bins, feat_hw[0] * feat_hw[1]
        )

    def clear_cache(self) -> None:
        self._cache.clear()

    def frustum_points(
        self, intrinsics: Tensor, cam_to_base: Tensor, image_hw: tuple[int, int], feat_hw: tuple[int, int]
    ) -> Tensor:
        """Base-frame position of every frustum point: (B, N, D, fH*fW, 3)."""
        return frustum_points(self.grid, intrinsics, cam_to_base, image_hw, feat_hw)

    # --- lift / splat -----------------------------------------------------------------------------------
    def lift(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        """feats (B*N, C_in, fH, fW) -> depth (B*N, D, fH, fW) softmax, context (B*N, fH, fW, C)."""
        x = self.depthnet(feats)
        depth = x[:, : self.num_bins].softmax(dim=1)
        context = x[:, self.num_bins :].permute(0, 2, 3, 1)
        return depth, context

    def splat(
        self, depth: Tensor, context: Tensor, geometry: Tensor | SplatGeometry, batch_size: int
    ) -> Tensor:
        """Sum-pool the outer product into the splat grid: -> (B, C, X_splat, Y_splat).

        depth (B*N, D, fH, fW), context (B*N, fH, fW, C); ``geometry`` a :class:`SplatGeometry` or its
        flat ``indices``."""
        sx, sy = self.grid.splat_shape
        if isinstance(geometry, Tensor):
            geometry = self._plan(geometry, batch_size, (depth.shape[-2], depth.shape[-1]))
        c = context.shape[-1]
        ctx = context.reshape(-1, c)
        # index_select, not [], so that the ONNX graph gets Gather (GatherND is several times slower)
        weights = depth.reshape(-1).index_select(0, geometry.point)  # (M,) depth of every in-grid point
        cells = batch_size * sx * sy
        if geometry.crow is not None and _sparse_splat(ctx):
            with warnings.catch_warnings():  # "sparse CSR support is in beta": these ops are plain
                warnings.simplefilter("ignore", UserWarning)
                w = torch.sparse_csr_tensor(
                    geometry.crow, geometry.pixel, weights.to(ctx.dtype), (cells, ctx.shape[0])
                )
            out = torch.sparse.mm(w, ctx)
        else:
            vol = weights[:, None].to(ctx.dtype) * ctx.index_select(0, geometry.pixel)  # (M, C)
            out = vol.new_zeros(cells, c).index_add_(0, geometry.cell, vol)
        return out.view(batch_size, sx, sy, c).permute(0, 3, 1, 2).contiguous()

    def forward(
        self,
        feats: Tensor,
        intrinsics: Tensor,
        cam_to_base: Tensor,
        image_hw: tuple[int, int],
        geometry: SplatGeometry | None = None,
    ) -> LiftSplatOutput:
        b, n = intrinsics.shape[:2]
        fh, fw = feats.shape[-2:]
        if geometry is None:
            geometry = self.splat_geometry(intrinsics, cam_to_base, image_hw, (fh, fw))
        depth, context = self.lift(feats)
        bev = self.downsample(self.splat(depth, context, geometry, b))
        return LiftSplatOutput(bev=bev, depth=depth.view(b, n, self.num_bins, fh, fw), geometry=geometry)


@torch.no_grad()
def frustum_points(
    grid: BEVGridConfig,
    intrinsics: Tensor,
    cam_to_base: Tensor,
    image_hw: tuple[int, int],
    feat_hw: tuple[int, int],
) -> Tensor:
    """Base-frame position (float64) of every frustum point: (B, N, D, fH*fW, 3)."""
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
    d0, _, dstep = grid.dbound
    d = d0 + (torch.arange(grid.num_depth_bins, device=dev, dtype=torch.float64) + 0.5) * dstep  # bin centres
    pts = rays[:, :, None] * d[None, None, :, None, None]  # (B, N, D, 3, P)
    rot, trans = t[:, :, None, :3, :3], t[:, :, None, :3, 3:]
    base = rot @ pts + trans  # (B, N, D, 3, P)
    return base.transpose(-1, -2)


@torch.no_grad()
def frustum_cells(
    grid: BEVGridConfig,
    intrinsics: Tensor,
    cam_to_base: Tensor,
    image_hw: tuple[int, int],
    feat_hw: tuple[int, int],
) -> Tensor:
    """(B*N*D*fH*fW,) int64 flat splat cell of every frustum point; B*X*Y (the dump cell) outside the grid."""
    g = grid
    sx, sy = g.splat_shape
    b = intrinsics.shape[0]
    p = frustum_points(g, intrinsics, cam_to_base, image_hw, feat_hw)  # (B, N, D, P, 3)
    ix = torch.floor((p[..., 0] - g.xbound[0]) / g.xbound[2]).long()
    iy = torch.floor((p[..., 1] - g.ybound[0]) / g.ybound[2]).long()
    z = p[..., 2]
    valid = (ix >= 0) & (ix < sx) & (iy >= 0) & (iy < sy) & (z >= g.zbound[0]) & (z < g.zbound[1])
    batch = torch.arange(b, device=ix.device).view(b, 1, 1, 1)
    flat = batch * (sx * sy) + ix * sy + iy
    dump = b * sx * sy
    return torch.where(valid, flat, torch.full_like(flat, dump)).reshape(-1)


def splat_geometry(
    grid: BEVGridConfig,
    intrinsics: Tensor,
    cam_to_base: Tensor,
    image_hw: tuple[int, int],
    feat_hw: tuple[int, int],
) -> SplatGeometry:
    """The :class:`SplatGeometry` of a rig: intrinsics (B, N, 3, 3), cam_to_base (B, N, 4, 4) for images of
    ``image_hw``, features of ``feat_hw``. Not cached (``LiftSplat.splat_geometry`` caches)."""
    sx, sy = grid.splat_shape
    idx = frustum_cells(grid, intrinsics, cam_to_base, image_hw, feat_hw)
    return SplatGeometry.from_indices(
        idx, intrinsics.shape[0] * sx * sy, grid.num_depth_bins, feat_hw[0] * feat_hw[1]
    )


def _sparse_splat(context: Tensor) -> bool:
    """Whether the splat runs as a sparse matrix product: inference on the CPU (its sparse kernels are
    fast and exact for fp32), not under autograd or in ONNX export (no sparse ops there)."""
    return (
        context.device.type == "cpu"
        and context.dtype in (torch.float32, torch.float64)
        and not torch.is_grad_enabled()
        and not torch.onnx.is_in_onnx_export()
        and not torch.compiler.is_compiling()
    )


def _tensor_digest(t: Tensor) -> bytes:
    data = t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return hashlib.blake2b(data, digest_size=16).digest()
