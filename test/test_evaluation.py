"""Official nuScenes DetectionEval on the tiny hand-made dataset: GT scores 1.0, perturbations score lower,
empty and incomplete results are handled, classes are restricted to those in the GT."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from test_tables import VERSION, build_dataset

from simdistill_ros.dataset.nuscenes_tables import load_split_samples
from simdistill_ros.evaluation.nuscenes_eval import (
    EvalReport,
    evaluate,
    format_report,
    gt_as_results,
    results_from_boxes,
)
from simdistill_ros.geometry import Box3D


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_eval")
    build_dataset(root)
    return root


@pytest.fixture(scope="module")
def eval_out(tmp_path_factory):
    return tmp_path_factory.mktemp("eval_out")


@pytest.fixture(scope="module")
def gt_report(dataroot, eval_out) -> EvalReport:
    return evaluate(dataroot, "all", gt_as_results(dataroot, "all", VERSION), VERSION, out_dir=eval_out)


def test_gt_as_results_scores_perfectly(gt_report):
    assert gt_report.mean_ap == pytest.approx(1.0)
    assert gt_report.nd_score > 0.99
    for k in ("trans_err", "scale_err", "orient_err", "vel_err", "attr_err"):
        assert gt_report.tp_errors[k] == pytest.approx(0.0, abs=1e-6), k
    assert gt_report.num_samples == 6
    assert gt_report.num_gt_boxes == 21  # 24 annotations less the far car (3 samples) beyond 50 m
    text = format_report(gt_report)
    assert "mAP   1.000" in text and "pedestrian" in text and "mAVE" in text


def test_classes_restricted_to_those_in_the_gt(dataroot, gt_report):
    assert gt_report.classes == ["car", "barrier", "pedestrian", "traffic_cone"]
    assert set(gt_report.class_aps) == set(gt_report.classes)
    assert np.isnan(gt_report.class_tp_errors["traffic_cone"]["orient_err"])  # the devkit defines none
    val = evaluate(dataroot, "val", gt_as_results(dataroot, "val", VERSION), VERSION)
    assert val.classes == ["car", "pedestrian", "traffic_cone"]
    assert val.mean_ap == pytest.approx(1.0)
    assert any("barrier" in n for n in val.notes)


def test_summary_files_written(gt_report, eval_out):
    summary = json.loads((eval_out / "metrics_summary.json").read_text())
    assert summary["mean_ap"] == pytest.approx(1.0)
    assert summary["classes_evaluated"] == gt_report.classes
    assert (eval_out / "metrics_details.json").is_file()


def _perturbed(dataroot, split, shift_m=0.0, keep_every=1):
    per_sample, poses = {}, {}
    for s in load_split_samples(dataroot, split, VERSION):
        boxes = [b for b in s.boxes][::keep_every]
        per_sample[s.token] = [
            Box3D(b.center + np.array([shift_m, 0.0, 0.0]), b.size, b.yaw, b.label, b.velocity, 0.9)
            for b in boxes
        ]
        poses[s.token] = s.ego_pose
    return results_from_boxes(per_sample, poses)


def test_perturbed_results_score_their_known_value(dataroot):
    # Every box 0.75 m off: a match at the 1, 2 and 4 m thresholds, none at 0.5 m, so every class's AP
    # is 3/4; the TP errors are taken at 2 m: trans_err 0.75, the others 0.
    # NDS = (5 mAP + sum over the five TP metrics of (1 - err)) / 10 = (3.75 + 0.25 + 4) / 10 = 0.8
    shifted = evaluate(dataroot, "all", _perturbed(dataroot, "all", shift_m=0.75), VERSION)
    assert shifted.class_aps == pytest.approx({c: 0.75 for c in shifted.classes})
    assert shifted.mean_ap == pytest.approx(0.75)
    assert shifted.tp_errors["trans_err"] == pytest.approx(0.75)
    assert shifted.nd_score == pytest.approx(0.8)
    # Every other box dropped: precision 1 up to recall r, and the devkit's AP over 101 recall points
    # above recall 0.1 with precision above 0.1 is (floor(100 r) - 10) / 90. The kept recalls are car 4/9,
    # barrier 2/3, pedestrian 2/3, traffic_cone 1/3; the TP errors are 0, so NDS = (5 mAP + 5) / 10.
    halved = evaluate(dataroot, "all", _perturbed(dataroot, "all", keep_every=2), VERSION)
    expected = {"car": 34 / 90, "barrier": 56 / 90, "pedestrian": 56 / 90, "traffic_cone": 23 / 90}
    assert halved.class_aps == pytest.approx(expected)
    assert halved.mean_ap == pytest.approx(169 / 360)
    assert halved.nd_score == pytest.approx((5 * 169 / 360 + 5) / 10)


def test_results_json_format(dataroot, tmp_path):
    results = gt_as_results(dataroot, "val", VERSION)
    assert results["meta"]["use_camera"] is True
    box = next(b for boxes in results["results"].values() for b in boxes)
    assert set(box) == {
        "sample_token",
        "translation",
        "size",
        "rotation",
        "velocity",
        "detection_name",
        "detection_score",
        "attribute_name",
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    assert evaluate(dataroot, "val", path, VERSION).mean_ap == pytest.approx(1.0)


def test_empty_results_give_zero_not_a_crash(dataroot):
    results = gt_as_results(dataroot, "all", VERSION)
    empty = {"meta": results["meta"], "results": {t: [] for t in results["results"]}}
    report = evaluate(dataroot, "all", empty, VERSION)
    assert report.mean_ap == 0.0 and report.nd_score == 0.0
    assert report.num_pred_boxes == 0 and report.num_gt_boxes == 21
    assert any("no predictions" in n for n in report.notes)
    assert "no predictions" in format_report(report)


def test_missing_samples_raise_a_clear_error(dataroot):
    results = copy.deepcopy(gt_as_results(dataroot, "all", VERSION))
    for token in list(results["results"])[:2]:
        del results["results"][token]
    with pytest.raises(ValueError, match=r"4 of the 6 samples .* 2 missing"):
        evaluate(dataroot, "all", results, VERSION)


def test_unknown_split_is_reported(dataroot):
    with pytest.raises(
        ValueError, match=r"split 'test' is not in .*splits.json; use --split with one of: all, "
    ):
        evaluate(dataroot, "test", gt_as_results(dataroot, "val", VERSION), VERSION)


def test_predictions_of_classes_absent_from_the_gt_are_ignored(dataroot):
    results = copy.deepcopy(gt_as_results(dataroot, "val", VERSION))
    token, boxes = next(iter(results["results"].items()))
    boxes.append(dict(boxes[0], detection_name="bus", attribute_name="vehicle.moving", detection_score=0.5))
    report = evaluate(dataroot, "val", results, VERSION)
    assert report.mean_ap == pytest.approx(1.0) and "bus" not in report.classes


def test_boxes_the_devkit_would_reject_are_clear_errors(dataroot):
    results = copy.deepcopy(gt_as_results(dataroot, "val", VERSION))
    next(iter(results["results"].values()))[0]["attribute_name"] = "not.an.attribute"
    with pytest.raises(ValueError, match=r"box 0: unknown attribute_name 'not.an.attribute'"):
        evaluate(dataroot, "val", results, VERSION)


def test_unknown_velocity_nan_is_accepted_but_infinite_is_not(dataroot):
    results = copy.deepcopy(gt_as_results(dataroot, "val", VERSION))
    box = next(iter(results["results"].values()))[0]
    box["velocity"] = [float("nan"), float("nan")]
    assert evaluate(dataroot, "val", results, VERSION).mean_ap == pytest.approx(1.0)
    box["velocity"] = [float("inf"), 0.0]
    with pytest.raises(ValueError, match=r"box 0: 'velocity' must be 2 finite numbers"):
        evaluate(dataroot, "val", results, VERSION)


def _detection_bag(path, dataroot, split: str, outputs: list[str]) -> None:
    """The split's ground truth (boxes with points) published as the node would: one message per output
    per sample, stamped with the sample's time, written by rclpy's serializer."""
    from rclpy.serialization import serialize_message

    from simdistill_ros.frames import SensorBagWriter
    from simdistill_ros.outputs import MESSAGE_TYPE, OUTPUT_TOPIC
    from simdistill_ros.outputs.ros import output_messages

    with SensorBagWriter(path, storage="mcap") as writer:
        for s in load_split_samples(dataroot, split, VERSION):
            keep = [b for i, b in enumerate(s.boxes) if s.num_lidar_pts[i] + s.num_radar_pts[i] > 0]
            stamp = s.timestamp_us * 1000
            for output, msg in output_messages(keep, stamp, "base_link", outputs).items():
                writer.write_serialized(
                    OUTPUT_TOPIC[output], MESSAGE_TYPE[output], serialize_message(msg), stamp
                )


def test_detection_bag_is_scored_with_the_velocity_its_detected_objects_carry(dataroot, tmp_path):
    """`simdistill evaluate --detections`: the ground truth published as Detection3DArray + DetectedObjects
    scores mAP 1 and mAVE 0 (the velocity comes through the Autoware message, rotated into each object's
    frame and back); from Detection3DArray alone the same boxes stand still and mAVE is the GT's speed."""
    pytest.importorskip("rclpy")
    pytest.importorskip("vision_msgs.msg")
    pytest.importorskip("autoware_perception_msgs.msg")
    from simdistill_ros.cli import main as cli

    scores = {}
    for name, outputs in (("both", ["vision_msgs", "autoware"]), ("vision", ["vision_msgs"])):
        bag = tmp_path / f"{name}_bag"
        _detection_bag(bag, dataroot, "all", outputs)
        out = tmp_path / f"{name}_eval"
        args = ["evaluate", "--data", str(dataroot), "--split", "all", "--version", VERSION]
        assert cli([*args, "--detections", str(bag), "--out", str(out)]) == 0
        scores[name] = json.loads((out / "metrics_summary.json").read_text())
    assert scores["both"]["mean_ap"] == pytest.approx(1.0)
    assert scores["both"]["tp_errors"]["vel_err"] < 1e-3
    assert scores["vision"]["mean_ap"] == pytest.approx(1.0)
    assert scores["vision"]["tp_errors"]["vel_err"] > 0.5
