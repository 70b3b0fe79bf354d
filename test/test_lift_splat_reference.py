"""Lift-splat's bookkeeping against values worked out by hand: the per-column splat plan of a hand-made
index list, the splat against the per-point sum on tilted cameras, the per-calibration geometry cache (least
recently used out first), and the depth distribution."""

from __future__ import annotations

import numpy as np
import torch

from simdistill_ros.geometry import nuscenes_like_rig
from simdistill_ros.models.config import BEVGridConfig
from simdistill_ros.models.lift_splat import LiftSplat, SplatGeometry

GRID = BEVGridConfig(xbound=(-20.0, 20.0, 2.0), ybound=(-20.0, 20.0, 2.0), dbound=(1.0, 21.0, 4.0))
H, W = 32, 64


def test_splat_plan_of_a_hand_made_index_list() -> None:
    # 2 cameras x 2 depth bins x (2 rows x 2 columns) = 16 frustum points, flat ((n*D + d)*fH + v)*fW + u;
    # cells 0-5, 6 is the dump cell (outside the grid)
    indices = torch.tensor([3, 0, 3, 6, 3, 1, 6, 0, 4, 4, 6, 6, 6, 6, 2, 6])
    plan = SplatGeometry.from_indices(indices, num_cells=6, depth_bins=2, feat_hw=(2, 2))
    # the in-grid points 0, 1, 2, 4, 5, 7, 8, 9, 14, as indices into the depth distribution
    # (n, v, u, d): ((n*fH + v)*fW + u)*D + d
    assert plan.point.tolist() == [0, 2, 4, 1, 3, 7, 8, 10, 13]
    # columns (camera, u): 0 = (0, 0) reaches cell 3; 1 = (0, 1) cells 0 and 1; 2 = (1, 0) cells 2 and 4;
    # 3 = (1, 1) cell 4. So J = 2, and a column's cells are numbered in ascending order
    assert plan.slot_cell.tolist() == [3, 6, 0, 1, 2, 4, 4, 6]
    # slot = (column * J + j) * fH + row; points 0 and 4 (pixel (0, 0), depth bins 0 and 1) share one
    assert plan.slot.tolist() == [0, 4, 1, 0, 6, 5, 10, 12, 9]
    assert plan.indices is indices
    # no point in the grid: one dump slot per column
    empty = SplatGeometry.from_indices(torch.full((16,), 6), num_cells=6, depth_bins=2, feat_hw=(2, 2))
    assert empty.point.numel() == 0 and empty.slot_cell.tolist() == [6, 6, 6, 6]


def _rig(shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    rig = nuscenes_like_rig(H, W)
    k = torch.from_numpy(np.stack([c.intrinsics for c in rig.cameras])).float()[None]
    pose = torch.from_numpy(np.stack([c.cam_to_base.matrix() for c in rig.cameras])).float()[None]
    pose[..., 0, 3] += shift
    return k, pose


def test_geometry_cache_drops_the_least_recently_used_rig() -> None:
    ls = LiftSplat(GRID, in_channels=8, context_channels=4, out_channels=4, depthnet_channels=8, cache_size=2)
    rigs = {name: _rig(shift) for name, shift in (("a", 0.0), ("b", 1.0), ("c", 2.0))}

    def get(name: str) -> SplatGeometry:
        return ls.splat_geometry(*rigs[name], (H, W), (H // 8, W // 8))

    first_a = get("a")
    get("b")
    assert get("a") is first_a  # a hit, and now a is the most recently used
    get("c")  # the cache holds two: b goes
    assert get("a") is first_a
    get("b")  # a miss: computed again
    assert (ls.cache_hits, ls.cache_misses) == (2, 4)
    assert len(ls._cache) == 2
    ls.clear_cache()
    assert len(ls._cache) == 0 and get("a") is not first_a


def test_depth_is_a_distribution_over_bins_and_the_geometry_is_the_cached_one() -> None:
    ls = LiftSplat(GRID, in_channels=8, context_channels=4, out_channels=4, depthnet_channels=8).eval()
    k, pose = _rig(0.0)
    feats = torch.randn(6, 8, H // 8, W // 8)
    with torch.no_grad():
        out = ls(feats, k, pose, (H, W))
    assert out.depth.shape == (1, 6, GRID.num_depth_bins, H // 8, W // 8) == (1, 6, 5, 4, 8)
    assert torch.allclose(out.depth.sum(dim=2), torch.ones(1, 6, 4, 8))
    # the distribution of one pixel is the softmax of its depth logits
    logits = ls.depthnet(feats)[:, : GRID.num_depth_bins]
    torch.testing.assert_close(out.depth[0, 2, :, 1, 3], logits[2, :, 1, 3].softmax(0))
    assert out.geometry is ls.splat_geometry(k, pose, (H, W), (H // 8, W // 8))
    assert out.bev.shape == (1, 4, 10, 10)


def test_lift_splat_layers_follow_the_arguments() -> None:
    ls = LiftSplat(GRID, in_channels=8, context_channels=4, out_channels=6)
    assert ls.context_channels == 4 and ls.num_bins == 5 and ls.cache_size == 8

    def conv3(m: torch.nn.Module, cin: int, cout: int, stride: int = 1) -> None:
        conv = m[0]
        assert (conv.in_channels, conv.out_channels) == (cin, cout)
        assert conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.stride == (stride, stride)

    conv3(ls.depthnet[0], 8, 64)  # the default depth-net width
    last = ls.depthnet[1]
    assert (last.in_channels, last.out_channels, last.kernel_size) == (64, 5 + 4, (1, 1))
    assert len(ls.downsample) == 3
    conv3(ls.downsample[0], 4, 4)
    conv3(ls.downsample[1], 4, 6, stride=GRID.downsample)
    conv3(ls.downsample[2], 6, 6)
    # no buffers but BatchNorm statistics: nothing calibration-dependent is saved with the weights
    assert {n.rsplit(".", 1)[1] for n, _ in ls.named_buffers()} == {
        "running_mean",
        "running_var",
        "num_batches_tracked",
    }


def _tilted(pose: torch.Tensor, pitch: float, yaw: float) -> torch.Tensor:
    """cam_to_base poses turned, in each camera's optical frame, about x (pitch) and then y (yaw)."""
    cx, sx, cy, sy = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    turn = torch.eye(4)
    turn[:3, :3] = torch.from_numpy(rx @ ry).float()
    return pose @ turn


def test_column_splat_equals_the_per_point_sum() -> None:
    """The splat (one product per image column) against the textbook one, every in-grid frustum point's
    depth x context added into its cell: values and gradients, on cameras pitched and turned so that a
    column's rows spread over several cells and some depth bins of one pixel share a cell."""
    grid = BEVGridConfig(xbound=(-20.0, 20.0, 1.0), ybound=(-20.0, 20.0, 1.0), dbound=(1.0, 21.0, 0.5))
    ls = LiftSplat(grid, in_channels=8, context_channels=5, out_channels=5, depthnet_channels=8)
    k, pose = _rig(0.0)
    pose = _tilted(pose, 0.4, 0.2)
    fh, fw = H // 8, W // 8
    geom = ls.splat_geometry(k, pose, (H, W), (fh, fw))
    cells_per_column = geom.slot_cell.numel() // (6 * fw)
    assert cells_per_column > grid.num_depth_bins  # rows of a column reach different cells
    same_cell = geom.slot.numel() - geom.slot.unique().numel()
    assert same_cell > 0  # two depth bins of one pixel in one cell: their probabilities add
    depth = torch.rand(6, fh, fw, grid.num_depth_bins, requires_grad=True)  # bins innermost
    context = torch.randn(6, fh, fw, 5, requires_grad=True)
    got = ls.splat(depth, context, geom, 1)

    sx, sy = grid.splat_shape
    vol = depth.permute(0, 3, 1, 2)[..., None] * context[:, None]  # (6, D, fH, fW, 5), as geom.indices
    want = torch.zeros(sx * sy + 1, 5).index_add(0, geom.indices, vol.reshape(-1, 5))[:-1]
    want = want.view(1, sx, sy, 5).permute(0, 3, 1, 2)
    assert want.abs().sum() > 1.0
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    probe = torch.randn_like(got)
    g_got = torch.autograd.grad((got * probe).sum(), (depth, context))
    g_want = torch.autograd.grad((want * probe).sum(), (depth, context))
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # the same without autograd
        torch.testing.assert_close(ls.splat(depth, context, geom, 1), want.detach(), atol=1e-5, rtol=1e-5)
