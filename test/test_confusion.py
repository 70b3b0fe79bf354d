"""evaluation/confusion.py (and its table, tools/class_confusion.py): what the detections call each
ground-truth box, on hand-made boxes and tables."""

from __future__ import annotations

import json

from tool_modules import load_tool

from simdistill_ros.evaluation.confusion import MISSED, annotations_by_class, called_as, class_called

format_row = load_tool("class_confusion").format_row


def _box(x: float, name: str = "truck", score: float = 0.9, points: int = 10) -> dict:
    return {
        "translation": [x, 0.0, 1.0],
        "detection_name": name,
        "detection_score": score,
        "num_lidar_pts": points,
    }


def test_each_box_takes_the_class_of_the_best_detection_near_it() -> None:
    gt = {"s": [_box(0), _box(10), _box(20), _box(30), _box(40, points=0)], "other": [_box(0)]}
    results = {
        "s": [
            _box(0.5, "truck", 0.4),
            _box(-0.5, "construction_vehicle", 0.7),  # the best near box 0
            _box(11.0, "truck", 0.9),
            _box(22.5, "truck", 0.9),  # 2.5 m away: box 2 is missed
            _box(30.2, "bus", 0.1),  # below the score: box 3 is missed
            _box(40.0, "truck", 0.9),  # box 4 has no LiDAR point: not counted
        ]
    }  # sample "other" is not in the results: its box is not counted
    counts = called_as(gt, results, score=0.2, distance=2.0)
    assert counts == {"construction_vehicle": 1, "truck": 1, MISSED: 2}
    row = format_row("truck", counts)
    assert "4 boxes" in row and "missed 50%" in row
    assert called_as({"s": [_box(0), _box(5)]}, {"s": []}) == {MISSED: 2}
    assert "no boxes" in format_row("bus", called_as({}, {"s": []}))


def test_classes_come_from_the_tables_and_shares_sum_to_one(tmp_path) -> None:
    tables = tmp_path / "v1.0-synth"
    tables.mkdir()
    categories = [("c1", "vehicle.truck"), ("c2", "vehicle.construction"), ("c3", "movable_object.debris")]
    (tables / "category.json").write_text(json.dumps([{"token": t, "name": n} for t, n in categories]))
    instances = [{"token": f"i{t}", "category_token": t} for t, _ in categories]
    (tables / "instance.json").write_text(json.dumps(instances))
    anns = [
        {"sample_token": "s", "instance_token": "ic1", "translation": [0, 0, 0], "num_lidar_pts": 5},
        {"sample_token": "s", "instance_token": "ic2", "translation": [10, 0, 0], "num_lidar_pts": 5},
        {"sample_token": "s", "instance_token": "ic2", "translation": [20, 0, 0], "num_lidar_pts": 5},
        {"sample_token": "s", "instance_token": "ic3", "translation": [30, 0, 0], "num_lidar_pts": 5},
    ]
    (tables / "sample_annotation.json").write_text(json.dumps(anns))
    by_class = annotations_by_class(tmp_path, "v1.0-synth")
    assert sorted(by_class) == ["construction_vehicle", "truck"]  # debris is no detection class
    results = {"s": [_box(0.3, "truck"), _box(10.2, "truck")]}
    called = class_called(tmp_path, results, ("truck", "construction_vehicle", "bus"), "v1.0-synth")
    assert called["truck"] == {"boxes": 1, "called": {"truck": 1.0}}
    assert called["construction_vehicle"] == {"boxes": 2, "called": {"truck": 0.5, MISSED: 0.5}}
    assert called["bus"] == {"boxes": 0, "called": {}}
