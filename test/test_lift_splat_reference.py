"""Lift-splat's bookkeeping against values worked out by hand: the sorted splat plan of a hand-made index
list, the per-calibration geometry cache (least recently used out first), and the depth distribution."""

from __future__ import annotations

import numpy as np
import torch

from simdistill_ros.geometry import nuscenes_like_rig
from simdistill_ros.models.config import BEVGridConfig
from simdistill_ros.models.lift_splat import LiftSplat, SplatGeometry

GRID = BEVGridConfig(xbound=(-20.0, 20.0, 2.0), ybound=(-20.0, 20.0, 2.0), dbound=(1.0, 21.0, 4.0))
H, W = 32, 64


def test_splat_plan_of_a_hand_made_index_list() -> None:
    # 2 cameras x 2 depth bins x 3 pixels = 12 frustum points; 6 cells, 6 is the dump cell (outside)
    indices = torch.tensor([3, 0, 3, 6, 0, 1, 6, 4, 0, 6, 6, 6])
    plan = SplatGeometry.from_indices(indices, num_cells=6, depth_bins=2, pixels=3)
    # by cell, and within a cell in point order: cell 0 <- 1, 4, 8; 1 <- 5; 3 <- 0, 2; 4 <- 7
    assert plan.point.tolist() == [1, 4, 8, 5, 0, 2, 7]
    assert plan.cell.tolist() == [0, 0, 0, 1, 3, 3, 4]
    # pixel = camera * 3 + point % 3, camera = point // 6
    assert plan.pixel.tolist() == [1, 1, 5, 2, 0, 2, 4]
    # row pointers over all six cells, the empty cells 2 and 5 included
    assert plan.crow.tolist() == [0, 3, 4, 4, 6, 7, 7]
    assert plan.indices is indices


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
