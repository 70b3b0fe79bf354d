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
class SplatGeometry:
    """Where every frustum point of one rig lands: depends only on calibration and sizes, so it is cached
    per calibration (and fed to an exported ONNX graph as inputs).

    The splat runs per image column: the frustum points of one feature column (b, n, u), all rows and
    depths, reach a few BEV cells (about one per depth bin for a level camera). Numbering the distinct
    cells of each column j = 0..J-1, the column's splat is a (J, fH) @ (fH, C) product whose matrix holds
    the depth probabilities: J*fH entries where the point list has D*fH.

    point: (M,) int64 the frustum points inside the grid, as flat indices into the depth distribution
        (B, N, fH, fW, D) (depth bins innermost).
    slot: (M,) int64 where each point's depth probability is summed: flat (B*N*fW, J, fH) index of its
        column, its cell's number j within the column, and its row.
    slot_cell: (B*N*fW*J,) int64 the splat cell, flat (B, X, Y), of every (column, j); B*X*Y (the dump
        cell) where a column reaches fewer than J cells.
    indices: (B*N*D*fH*fW,) int64 flat splat cell of every frustum point; B*X*Y for points outside the
        grid (None in an exported graph).
    """

    point: Tensor
    slot: Tensor
    slot_cell: Tensor
    indices: Tensor | None = None

    @classmethod
    def from_indices(
        cls, indices: Tensor, num_cells: int, depth_bins: int, feat_hw: tuple[int, int]
    ) -> SplatGeometry:
        """``num_cells`` = B*X*Y (the dump index); ``feat_hw`` = (fH, fW) of every camera."""
        fh, fw = feat_hw
        per_camera = depth_bins * fh * fw
        num_columns = indices.numel() // per_camera * fw
        point = (indices < num_cells).nonzero().flatten()  # flat (B, N, D, fH, fW), as ``indices``
        cell = indices[point]
        camera = torch.div(point, per_camera, rounding_mode="floor")
        pixel = point % (fh * fw)
        depth = torch.div(point, fh * fw, rounding_mode="floor") % depth_bins
        column = camera * fw + pixel % fw
        row = torch.div(pixel, fw, rounding_mode="floor")
        # the distinct (column, cell) pairs, sorted by column and then cell; j counts within a column
        pairs, pair_of_point = torch.unique(column * (num_cells + 1) + cell, return_inverse=True)
        pair_column = torch.div(pairs, num_cells + 1, rounding_mode="floor")
        counts = torch.bincount(pair_column, minlength=num_columns)
        width = max(int(counts.max()), 1) if pairs.numel() else 1
        j = torch.arange(pairs.numel(), device=pairs.device) - (counts.cumsum(0) - counts)[pair_column]
        pair_slot = pair_column * width + j
        slot_cell = torch.full((num_columns * width,), num_cells, dtype=torch.long, device=indices.device)
        slot_cell[pair_slot] = pairs % (num_cells + 1)
        in_depth = (camera * fh * fw + pixel) * depth_bins + depth
        return cls(in_depth, pair_slot[pair_of_point] * fh + row, slot_cell, indices)


@dataclass
class LiftSplatOutput:
    """bev: (B, C_out, X, Y) on the working grid; depth: (B, N, D, fH, fW) softmax over depth bins (a view
    of the bins-innermost distribution the splat reads);
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

    The splat sums, per BEV cell, depth x context over the frustum points that land in it. It never
    materialises that (points x C) outer product, which made the splat the model's most expensive step:
    per image column, the depth probabilities are summed into a (cells of the column x rows) matrix that
    multiplies the column's (rows x C) context, and the products are added into their cells (see
    :class:`SplatGeometry`). Exact, with or without autograd, and the same ops in the ONNX graph.

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
        return SplatGeometry.from_indices(indices, batch_size * sx * sy, self.num_bins, feat_hw)

    def clear_cache(self) -> None:
        self._cache.clear()

    def frustum_points(
        self, intrinsics: Tensor, cam_to_base: Tensor, image_hw: tuple[int, int], feat_hw: tuple[int, int]
    ) -> Tensor:
        """Base-frame position of every frustum point: (B, N, D, fH*fW, 3)."""
        return frustum_points(self.grid, intrinsics, cam_to_base, image_hw, feat_hw)

    # --- lift / splat -----------------------------------------------------------------------------------
    def lift(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        """feats (B*N, C_in, fH, fW) -> depth (B*N, fH, fW, D) softmax, context (B*N, fH, fW, C)."""
        x = self.depthnet(feats)
        # bins innermost: a softmax over the last axis (ONNX Runtime transposes for any other, twice)
        depth = x[:, : self.num_bins].permute(0, 2, 3, 1).softmax(dim=-1)
        context = x[:, self.num_bins :].permute(0, 2, 3, 1)
        return depth, context

    def splat(
        self, depth: Tensor, context: Tensor, geometry: Tensor | SplatGeometry, batch_size: int
    ) -> Tensor:
        """Sum-pool the outer product into the splat grid: -> (B, C, X_splat, Y_splat).

        depth (B*N, fH, fW, D), context (B*N, fH, fW, C); ``geometry`` a :class:`SplatGeometry` or its
        flat ``indices``."""
        sx, sy = self.grid.splat_shape
        bn, fh, fw, c = context.shape
        if isinstance(geometry, Tensor):
            geometry = self._plan(geometry, batch_size, (fh, fw))
        # index_select, not [], so that the ONNX graph gets Gather (GatherND is several times slower)
        weights = depth.reshape(-1).index_select(0, geometry.point).to(context.dtype)  # (M,)
        # scatter_add_, not index_add_: it exports as ScatterElements, which onnxruntime's CPU provider runs
        # in one thread; its ScatterND (index_add_) with reduction "add" loses sums to a race between the
        # intra-op threads wherever indices repeat, as they do here
        matrices = weights.new_zeros(geometry.slot_cell.numel() * fh).scatter_add_(0, geometry.slot, weights)
        columns = context.permute(0, 2, 1, 3).reshape(bn * fw, fh, c)  # (B*N*fW, fH, C)
        sums = torch.bmm(matrices.view(bn * fw, -1, fh), columns).reshape(-1, c)  # (B*N*fW*J, C)
        cells = batch_size * sx * sy
        cell_index = geometry.slot_cell[:, None].expand(-1, c)
        out = sums.new_zeros(cells + 1, c).scatter_add_(0, cell_index, sums)[:cells]
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
        depth = depth.view(b, n, fh, fw, self.num_bins).permute(0, 1, 4, 2, 3)
        return LiftSplatOutput(bev=bev, depth=depth, geometry=geometry)


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
    return SplatGeometry.from_indices(idx, intrinsics.shape[0] * sx * sy, grid.num_depth_bins, feat_hw)


def _tensor_digest(t: Tensor) -> bytes:
    data = t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return hashlib.blake2b(data, digest_size=16).digest()
