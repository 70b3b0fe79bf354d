"""The LiDAR pillar encoder against values worked out by hand: its layers, the nine per-point features,
which points it keeps, and the pillar canvas (max over a pillar's points, x down the rows, y across).

The grid is asymmetric (x from -6 to 10 m in 2 m cells, y from -5 to 4 m in 0.5 m cells: 8 x 18 splat
cells) so that a swapped axis, bound or cell size changes a value."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from simdistill_ros.models.config import BEVGridConfig, PillarConfig
from simdistill_ros.models.pillars import POINT_FEATURES, PillarEncoder

GRID = BEVGridConfig(xbound=(-6.0, 10.0, 2.0), ybound=(-5.0, 4.0, 0.5), zbound=(-3.0, 5.0, 8.0), downsample=2)
SX, SY = 8, 18  # splat cells; the working grid is 4 x 9

# two points in splat cell (3, 7) (centre (1.0, -1.25)), one in cell (0, 15) (centre (-5.0, 2.75))
P1 = [0.25, -1.5, 1.0, 0.3]
P2 = [0.75, -1.25, 3.0, 0.7]
P3 = [-5.2, 2.9, -2.0, 1.0]
# x/10, y/5, z/4 | intensity | (x - cx)/2, (y - cy)/0.5 | x, y, z minus the pillar mean (0.5, -1.375, 2)
F1 = [0.025, -0.3, 0.25, 0.3, -0.375, -0.5, -0.25, -0.125, -1.0]
F2 = [0.075, -0.25, 0.75, 0.7, -0.125, 0.0, 0.25, 0.125, 1.0]
F3 = [-0.52, 0.58, -0.5, 1.0, -0.1, 0.3, 0.0, 0.0, 0.0]


def encoder(**kw) -> PillarEncoder:
    return PillarEncoder(GRID, PillarConfig(**{"point_channels": 4, "out_channels": 6, "num_convs": 2, **kw}))


def capture(
    enc: PillarEncoder, points: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(per-point features into the Linear, the canvas into the convs, the output)."""
    seen = {}
    h1 = enc.pfn[0].register_forward_hook(lambda m, i, o: seen.__setitem__("features", i[0]))
    h2 = enc.convs.register_forward_pre_hook(lambda m, i: seen.__setitem__("canvas", i[0]))
    out = enc(points)
    h1.remove(), h2.remove()
    return seen.get("features"), seen["canvas"], out


def test_pillar_layers_follow_the_config() -> None:
    enc = encoder(num_convs=3)
    linear, bn, act = enc.pfn
    assert isinstance(linear, nn.Linear) and isinstance(bn, nn.BatchNorm1d) and isinstance(act, nn.ReLU)
    assert (linear.in_features, linear.out_features, linear.bias) == (POINT_FEATURES, 4, None)
    assert bn.num_features == 4 and POINT_FEATURES == 9
    convs = [seq[0] for seq in enc.convs]
    assert [(c.in_channels, c.out_channels, c.stride, c.kernel_size) for c in convs] == [
        (4, 6, (2, 2), (3, 3)),
        (6, 6, (1, 1), (3, 3)),
        (6, 6, (1, 1), (3, 3)),
    ]
    assert all(c.padding == (1, 1) for c in convs) and enc.out_channels == 6
    assert len(encoder(num_convs=1).convs) == 1
    # raw coordinates scaled by the larger bound of each axis, z by 4 m; not saved with the weights
    assert enc.coord_scale.tolist() == [10.0, 5.0, 4.0]
    mirrored = BEVGridConfig(xbound=(-10.0, 6.0, 2.0), ybound=(-4.0, 5.0, 0.5), downsample=2)
    assert PillarEncoder(mirrored, PillarConfig()).coord_scale.tolist() == [10.0, 5.0, 4.0]
    assert not any("coord_scale" in k for k in enc.state_dict())


def test_point_features_by_hand() -> None:
    features, _, _ = capture(encoder().eval(), [torch.tensor([P1, P2]), torch.tensor([P3])])
    assert torch.allclose(features, torch.tensor([F1, F2, F3]), atol=1e-6)


def test_points_outside_the_grid_or_not_finite_are_dropped() -> None:
    outside = [
        [10.0, 0.0, 0.0, 1.0],  # x at the far bound
        [-6.01, 0.0, 0.0, 1.0],
        [0.0, 4.0, 0.0, 1.0],  # y at the far bound
        [0.0, -5.01, 0.0, 1.0],
        [0.0, 0.0, 5.0, 1.0],  # z at the top bound
        [0.0, 0.0, -3.01, 1.0],
        [float("nan"), 0.0, 0.0, 1.0],
        [0.0, 0.0, 0.0, float("inf")],  # a non-finite intensity drops the point too
    ]
    corner = [-6.0, -5.0, -3.0, 0.5]  # the near bounds are inside: splat cell (0, 0)
    extra = [[9.9, 2.9, 4.9, 0.2, 123.0]]  # a fifth column is ignored
    clouds = [torch.tensor(outside + [corner], dtype=torch.float64), torch.tensor(extra, dtype=torch.float64)]
    features, canvas, _ = capture(encoder().eval(), clouds)  # float64 clouds are taken as float32
    assert features.shape == (2, 9)
    assert features[0, :4].tolist() == pytest.approx([-0.6, -1.0, -0.75, 0.5])
    assert features[0, 4:6].tolist() == pytest.approx([-0.5, -0.5])  # half a cell from the centre
    assert features[1, 4:6].tolist() == pytest.approx([0.45, 0.3])  # cell (7, 15), centre (9.0, 2.75)
    assert canvas.shape == (2, 4, SX, SY)


def test_canvas_is_the_max_over_each_pillar_in_its_cell() -> None:
    enc = encoder().eval()
    with torch.no_grad():  # channel 0 reads the intensity, channel 1 the scaled height, 2 and 3 stay 0
        enc.pfn[0].weight.zero_()
        enc.pfn[0].weight[0, 3] = 1.0
        enc.pfn[0].weight[1, 2] = 1.0
    _, canvas, out = capture(enc, [torch.tensor([P1, P2]), torch.tensor([P3, P2])])
    scale = (1 + enc.pfn[1].eps) ** -0.5  # eval BatchNorm with its initial statistics
    expected = torch.zeros(2, 4, SX, SY)
    expected[0, 0, 3, 7], expected[0, 1, 3, 7] = 0.7 * scale, 0.75 * scale  # max(0.3, 0.7), max(1, 3) / 4
    expected[1, 0, 0, 15] = 1.0 * scale  # P3's height is negative: ReLU leaves 0
    expected[1, 0, 3, 7], expected[1, 1, 3, 7] = 0.7 * scale, 0.75 * scale
    assert torch.allclose(canvas, expected)
    assert out.shape == (2, 6, 4, 9)


def test_an_empty_or_one_point_cloud_keeps_every_parameter_in_the_graph() -> None:
    enc = encoder().train()
    for cloud in (torch.zeros(0, 4), torch.tensor([P1])):
        features, canvas, out = capture(enc, [cloud])
        assert features is None and canvas.abs().sum() == 0  # BatchNorm cannot train on one point
        enc.zero_grad(set_to_none=True)
        out.sum().backward()
        assert all(p.grad is not None for p in enc.parameters())
