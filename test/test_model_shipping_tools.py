"""tools/score_threshold.py (how the default score threshold is chosen), tools/ship_models.py's names
(a qualified name such as ``baseline_depth``) and tools/image_sizes.py's verdict, on hand-made boxes and
metrics and the shipped tiny checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tool_modules import TOOLS, load_tool

match_counts = load_tool("score_threshold").match_counts
partner = load_tool("ship_models").partner
image_sizes_bullet = load_tool("ship_models").image_sizes_bullet
pixel_noise_bullet = load_tool("ship_models").pixel_noise_bullet
image_sizes = load_tool("image_sizes")
ROOT = TOOLS.parent


def _box(x: float, name: str = "car", score: float = 0.9, points: int = 10) -> dict:
    return {
        "translation": [x, 0.0, 1.0],
        "detection_name": name,
        "detection_score": score,
        "num_lidar_pts": points,
    }


def test_detections_match_one_box_each_of_their_class_best_score_first() -> None:
    gt = {
        "car": {"s": [_box(0), _box(10), _box(20, points=0)], "other": [_box(0)]},
        "truck": {"s": [_box(30, "truck")]},
    }
    results = {
        "s": [
            _box(0.5, score=0.9),  # takes box 0
            _box(-0.5, score=0.8),  # box 0 is taken: a false positive
            _box(12.5, score=0.9),  # 2.5 m from box 1: a false positive, box 1 missed
            _box(20.0, score=0.9),  # the box there has no LiDAR point: a false positive
            _box(30.0, "car", 0.9),  # the truck is not a car
            _box(30.0, "truck", 0.1),  # the truck's own detection scores below the threshold
        ]
    }  # sample "other" is not in the results: its box does not count
    assert match_counts(gt, results, threshold=0.2, distance=2.0) == (1, 5, 3)
    assert match_counts(gt, results, threshold=0.05, distance=2.0) == (2, 6, 3)
    assert match_counts(gt, results, threshold=0.2, distance=3.0) == (2, 5, 3)


def test_a_card_compares_a_qualified_name_with_the_plain_model_beside_it() -> None:
    v3 = {"baseline": "a", "baseline_depth": "b"}
    assert partner("baseline_depth", "baseline", v3) == "baseline"
    assert partner("baseline", "baseline", v3) == "baseline_depth"
    v2 = {"teacher": "t", "baseline": "a", "student": "s"}
    assert (
        partner("baseline", "baseline", v2) == "student" and partner("student", "student", v2) == "baseline"
    )
    assert (
        partner("teacher", "teacher", v2) is None
        and partner("baseline", "baseline", {"baseline": "a"}) is None
    )


def test_ship_models_names_the_copy_after_the_qualified_name_and_refuses_a_wrong_type(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    (runs / "run_a").mkdir(parents=True)
    (runs / "run_a" / "last").symlink_to(ROOT / "models" / "baseline_tiny")
    tool, dest = (
        [sys.executable, str(TOOLS / "ship_models.py"), str(runs)],
        ["--suffix", "x", "--dest", str(tmp_path / "m")],
    )
    extra = ["--note", "baseline_depth=Chosen for a reason.", "--path-alias", "data/synth=/elsewhere/synth"]
    done = subprocess.run(
        [*tool, "baseline_depth=run_a", *dest, *extra], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    shipped = tmp_path / "m" / "baseline_depth_x"
    meta = json.loads((shipped / "meta.json").read_text())
    assert meta["model_type"] == "baseline" and "/elsewhere/synth" in meta["command"]
    card = (shipped / "README.md").read_text()
    assert card.startswith("# baseline_depth_x\n") and card.endswith("- Chosen for a reason.\n")
    wrong = subprocess.run([*tool, "student=run_a", *dest], capture_output=True, text=True, timeout=120)
    assert wrong.returncode != 0 and "is a baseline: name it baseline or baseline_SOMETHING" in wrong.stderr
    assert not (tmp_path / "m" / "student_x").exists()


def test_a_card_names_a_class_called_by_another_name_more_than_its_own() -> None:
    misnamed = load_tool("ship_models").misnamed
    called = {
        "construction_vehicle": {
            "boxes": 10,
            "called": {"truck": 0.5, "construction_vehicle": 0.1, "missed": 0.4},
        },
        "bus": {"boxes": 10, "called": {"bus": 0.3, "truck": 0.2, "missed": 0.5}},  # its own name leads
        "trailer": {"boxes": 10, "called": {"missed": 1.0}},  # never found: not a naming problem
    }
    line = misnamed({"metrics": {"class_called": called}})
    assert "more construction_vehicle boxes truck (50%) than construction_vehicle (10%)" in line
    assert "bus" not in line and "trailer" not in line
    assert misnamed({"metrics": {}}) == ""


def test_image_size_changes_are_relative_to_the_training_size_and_judged_both_ways() -> None:
    summary = {"mean_ap": 0.2, "nd_score": 0.25, "tp_errors": {"trans_err": 0.7, "vel_err": 1.0}}
    assert image_sizes.summary_row(summary) == {"mAP": 20.0, "NDS": 25.0, "mATE": 0.7, "mAVE": 1.0}
    rows = {
        "224x400": {"mAP": 20.0, "NDS": 25.0},
        "160x400": {"mAP": 22.4, "NDS": 25.0},  # 12 % better is outside too: the size changes the model
        "448x800": {"mAP": 18.1, "NDS": 23.0},
    }
    changes = image_sizes.relative_changes(rows, "224x400")
    assert set(changes) == {"160x400", "448x800"}
    assert changes["160x400"] == {"mAP": 0.12, "NDS": 0.0}
    assert changes["448x800"] == {"mAP": -0.095, "NDS": -0.08}
    assert not image_sizes.within(changes)
    assert image_sizes.within({"448x800": changes["448x800"]})
    record = {"sizes": rows, "change": changes, "within": False}
    table = image_sizes.markdown({"m": record})
    assert "| `m` | 22.40 / 25.00 (+12.0 % / +0.0 %) | 20.00 / 25.00 (training) |" in table
    assert table.rstrip().endswith("| no |")


def test_a_pixel_noise_record_keeps_both_rows_and_the_relative_change() -> None:
    clean = {"mAP": 20.0, "NDS": 25.0, "mATE": 0.7, "mAVE": 1.0}
    noisy = {"mAP": 17.0, "NDS": 24.0, "mATE": 0.8, "mAVE": 1.1}
    rec = image_sizes.noise_record("m", "abc", 4.0, noisy, clean, "world seed 2000")
    assert rec["change"] == {"mAP": -0.15, "NDS": -0.04}
    assert rec["noisy"] == {"mAP": 17.0, "NDS": 24.0, "mATE": 0.8} and rec["clean"]["mAP"] == 20.0
    # the card reads it like the records the tool writes
    assert "sigma 4: 17.0 / 24.0 (-15.0 % / -4.0 %) against 20.0 / 25.0 clean" in pixel_noise_bullet(
        [rec], "abc"
    )


def test_a_card_quotes_the_image_size_record_only_of_its_own_weights() -> None:
    record = {
        "weights_sha256": "abc",
        "training_size": "224x400",
        "sizes": {"224x400": {"mAP": 20.0, "NDS": 25.0}, "448x800": {"mAP": 17.6, "NDS": 24.0}},
        "change": {"448x800": {"mAP": -0.12, "NDS": -0.04}},
        "within": False,
    }
    bullet = image_sizes_bullet(record, "abc")
    assert "17.6 / 24.0 at 448x800 (-12.0 % / -4.0 %) against 20.0 / 25.0 at its training size 224x400" in (
        bullet
    )
    assert bullet.endswith("outside the 10 % a shipped default keeps.")
    assert image_sizes_bullet(record, "other weights") == ""
    assert image_sizes_bullet(None, "abc") == ""


def test_a_card_quotes_the_pixel_noise_records_of_its_own_weights_by_sigma() -> None:
    def rec(sigma: float, weights: str, m: float) -> dict:
        clean = {"mAP": 20.0, "NDS": 25.0}
        noisy = {"mAP": m, "NDS": 24.0}
        change = {k: noisy[k] / clean[k] - 1 for k in clean}
        return {"image_noise": sigma, "weights_sha256": weights, "clean": clean, "noisy": noisy} | {
            "change": change
        }

    bullet = pixel_noise_bullet([rec(8, "abc", 12.0), rec(4, "abc", 17.0), rec(4, "old", 1.0)], "abc")
    assert "sigma 4: 17.0 / 24.0 (-15.0 % / -4.0 %); sigma 8: 12.0 / 24.0 (-40.0 % / -4.0 %)" in bullet
    assert "against 20.0 / 25.0 clean" in bullet and "1.0 /" not in bullet
    assert pixel_noise_bullet([rec(4, "old", 1.0)], "abc") == ""
    assert bullet.endswith(
        "clean renders, without photometric augmentation (`--image-noise`, `--color-jitter`)."
    )
    trained = pixel_noise_bullet([rec(4, "abc", 17.0)], "abc", "simdistill train baseline --image-noise 8")
    assert trained.endswith("Trained with photometric augmentation.")
