"""tools/class_confusion.py: what the detections call each ground-truth box, on hand-made boxes."""

from __future__ import annotations

from tool_modules import load_tool

tool = load_tool("class_confusion")


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
    counts = tool.called_as(gt, results, score=0.2, distance=2.0)
    assert counts == {"construction_vehicle": 1, "truck": 1, tool.MISSED: 2}
    row = tool.format_row("truck", counts)
    assert "4 boxes" in row and "missed 50%" in row


def test_no_detection_at_all_counts_every_box_missed() -> None:
    counts = tool.called_as({"s": [_box(0), _box(5)]}, {"s": []}, score=0.2, distance=2.0)
    assert counts == {tool.MISSED: 2}
    assert "no boxes" in tool.format_row("bus", tool.called_as({}, {"s": []}, 0.2, 2.0))
