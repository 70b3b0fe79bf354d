"""World v2 (the fair benchmark): the scenes and boxes of v1, with vehicles whose front and back differ."""

from __future__ import annotations

import numpy as np
import pytest

from simdistill_ros.models.config import tiny, tiny_v2
from simdistill_ros.synth.catalog import HEADLIGHT, TAILLIGHT, object_parts
from simdistill_ros.synth.world import WorldConfig, generate_scene, world_options


def _scene(version: str):
    return generate_scene(np.random.default_rng([1000, 2]), WorldConfig(**world_options(version)))


def test_v2_keeps_every_box_of_v1() -> None:
    v1, v2 = _scene("v1"), _scene("v2")
    assert len(v1.objects) == len(v2.objects) > 0
    for a, b in zip(v1.objects, v2.objects):
        assert a.label == b.label and a.yaw == b.yaw
        np.testing.assert_array_equal(a.center, b.center)
        np.testing.assert_array_equal(a.size, b.size)
    # scenery draws from the same random stream after the objects: unchanged too
    assert [s.center.tolist() for s in v1.scenery] == [s.center.tolist() for s in v2.scenery]


@pytest.mark.parametrize("label", ["car", "truck", "bus"])
def test_v2_vehicle_lights_face_the_right_way(label: str) -> None:
    size = np.array([4.6, 1.9, 1.7]) if label == "car" else np.array([9.0, 2.8, 3.2])
    plain = object_parts(label, size, np.random.default_rng(0), moving=True)
    parts = object_parts(label, size, np.random.default_rng(0), moving=True, detail=True)
    assert not any(p.material.color == HEADLIGHT for p in plain)
    heads = [p for p in parts if p.material.color == HEADLIGHT]
    tails = [p for p in parts if p.material.color == TAILLIGHT]
    assert len(heads) == len(tails) == 2
    half = size[0] / 2
    assert all(p.hi[0] > half - 0.1 for p in heads)  # on the front face (+x, the heading)
    assert all(p.lo[0] < -half + 0.1 for p in tails)
    for p in parts:  # still inside the annotated box
        assert np.all(np.abs(p.lo[:2]) <= size[:2] / 2) and np.all(np.abs(p.hi[:2]) <= size[:2] / 2)


def test_v2_car_cabin_is_set_back() -> None:
    size = np.array([4.6, 1.9, 1.7])
    parts = object_parts("car", size, np.random.default_rng(0), moving=False, detail=True)
    cabin = max(parts, key=lambda p: p.hi[2])  # the highest part is the cabin (or its windscreen)
    centre = (cabin.lo[0] + cabin.hi[0]) / 2
    assert centre < -0.1  # bonnet longer than boot: front and back differ in silhouette too


def test_unknown_world_rejected() -> None:
    with pytest.raises(ValueError, match="unknown world"):
        world_options("v3")


def test_tiny_v2_grid_covers_the_devkit_ranges_at_sub_metre_cells() -> None:
    cfg = tiny_v2()
    cfg.validate()
    assert cfg.grid.xbound[0] <= -50.0 and cfg.grid.xbound[1] >= 50.0  # cars/trucks/buses scored to 50 m
    assert cfg.grid.bev_cell == (0.8, 0.8) and cfg.grid.dbound[2] == 0.5
    assert cfg.backbone.kind == "efficientnet_lite0" and cfg.backbone.pretrained
    assert tiny().backbone.kind == "resnet"  # the shipped checkpoints' preset is unchanged
