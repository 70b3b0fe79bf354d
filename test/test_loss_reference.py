"""Every loss term against a value worked out by hand on a tiny tensor, and every distillation term reads
the BEV map it is defined on (perturb one map: only its own term moves)."""

from __future__ import annotations

import math

import pytest
import torch

from simdistill_ros.models.config import HeadConfig, LossWeights
from simdistill_ros.models.head import REG_FIELDS, HeadTargets
from simdistill_ros.models.losses import (
    box_l1_loss,
    centerpoint_loss,
    detection_loss,
    gaussian_focal_loss,
    total,
)
from simdistill_ros.models.structures import DetectorOutputs
from simdistill_ros.training.distillation import (
    cmd_loss,
    distillation_losses,
    foreground_mask,
    imd_loss,
    mmd_box_loss,
    mmd_feature_loss,
    mmd_heatmap_loss,
    simdistill_loss,
)

CODE_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2)
LN3 = math.log(3.0)  # sigmoid(ln 3) = 0.75, sigmoid(-ln 3) = 0.25


def t(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


# --- feature terms -------------------------------------------------------------------------------------
def test_imd_and_mmd_feature_are_plain_mse() -> None:
    student = t([[1.0, 2.0]], [[3.0, 4.0]])[None]  # (1, 2, 1, 2)
    teacher = t([[0.0, 0.0]], [[1.0, 1.0]])[None]
    # differences 1, 2, 2, 3 -> squares 1 + 4 + 4 + 9 = 18 over 4 elements
    assert imd_loss(student, teacher).item() == pytest.approx(18 / 4)
    assert mmd_feature_loss(student, teacher).item() == pytest.approx(18 / 4)


def test_cmd_masked_and_normalised_per_channel() -> None:
    student = t([[1.0, 2.0]], [[3.0, 5.0]])[None]  # (B=1, C=2, X=1, Y=2)
    teacher = torch.zeros(1, 2, 1, 2)
    mask = t([[1.0, 0.5]])[None]  # (1, 1, 1, 2): a full and a half foreground cell
    # squared error times the mask (once): channel 0: 1*1 + 4*0.5 = 3; channel 1: 9*1 + 25*0.5 = 21.5
    err = 3.0 + 21.5
    # foreground mean: mask sum 1.5 times 2 channels
    assert cmd_loss(student, teacher, mask).item() == pytest.approx(err / (1.5 * 2))
    # the reference code's mean over all B*C*X*Y = 4 elements
    assert cmd_loss(student, teacher, mask, mean_over_all_cells=True).item() == pytest.approx(err / 4)
    # a background cell (mask 0) contributes nothing
    assert cmd_loss(student, teacher, torch.zeros(1, 1, 1, 2)).item() == 0.0


def test_foreground_mask_is_the_clamped_class_sum() -> None:
    heat = torch.tensor([[[[0.7, 0.2]], [[0.6, 0.1]]]])  # (1, K=2, 1, 2)
    # cell 0: 0.7 + 0.6 = 1.3 -> clamped to 1; cell 1: 0.2 + 0.1 = 0.3
    assert torch.allclose(foreground_mask(heat), torch.tensor([[[[1.0, 0.3]]]]))


def test_simdistill_loss_builds_the_cmd_mask_from_the_target_heatmap() -> None:
    student, teacher = _outputs(0), _outputs(1)
    targets = _targets()
    w = LossWeights(use_gt=False, use_imd=False, use_mmd_feat=False, use_mmd_pred=False)
    terms = simdistill_loss(student, teacher, targets, None, HeadConfig(num_classes=2), w)
    m = foreground_mask(targets.heatmap)
    assert terms["cmd"].item() == pytest.approx(
        100.0 * cmd_loss(student.lidar_bev, teacher.lidar_bev, m, True)
    )
    assert terms["loss"].item() == pytest.approx(terms["cmd"].item())


# --- prediction distillation -----------------------------------------------------------------------------
def test_mmd_heatmap_soft_target_focal() -> None:
    student = t([[LN3, 0.0]])[None]  # p = 0.75, 0.5
    teacher = t([[0.0, LN3]])[None]  # sigmoid once: targets 0.5, 0.75
    # element 0: BCE = -(0.5 ln 0.75 + 0.5 ln 0.25), scale |0.75 - 0.5|^2 = 0.0625
    # element 1: BCE = -(0.75 ln 0.5 + 0.25 ln 0.5) = ln 2, scale |0.5 - 0.75|^2 = 0.0625
    e0 = -(0.5 * math.log(0.75) + 0.5 * math.log(0.25)) * 0.0625
    e1 = math.log(2.0) * 0.0625
    # summed, divided by the number of objects (2)
    assert mmd_heatmap_loss(student, teacher, torch.tensor(2)).item() == pytest.approx((e0 + e1) / 2)
    # no objects: divided by 1, not by 0
    assert mmd_heatmap_loss(student, teacher, torch.tensor(0)).item() == pytest.approx(e0 + e1)


def _head(cell0: list[float], cell1: list[float]) -> dict[str, torch.Tensor]:
    """Head outputs on a 1 x 2 grid whose regression 10-vectors at cells 0 and 1 are given."""
    reg = torch.tensor([cell0, cell1]).T.reshape(10, 1, 2)[None]  # (1, 10, X=1, Y=2)
    out, start = {"heatmap": torch.zeros(1, 2, 1, 2)}, 0
    for name, ch in REG_FIELDS:
        out[name] = reg[:, start : start + ch]
        start += ch
    return out


def _box_targets(reg: list[float]) -> HeadTargets:
    """One object at flat cell 1, one padded slot (index 0, masked out)."""
    return HeadTargets(
        heatmap=torch.zeros(1, 2, 1, 2),
        indices=torch.tensor([[1, 0]]),
        mask=torch.tensor([[True, False]]),
        reg=torch.tensor([reg, [9.0] * 10]),
        labels=torch.tensor([[0, 0]]),
    )


def test_mmd_box_is_smooth_l1_with_beta_one_at_object_centres() -> None:
    # student at the object's cell: offset (0.5, 2.0), vx 3.0; the padded slot's cell 0 is far off
    student = _head([100.0] * 10, [0.5, 2.0, 0, 0, 0, 0, 0, 0, 3.0, 0])
    teacher = _head([0.0] * 10, [0.0] * 10)
    # smooth-L1 (beta 1): 0.5 * 0.5^2 = 0.125; 2.0 - 0.5 = 1.5; (3.0 - 0.5) * code weight 0.2 = 0.5
    expected = 0.125 + 1.5 + 0.5
    loss = mmd_box_loss(student, teacher, _box_targets([0.0] * 10), CODE_WEIGHTS)
    assert loss.item() == pytest.approx(expected / 1)  # one real object


def test_gaussian_focal_loss_by_hand() -> None:
    logits = t([[LN3, 0.0, -LN3]])[None]  # p = 0.75, 0.5, 0.25
    target = t([[1.0, 0.5, 0.0]])[None]  # a centre, a Gaussian shoulder, background
    pos = -math.log(0.75) * (1 - 0.75) ** 2  # -log p (1 - p)^alpha
    neg1 = -math.log(1 - 0.5) * 0.5**2 * (1 - 0.5) ** 4  # -log(1 - p) p^alpha (1 - target)^gamma
    neg2 = -math.log(1 - 0.25) * 0.25**2 * (1 - 0.0) ** 4
    # normalised by one centre
    assert gaussian_focal_loss(logits, target).item() == pytest.approx(pos + neg1 + neg2)
    two = torch.cat([target, target], dim=-1)
    assert gaussian_focal_loss(torch.cat([logits, logits], -1), two).item() == pytest.approx(
        pos + neg1 + neg2
    )


def test_box_l1_loss_by_hand() -> None:
    pred = _head([100.0] * 10, [0.5, 2.0, 0, 0.25, 0, 0, 0, 0, 3.0, 0])
    targets = _box_targets([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    # |0.5| + |2| + |0.25 - 1| (log l) + |3| * 0.2 = 3.85, one object
    assert box_l1_loss(pred, targets, CODE_WEIGHTS).item() == pytest.approx(3.85)
    # both slots real (the second at cell 0, its target 9 everywhere): the sum over objects / 2
    both = HeadTargets(
        targets.heatmap, targets.indices, torch.tensor([[True, True]]), targets.reg, targets.labels
    )
    second = 8 * abs(100.0 - 9.0) + 2 * abs(100.0 - 9.0) * 0.2
    assert box_l1_loss(pred, both, CODE_WEIGHTS).item() == pytest.approx((3.85 + second) / 2)
    pred = _head([100.0] * 10, [0.5, 2.0, 0, 0, 0, 0, 0, 0, 3.0, 0])
    terms = centerpoint_loss(
        {**pred, "heatmap": torch.full((1, 2, 1, 2), -LN3)}, targets, HeadConfig(num_classes=2), LossWeights()
    )
    assert terms["gt_bbox"].item() == pytest.approx(0.25 * 4.1)
    # no centre in the target heatmap: four background cells of p = 0.25, normalised by max(0, 1)
    assert terms["gt_heatmap"].item() == pytest.approx(4 * -math.log(0.75) * 0.25**2)


def test_detection_loss_is_the_weighted_sum_of_the_gt_terms() -> None:
    pred = _head([100.0] * 10, [0.5, 2.0, 0, 0, 0, 0, 0, 0, 3.0, 0])
    pred["heatmap"] = torch.full((1, 2, 1, 2), -LN3)
    weights = LossWeights(gt_heatmap=2.0, gt_bbox=0.5)
    terms = detection_loss(pred, _box_targets([0.0] * 10), HeadConfig(num_classes=2), weights)
    heat = 2.0 * 4 * -math.log(0.75) * 0.25**2  # four background cells of p = 0.25
    box = 0.5 * (0.5 + 2.0 + 3.0 * 0.2)  # L1 at the object's cell
    assert set(terms) == {"gt_heatmap", "gt_bbox", "loss"}
    assert terms["gt_heatmap"].item() == pytest.approx(heat) and terms["gt_bbox"].item() == pytest.approx(box)
    assert terms["loss"].item() == pytest.approx(heat + box)
    assert total({}).item() == 0.0


# --- each term reads its own map ---------------------------------------------------------------------------
def _outputs(seed: int) -> DetectorOutputs:
    g = torch.Generator().manual_seed(seed)

    def r(c: int) -> torch.Tensor:
        return torch.randn(1, c, 6, 6, generator=g)

    head = {"heatmap": r(2), **{name: r(ch) for name, ch in REG_FIELDS}}
    return DetectorOutputs(camera_bev=r(4), lidar_bev=r(4), fused_bev=r(8), head=head)


def _targets() -> HeadTargets:
    heat = torch.zeros(1, 2, 6, 6)
    heat[0, 0, 2, 3] = 1.0
    heat[0, 0, 1:4, 2:5] = torch.maximum(heat[0, 0, 1:4, 2:5], torch.full((3, 3), 0.5))
    return HeadTargets(
        heatmap=heat,
        indices=torch.tensor([[2 * 6 + 3]]),
        mask=torch.tensor([[True]]),
        reg=torch.zeros(1, 1, 10),
        labels=torch.tensor([[0]]),
    )


PERTURBATIONS = {
    # (which model, which map) -> the only term allowed to move
    ("student", "camera_bev"): "imd",
    ("teacher", "camera_bev"): "imd",
    ("student", "lidar_bev"): "cmd",
    ("teacher", "lidar_bev"): "cmd",
    ("student", "fused_bev"): "mmd_feat",
    ("teacher", "fused_bev"): "mmd_feat",
    ("student", "heatmap"): "mmd_pred_heatmap",
    ("teacher", "heatmap"): "mmd_pred_heatmap",
    ("student", "size"): "mmd_pred_box",
    ("teacher", "offset"): "mmd_pred_box",
}


@pytest.mark.parametrize("which,field", list(PERTURBATIONS))
def test_each_term_reads_its_own_bev(which: str, field: str) -> None:
    student, teacher, targets = _outputs(0), _outputs(1), _targets()
    mask = foreground_mask(targets.heatmap)
    weights = LossWeights()
    before = distillation_losses(student, teacher, targets, mask, weights, CODE_WEIGHTS)
    out = student if which == "student" else teacher
    tensor = out.head[field] if field in out.head else getattr(out, field)
    tensor[0, :, 2, 3] += 3.0  # the object's cell: foreground for CMD, the centre for the box term
    after = distillation_losses(student, teacher, targets, mask, weights, CODE_WEIGHTS)
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved == {PERTURBATIONS[(which, field)]}


# --- edge cases of the normalisations -------------------------------------------------------------------
def test_mmd_heatmap_weights_each_element_by_its_own_gap() -> None:
    student = t([[LN3, 0.0]])[None]  # p = 0.75, 0.5
    teacher = t([[0.0, 0.0]])[None]  # targets 0.5, 0.5: element 1 matches, its weight is 0
    e0 = -(0.5 * math.log(0.75) + 0.5 * math.log(0.25)) * 0.0625
    assert mmd_heatmap_loss(student, teacher, torch.tensor(1)).item() == pytest.approx(e0)


def test_mmd_box_is_divided_by_the_number_of_objects() -> None:
    student = _head([1.0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0.5, 2.0, 0, 0, 0, 0, 0, 0, 3.0, 0])
    teacher = _head([0.0] * 10, [0.0] * 10)
    targets = _box_targets([0.0] * 10)
    targets.mask = torch.tensor([[True, True]])  # now cell 0 is an object too: smooth-L1(1) = 0.5
    loss = mmd_box_loss(student, teacher, targets, CODE_WEIGHTS)
    assert loss.item() == pytest.approx((0.125 + 1.5 + 0.5 + 0.5) / 2)


def test_cmd_normaliser_is_at_least_one() -> None:
    student = t([[1.0, 2.0]], [[3.0, 5.0]])[None]
    mask = t([[0.25, 0.0]])[None]  # 0.25 x 2 channels = 0.5 foreground elements: divided by 1, not 0.5
    assert cmd_loss(student, torch.zeros(1, 2, 1, 2), mask).item() == pytest.approx(0.25 * (1 + 9))


@pytest.mark.parametrize("missing", ["student", "teacher"])
def test_cmd_without_a_lidar_bev_is_refused(missing: str) -> None:
    student, teacher, targets = _outputs(0), _outputs(1), _targets()
    (student if missing == "student" else teacher).lidar_bev = None
    mask = foreground_mask(targets.heatmap)
    with pytest.raises(
        ValueError, match="^CMD needs the student's simulated-LiDAR BEV and the teacher's LiDAR BEV$"
    ):
        distillation_losses(student, teacher, targets, mask, LossWeights(), CODE_WEIGHTS)
    w = LossWeights(use_cmd=False)
    assert "cmd" not in distillation_losses(student, teacher, targets, mask, w, CODE_WEIGHTS)
