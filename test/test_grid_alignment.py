"""Cross-modal grid alignment: one 3D point lands in the same working-grid BEV cell through the LiDAR
pillars, through lift-splat (the pixel and depth bin a pinhole projection gives it) and in the head's
target index; for a point seen by every camera of the six-camera rig (ahead of, beside and behind the car).

Both encoders are turned into probes: deterministic weights that pass "something is here" straight
through (identity centre taps, the stride-2 conv summing exactly the 2x2 splat cells of one working cell),
so the output is non-zero only in the cell the geometry put the point in. Any transpose, mirror or
off-by-one in either path moves that cell.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from simdistill_ros.geometry import nuscenes_like_rig
from simdistill_ros.models import tiny
from simdistill_ros.models.head import build_targets
from simdistill_ros.models.lift_splat import LiftSplat
from simdistill_ros.models.pillars import PillarEncoder

H, W = 128, 352  # the tiny preset's input; stride-8 features 16 x 44
RIG = nuscenes_like_rig(H, W)
GRID = tiny().grid
DEPTH_BIN = 11  # centre 12.5 m (bins of 1 m from 1 m)


def _probe_convs(module: nn.Module) -> None:
    """Every Conv2d sums its inputs at the centre tap (stride 1) or over the 2x2 cells (taps 1..2) that
    make one downsampled cell (stride 2, padding 1); BatchNorms in eval with unit statistics."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
            w = torch.zeros_like(m.weight)
            if m.stride == (2, 2):
                w[:, :, 1:3, 1:3] = 1.0
            else:
                w[:, :, 1, 1] = 1.0
            m.weight.data.copy_(w)
    module.eval()


def _lift_splat_probe() -> LiftSplat:
    d = GRID.num_depth_bins
    ls = LiftSplat(GRID, in_channels=d + 1, context_channels=1, out_channels=1, depthnet_channels=d + 1)
    _probe_convs(ls.downsample)
    first, last = ls.depthnet[0][0], ls.depthnet[1]
    first.weight.data.zero_()
    first.weight.data[range(d + 1), range(d + 1), 1, 1] = 1.0  # identity
    last.weight.data.zero_()
    last.bias.data.zero_()
    last.weight.data[range(d), range(d), 0, 0] = 50.0  # one-hot input -> (almost) one-hot softmax
    last.weight.data[d, d, 0, 0] = 1.0  # the context: "a point is here"
    ls.depthnet.eval()
    return ls


def _pillar_probe() -> PillarEncoder:
    enc = PillarEncoder(GRID, tiny().pillars)
    enc.pfn[0].weight.data.zero_()
    enc.pfn[1].bias.data.fill_(1.0)  # every point feature is 1 after Linear + BN + ReLU
    _probe_convs(enc.convs)
    return enc.eval()


def _point_seen_by(cam_index: int) -> tuple[np.ndarray, int, int]:
    """A base-frame point that camera ``cam_index`` sees at the centre of feature cell (i, j), off the
    optical axis (left of and below the principal point), at the centre of ``DEPTH_BIN``."""
    cam = RIG.cameras[cam_index]
    fh, fw = H // 8, W // 8
    i, j = fh * 5 // 8, fw // 4
    u, v = (j + 0.5) * 8, (i + 0.5) * 8
    depth = GRID.dbound[0] + (DEPTH_BIN + 0.5) * GRID.dbound[2]
    p_cam = depth * np.linalg.inv(cam.intrinsics) @ np.array([u, v, 1.0])
    p = (cam.cam_to_base.matrix() @ np.append(p_cam, 1.0))[:3]
    # the projection brings it back to the same pixel and depth (pinhole: K [R|t]^-1 p)
    back = np.linalg.inv(cam.cam_to_base.matrix()) @ np.append(p, 1.0)
    uvw = cam.intrinsics @ back[:3]
    assert np.allclose(uvw[:2] / uvw[2], [u, v]) and np.isclose(back[2], depth)
    assert abs(u - cam.intrinsics[0, 2]) > 40 and abs(v - cam.intrinsics[1, 2]) > 10  # off-axis
    return p, i, j


def _nonzero_cells(bev: torch.Tensor) -> set[tuple[int, int]]:
    hit = bev[0].abs().amax(0) > 0.5
    return {(int(x), int(y)) for x, y in hit.nonzero().tolist()}


@pytest.mark.parametrize("cam_index", range(len(RIG.cameras)), ids=[c.name for c in RIG.cameras])
def test_point_lands_in_one_cell_through_lidar_camera_and_head(cam_index: int) -> None:
    p, i, j = _point_seen_by(cam_index)
    nx, ny = GRID.bev_shape
    cell_x, cell_y = GRID.bev_cell
    expected = (int((p[0] - GRID.xbound[0]) // cell_x), int((p[1] - GRID.ybound[0]) // cell_y))
    assert 0 <= expected[0] < nx and 0 <= expected[1] < ny
    assert expected[0] != expected[1]  # else a transpose would not show

    # LiDAR: two returns of the point (a single-point cloud takes the empty-cloud path)
    pts = torch.tensor([[*p, 0.5], [*p, 0.5]], dtype=torch.float32)
    with torch.no_grad():
        lidar_bev = _pillar_probe()([pts])
    assert lidar_bev.shape[-2:] == (nx, ny)
    assert _nonzero_cells(lidar_bev) == {expected}

    # camera: a feature map that says "depth bin DEPTH_BIN" at feature cell (i, j) and nothing elsewhere
    d = GRID.num_depth_bins
    feats = torch.zeros(1, d + 1, H // 8, W // 8)
    feats[0, DEPTH_BIN, i, j] = 1.0
    feats[0, d, i, j] = 1.0
    k = torch.from_numpy(RIG.intrinsics_array()[cam_index])[None, None]
    t = torch.from_numpy(RIG.cam_to_base_array()[cam_index])[None, None]
    with torch.no_grad():
        cam_bev = _lift_splat_probe()(feats, k, t, (H, W)).bev
    assert _nonzero_cells(cam_bev) == {expected}

    # head: the target index of a box centred on the point
    box = torch.tensor([[p[0], p[1], p[2], 4.0, 2.0, 1.5, 0.0, 0.0, 0.0]], dtype=torch.float32)
    targets = build_targets([box], [torch.tensor([0])], GRID, tiny().head)
    assert targets.mask[0, 0] and int(targets.indices[0, 0]) == expected[0] * ny + expected[1]
    assert targets.heatmap[0, 0, expected[0], expected[1]] == 1.0
