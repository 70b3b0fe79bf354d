"""tools/heading_errors.py: aligned, reversed and in-between headings of matched boxes, on hand-made boxes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from tool_modules import load_tool

tool = load_tool("heading_errors")


def _q(yaw: float) -> list[float]:
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def _box(x: float, yaw: float, name: str = "car", score: float = 0.9) -> dict:
    return {
        "translation": [x, 0.0, 0.8],
        "rotation": _q(yaw),
        "detection_name": name,
        "detection_score": score,
    }


def test_errors_of_matched_boxes() -> None:
    gt = {"s": [_box(0, 0.0), _box(10, 3.1), _box(20, 1.0), _box(30, 0.0), _box(40, 0.0)]}
    results = {
        "s": [
            _box(0.5, math.pi),  # reversed
            _box(10.5, -3.1),  # across the +-pi seam: 0.083 rad, aligned
            _box(20.0, 2.0),  # 1 rad off: between
            _box(33.0, 0.0),  # 3 m away: no match
            _box(40.0, 0.0, score=0.1),  # below the score
            _box(40.2, 0.0, name="truck"),  # another class
        ]
    }
    errors = tool.heading_errors(gt, results, "car", score=0.3, distance=2.0)
    assert errors == pytest.approx([math.pi, 2 * math.pi - 6.2, 1.0])
    s = tool.summary(errors)
    assert (
        s["matched"] == 3 and s["aligned"] == pytest.approx(1 / 3) and s["reversed"] == pytest.approx(1 / 3)
    )


def test_quaternion_yaw_round_trips() -> None:
    for yaw in np.linspace(-3.1, 3.1, 13):
        assert tool.quaternion_yaw(_q(yaw)) == pytest.approx(yaw)


def test_reads_the_class_from_the_tables(tmp_path) -> None:
    tables = tmp_path / "v1.0-synth"
    tables.mkdir()
    (tables / "category.json").write_text(
        json.dumps(
            [{"token": "c1", "name": "vehicle.car"}, {"token": "c2", "name": "human.pedestrian.adult"}]
        )
    )
    (tables / "instance.json").write_text(
        json.dumps([{"token": "i1", "category_token": "c1"}, {"token": "i2", "category_token": "c2"}])
    )
    anns = [
        {"sample_token": "s", "instance_token": "i1", "translation": [0, 0, 0], "rotation": _q(0.0)},
        {"sample_token": "s", "instance_token": "i2", "translation": [5, 0, 0], "rotation": _q(0.0)},
    ]
    (tables / "sample_annotation.json").write_text(json.dumps(anns))
    gt = tool.load_gt(tmp_path, "car")
    assert [a["instance_token"] for a in gt["s"]] == ["i1"]
    assert [a["instance_token"] for a in tool.load_gt(tmp_path, "pedestrian")["s"]] == ["i2"]
