"""Per-class NMS on hand-built boxes: stacked duplicates go, separate objects stay, classes never interact."""

from __future__ import annotations

import math

import pytest
import torch

from simdistill_ros.models.config import HeadConfig, tiny
from simdistill_ros.models.nms import centre_inside, circle_nms, footprint_nms, per_class_nms

RADIUS = HeadConfig().nms_radius  # car 2.0 m, pedestrian 0.42 m
CAR, PEDESTRIAN, CONE = 0, 8, 9
LARGE = (0, 1, 2, 3, 4)


def box(x: float, y: float, length: float = 4.5, width: float = 1.9, yaw: float = 0.0) -> list[float]:
    return [x, y, 0.8, length, width, 1.6, yaw, 0.0, 0.0]


def test_centre_inside_rotated_footprint() -> None:
    boxes = torch.tensor([box(0, 0, 4.0, 2.0, math.pi / 2)])  # long axis along y
    pts = torch.tensor([[0.0, 1.9], [1.9, 0.0], [0.0, -1.9], [0.9, 0.0]])
    assert centre_inside(boxes, pts).tolist() == [[True, False, True, True]]


def test_stacked_car_duplicates_removed_by_footprint_not_by_circle() -> None:
    # three peaks along one 4.5 m car (centres 2.1 m apart: beyond the 2 m circle) -> one box
    boxes = torch.tensor([box(10, 5), box(12.1, 5), box(7.9, 5.2)])
    scores = torch.tensor([0.9, 0.6, 0.5])
    assert len(circle_nms(boxes[:, :2], scores, RADIUS[CAR])) == 3
    assert footprint_nms(boxes, scores, RADIUS[CAR]).tolist() == [0]


def test_a_weaker_box_holding_the_best_centre_is_suppressed() -> None:
    # a long, low-scored box whose footprint covers the best one's centre, its own centre outside the best
    boxes = torch.tensor([box(0, 0, 4.0, 1.8), box(2.6, 0, 8.0, 2.0)])
    assert footprint_nms(boxes, torch.tensor([0.9, 0.4]), 1.0).tolist() == [0]


def test_separate_cars_kept_nose_to_tail_and_side_by_side() -> None:
    boxes = torch.tensor([box(0, 0), box(5.0, 0), box(0, 2.3), box(-5.2, 0.1, yaw=0.05)])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    assert sorted(footprint_nms(boxes, scores, RADIUS[CAR]).tolist()) == [0, 1, 2, 3]


def test_pedestrians_use_the_small_circle() -> None:
    boxes = torch.tensor([box(0, 0, 0.7, 0.7), box(0.3, 0, 0.7, 0.7), box(0.8, 0, 0.7, 0.7)])
    scores = torch.tensor([0.5, 0.9, 0.4])
    labels = torch.full((3,), PEDESTRIAN)
    # 0.3 m apart: one person; 0.5 m from the kept one: a second person next to them
    assert per_class_nms(boxes, scores, labels, RADIUS, LARGE).tolist() == [1, 2]


def test_classes_are_independent() -> None:
    boxes = torch.tensor([box(0, 0), box(0.5, 0), box(0.1, 0, 0.5, 0.5), box(0.2, 0, 0.4, 0.4)])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    labels = torch.tensor([CAR, CAR, PEDESTRIAN, CONE])
    kept = per_class_nms(boxes, scores, labels, RADIUS, LARGE)
    assert kept.tolist() == [0, 2, 3]  # the car duplicate goes; the pedestrian and cone inside the car stay


def test_empty_and_single() -> None:
    empty = torch.zeros(0, 9)
    assert per_class_nms(empty, torch.zeros(0), torch.zeros(0, dtype=torch.long), RADIUS, LARGE).numel() == 0
    one = torch.tensor([box(1, 1)])
    assert per_class_nms(one, torch.ones(1), torch.zeros(1, dtype=torch.long), RADIUS, LARGE).tolist() == [0]


def test_config_rejects_bad_footprint_class() -> None:
    cfg = tiny()
    cfg.head.nms_footprint_classes = (0, 10)
    with pytest.raises(ValueError, match="nms_footprint_classes"):
        cfg.validate()
