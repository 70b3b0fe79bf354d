"""The CenterPoint head against values worked out by hand: its layers, the Gaussian radius and stamp, the
training targets of one box, and the decoding of a hand-made output map back to that box.

The grid is deliberately not square (8 x 4 cells of 2 m) so that a swapped x/y shows up as a wrong index
or a wrong shape, not as a coincidence."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from simdistill_ros.models.config import BEVGridConfig, HeadConfig
from simdistill_ros.models.head import (
    REG_DIM,
    REG_FIELDS,
    CenterHead,
    build_targets,
    decode,
    draw_gaussian,
    gather_regression,
    gaussian_radius,
    regression_map,
)

# splat cells of 1 m, downsampled by 2: a working grid of 8 (x) by 4 (y) cells of 2 m, origin (-8, -4)
GRID = BEVGridConfig(xbound=(-8.0, 8.0, 1.0), ybound=(-4.0, 4.0, 1.0), downsample=2)
NX, NY = 8, 4
LOW = -20.0  # a heatmap logit whose sigmoid is ~2e-9: no detection


def head_cfg(**kw) -> HeadConfig:
    base = dict(num_classes=3, head_channels=6, heatmap_bias=-1.5, min_radius=1, max_objects=4)
    base.update(kw)
    return HeadConfig(**base)


def box(x, y, z=0.5, size=(4.0, 2.0, 1.5), yaw=0.0, vel=(0.0, 0.0)) -> list[float]:
    return [x, y, z, *size, yaw, *vel]


# --- layers --------------------------------------------------------------------------------------------
def test_head_layers_follow_the_config() -> None:
    cfg = head_cfg()
    head = CenterHead(5, GRID, cfg)

    def conv3(m: nn.Module, cin: int, cout: int) -> None:
        conv, bn, act = m
        assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and isinstance(act, nn.ReLU)
        assert (conv.in_channels, conv.out_channels) == (cin, cout)
        assert conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
        assert conv.bias is None and bn.num_features == cout

    conv3(head.shared, 5, 6)
    outs = {"heatmap": 3, "offset": 2, "height": 1, "size": 3, "rot": 2, "vel": 2}
    assert list(head.branches) == list(outs)
    for name, n in outs.items():
        hidden, last = head.branches[name]
        conv3(hidden, 6, 6)
        assert isinstance(last, nn.Conv2d) and last.kernel_size == (1, 1)
        assert (last.in_channels, last.out_channels) == (6, n) and last.bias is not None
    # the heatmap starts at the configured prior (sigmoid(-1.5) = 0.18), the other biases do not
    assert torch.equal(head.branches["heatmap"][-1].bias, torch.full((3,), -1.5))
    assert not torch.equal(head.branches["size"][-1].bias, torch.full((3,), -1.5))

    out = head(torch.randn(2, 5, NX, NY))
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: (2, n, NX, NY) for k, n in outs.items()}


def test_regression_fields_are_the_ten_box_codes() -> None:
    assert REG_FIELDS == (("offset", 2), ("height", 1), ("size", 3), ("rot", 2), ("vel", 2))
    assert REG_DIM == 10


# --- Gaussian radius and stamp ---------------------------------------------------------------------------
def reference_radius(length: float, width: float, overlap: float) -> float:
    """CenterPoint's three corner cases, written out (the head may simplify, not change, the result)."""
    s, p = length + width, length * width
    r1 = (s + math.sqrt(s * s - 4 * p * (1 - overlap) / (1 + overlap))) / 2
    r2 = (2 * s + math.sqrt(4 * s * s - 16 * (1 - overlap) * p)) / 2
    a3, b3 = 4 * overlap, -2 * overlap * s
    r3 = (b3 + math.sqrt(b3 * b3 - 4 * a3 * (overlap - 1) * p)) / 2
    return min(r1, r2, r3)


def test_gaussian_radius_by_hand() -> None:
    # 4 x 2 cells at overlap 0.1: s = 6, p = 8; the third case is sqrt(1.44 + 11.52) / 2 - 0.6 = 1.2
    assert gaussian_radius(4.0, 2.0, 0.1) == pytest.approx(1.2)
    # 2 x 1 cells: s = 3, p = 2 -> -0.3 + sqrt(0.09 + 0.72) = 0.6
    assert gaussian_radius(2.0, 1.0, 0.1) == pytest.approx(0.6)
    # 6 x 4 cells at overlap 0.5: s = 10, p = 24 -> (-10 + sqrt(100 + 96)) / 2 = 2.0
    assert gaussian_radius(6.0, 4.0, 0.5) == pytest.approx(2.0)


@pytest.mark.parametrize("overlap", [0.05, 0.1, 0.3, 0.7])
def test_gaussian_radius_equals_the_three_case_reference(overlap: float) -> None:
    for length in (0.2, 1.0, 2.5, 7.0, 20.0):
        for width in (0.2, 0.9, 3.0, 12.0):
            assert gaussian_radius(length, width, overlap) == pytest.approx(
                reference_radius(length, width, overlap), rel=1e-12
            )


def test_draw_gaussian_by_hand_clipped_at_the_border() -> None:
    heat = torch.zeros(NX, NY)
    heat[1, 1] = 0.5  # an earlier, stronger object: the stamp takes the maximum, it does not add
    draw_gaussian(heat, 0, 1, 1)  # radius 1: sigma 0.5, exp(-d^2 / 0.5)
    e2, e4 = math.exp(-2.0), math.exp(-4.0)
    expected = torch.zeros(NX, NY)
    expected[0, :3] = torch.tensor([e2, 1.0, e2])
    expected[1, :3] = torch.tensor([e4, 0.5, e4])
    assert torch.allclose(heat, expected)


def test_draw_gaussian_radius_two_at_the_far_corner() -> None:
    heat = torch.zeros(NX, NY)
    draw_gaussian(heat, NX - 1, NY - 1, 2)  # sigma 5/6: exp(-d^2 / (2 * 25/36))
    g = lambda d2: math.exp(-d2 * 36 / 50)  # noqa: E731
    assert heat[NX - 1, NY - 1] == 1.0
    assert heat[NX - 3, NY - 1].item() == pytest.approx(g(4))
    assert heat[NX - 2, NY - 2].item() == pytest.approx(g(2))
    assert heat[NX - 3, NY - 3].item() == pytest.approx(g(8))
    assert heat[: NX - 3].abs().sum() == 0 and heat[:, : NY - 3].abs().sum() == 0


# --- training targets --------------------------------------------------------------------------------
def test_targets_of_one_box_by_hand() -> None:
    cfg = head_cfg()
    b = torch.tensor([box(3.0, -1.5, 0.7, (4.0, 2.0, 1.5), 0.3, (1.0, -2.0))])
    t = build_targets([b], [torch.tensor([2])], GRID, cfg)
    # (3 + 8) / 2 = 5.5 -> cell 5, offset 0.5; (-1.5 + 4) / 2 = 1.25 -> cell 1, offset 0.25
    assert t.indices.tolist() == [[5 * NY + 1, 0, 0, 0]]
    assert t.mask.tolist() == [[True, False, False, False]] and t.num_objects.item() == 1
    assert t.labels[0, 0].item() == 2
    code = [0.5, 0.25, 0.7, math.log(4), math.log(2), math.log(1.5), math.sin(0.3), math.cos(0.3), 1.0, -2.0]
    assert torch.allclose(t.reg[0, 0], torch.tensor(code))
    assert t.reg[0, 1:].abs().sum() == 0
    # 2 x 1 cells -> radius int(0.6) = 0, raised to min_radius 1; the stamp sits in class 2 only
    expected = torch.zeros(NX, NY)
    draw_gaussian(expected, 5, 1, 1)
    assert torch.equal(t.heatmap[0, 2], expected)
    assert t.heatmap[0, :2].abs().sum() == 0
    assert t.heatmap.shape == (1, 3, NX, NY)


def test_a_large_box_gets_a_radius_above_the_minimum() -> None:
    # 12 x 8 m = 6 x 4 cells at overlap 0.5 -> radius 2.0 (see the radius test): a 5 x 5 stamp
    t = build_targets(
        [torch.tensor([box(1.0, 1.0, size=(12.0, 8.0, 3.0))])],
        [torch.tensor([0])],
        GRID,
        head_cfg(min_overlap=0.5),
    )
    expected = torch.zeros(NX, NY)
    draw_gaussian(expected, 4, 2, 2)
    assert torch.equal(t.heatmap[0, 0], expected)


def test_invalid_boxes_are_dropped_and_the_rest_capped() -> None:
    cfg = head_cfg(max_objects=2)
    boxes = torch.tensor(
        [
            box(8.0, 0.0),  # x = 8 m is the grid's far edge: outside
            box(0.0, 4.0),  # y = 4 m: outside
            box(0.0, 0.0, size=(0.0, 2.0, 1.5)),  # zero length
            box(0.0, 0.0, size=(4.0, -2.0, 1.5)),  # negative width
            box(0.0, 0.0, size=(4.0, 0.0, 1.5)),  # zero width
            box(0.0, 0.0, size=(4.0, 2.0, 0.0)),  # zero height
            box(0.0, 0.0, vel=(float("nan"), 0.0)),  # a NaN anywhere
            box(0.0, 0.0),  # label out of range (below)
            box(0.0, 0.0),  # label out of range (above)
            box(-8.0, -4.0, size=(0.5, 0.5, 0.5)),  # the grid's near corner: inside, cell (0, 0); small
            box(7.9, 3.9),  # just inside the far corner: cell (7, 3)
            box(1.0, 1.0),  # valid but beyond max_objects
        ]
    )
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 0, -1, 3, 1, 0, 0])
    # an empty sample first: it gets no targets, and the samples after it still get theirs
    t = build_targets([boxes[:0], boxes], [labels[:0], labels], GRID, cfg)
    assert t.indices.tolist() == [[0, 0], [0, (NX - 1) * NY + NY - 1]]
    assert t.mask.tolist() == [[False, False], [True, True]]
    assert t.labels.tolist() == [[0, 0], [1, 0]]
    assert t.labels.dtype == t.indices.dtype == torch.int64 and t.mask.dtype == torch.bool
    assert t.heatmap[0].abs().sum() == 0
    assert t.heatmap[1, 1, 0, 0] == 1.0 and t.heatmap[1, 0, NX - 1, NY - 1] == 1.0


def test_head_build_targets_uses_its_grid_and_config() -> None:
    head = CenterHead(4, GRID, head_cfg(max_objects=1))
    b = torch.tensor([box(3.0, -1.5), box(-3.0, 1.5)])
    t = head.build_targets([b], [torch.tensor([0, 1])])
    assert t.indices.tolist() == [[5 * NY + 1]]


# --- decoding ----------------------------------------------------------------------------------------
def outputs_with_peaks(peaks: list[tuple[int, int, int, float, list[float]]], k: int = 3) -> dict:
    """Head outputs (1 sample) with heatmap logit ``logit`` for class ``c`` at cell (ix, iy) and the box
    code ``reg`` (10 values, REG_FIELDS order) there; everything else low."""
    heat = torch.full((1, k, NX, NY), LOW)
    reg = torch.zeros(1, REG_DIM, NX, NY)
    for c, ix, iy, logit, code in peaks:
        heat[0, c, ix, iy] = logit
        reg[0, :, ix, iy] = torch.tensor(code)
    out, start = {"heatmap": heat}, 0
    for name, n in REG_FIELDS:
        out[name] = reg[:, start : start + n]
        start += n
    return out


CODE_A = [0.25, 0.75, 0.4, math.log(4.0), math.log(2.0), math.log(1.5), 0.6, 0.8, 1.0, -1.0]
CODE_B = [0.5, 0.5, -0.2, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0]


def test_decode_one_peak_by_hand() -> None:
    out = outputs_with_peaks([(1, 5, 1, 2.0, CODE_A)])
    det = decode(out, GRID, 0.5, 10, False, HeadConfig().nms_radius)[0]
    # x = -8 + (5 + 0.25) * 2 = 2.5; y = -4 + (1 + 0.75) * 2 = -0.5; yaw = atan2(0.6, 0.8)
    expected = [2.5, -0.5, 0.4, 4.0, 2.0, 1.5, math.atan2(0.6, 0.8), 1.0, -1.0]
    assert det.boxes.shape == (1, 9)
    assert torch.allclose(det.boxes[0], torch.tensor(expected), atol=1e-5)
    assert det.scores.tolist() == pytest.approx([1 / (1 + math.exp(-2.0))])
    assert det.labels.tolist() == [1]


def test_decode_keeps_peaks_only_sorted_thresholded_and_capped() -> None:
    out = outputs_with_peaks(
        [
            (1, 5, 1, 2.0, CODE_A),  # score 0.881
            (1, 5, 2, 1.0, CODE_B),  # beside a stronger cell of its class: not a peak
            (0, 5, 2, 0.0, CODE_B),  # the same cell in another class: a peak of its own, score 0.5
            (2, 0, 3, 1.0, CODE_B),  # score 0.731, in the grid's corner
        ]
    )
    radius = HeadConfig().nms_radius
    det = decode(out, GRID, 0.5, 10, False, radius)[0]
    assert det.labels.tolist() == [1, 2, 0]  # by descending score; the threshold is inclusive
    assert det.scores.tolist() == pytest.approx([0.8808, 0.7311, 0.5], abs=1e-4)
    # the corner peak: x = -8 + 0.5 * 2 = -7, y = -4 + 3.5 * 2 = 3; yaw = atan2(-1, 0)
    assert torch.allclose(det.boxes[1], torch.tensor([-7.0, 3.0, -0.2, 1.0, 1.0, 1.0, -math.pi / 2, 0, 0]))
    assert decode(out, GRID, 0.51, 10, False, radius)[0].labels.tolist() == [1, 2]
    assert decode(out, GRID, 0.5, 2, False, radius)[0].labels.tolist() == [1, 2]


def test_decode_clamps_huge_sizes_and_handles_a_batch() -> None:
    a = outputs_with_peaks([(0, 2, 2, 3.0, [0, 0, 0, 50.0, 0, 0, 0, 1, 0, 0])])
    b = outputs_with_peaks([(2, 6, 0, 3.0, CODE_A)])
    out = {k: torch.cat([a[k], b[k]]) for k in a}
    first, second = decode(out, GRID, 0.5, 10, False, HeadConfig().nms_radius)
    assert first.boxes[0, 3].item() == pytest.approx(math.exp(10.0), rel=1e-5)  # exp(50) clamped
    assert first.labels.tolist() == [0] and second.labels.tolist() == [2]
    assert second.boxes[0, :2].tolist() == pytest.approx([-8 + 6.25 * 2, -4 + 0.75 * 2])


def test_decode_nms_removes_a_close_same_class_pair() -> None:
    # two car peaks two cells apart, whose offsets bring their centres 1 m apart (car radius 2 m)
    near = [1.5, 0.5, 0, 0, 0, 0, 0, 1, 0, 0]
    far = [0.0, 0.5, 0, 0, 0, 0, 0, 1, 0, 0]
    out = outputs_with_peaks([(0, 2, 1, 2.0, near), (0, 4, 1, 1.0, far)])
    radius = HeadConfig().nms_radius
    assert len(decode(out, GRID, 0.5, 10, False, radius)[0].labels) == 2
    kept = decode(out, GRID, 0.5, 10, True, radius)[0]
    assert kept.scores.tolist() == pytest.approx([1 / (1 + math.exp(-2.0))])


def test_head_decode_defaults_come_from_its_config() -> None:
    out = outputs_with_peaks([(1, 5, 1, 2.0, CODE_A), (2, 0, 3, 1.0, CODE_B), (0, 2, 1, 0.9, CODE_B)])
    head = CenterHead(4, GRID, head_cfg(score_threshold=0.7, max_detections=3, nms=False))
    assert head.decode(out)[0].labels.tolist() == [1, 2, 0]  # 0.881, 0.731, 0.711
    assert head.decode(out, max_detections=1)[0].labels.tolist() == [1]
    assert head.decode(out, score_threshold=0.72)[0].labels.tolist() == [1, 2]
    head = CenterHead(4, GRID, head_cfg(score_threshold=0.72, max_detections=1))
    assert head.decode(out)[0].labels.tolist() == [1]
    assert head.decode(out, max_detections=3)[0].labels.tolist() == [1, 2]
    # nms from the config: a close same-class pair loses its weaker member
    near, far = [1.5, 0.5, 0, 0, 0, 0, 0, 1, 0, 0], [0.0, 0.5, 0, 0, 0, 0, 0, 1, 0, 0]
    pair = outputs_with_peaks([(0, 2, 1, 2.0, near), (0, 4, 1, 1.0, far)])
    assert len(CenterHead(4, GRID, head_cfg(nms=True)).decode(pair)[0].labels) == 1
    assert len(CenterHead(4, GRID, head_cfg(nms=False)).decode(pair)[0].labels) == 2
    assert len(CenterHead(4, GRID, head_cfg(nms=False)).decode(pair, nms=True)[0].labels) == 1


def test_gather_regression_reads_each_field_at_each_index() -> None:
    out = outputs_with_peaks([(0, 5, 1, 0.0, list(range(10))), (0, 2, 3, 0.0, list(range(10, 20)))])
    assert regression_map(out)[0, :, 5, 1].tolist() == list(range(10))
    got = gather_regression(out, torch.tensor([[5 * NY + 1, 2 * NY + 3, 0]]))
    assert got.shape == (1, 3, 10)
    assert got[0, 0].tolist() == list(range(10)) and got[0, 1].tolist() == list(range(10, 20))
    assert got[0, 2].abs().sum() == 0


def test_targets_of_an_empty_batch() -> None:
    t = build_targets([], [], GRID, head_cfg())
    assert t.heatmap.shape == (0, 3, NX, NY) and t.indices.shape == (0, 4) and t.reg.shape == (0, 4, 10)
    assert t.heatmap.device.type == "cpu" and t.num_objects.item() == 0
