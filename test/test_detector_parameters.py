"""The detector node's parameters are declared once (``simdistill_ros.detection.parameters.PARAMETERS``):
config/detector.yaml, the table in docs/detector_node.md, the launch file and the CLI defaults must agree
with that declaration. No ROS needed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from simdistill_ros.cli import build_parser
from simdistill_ros.defaults import DEFAULT_MODEL, DEFAULT_SCORE_THRESHOLD, DEFAULT_TEACHER
from simdistill_ros.detection.core import DetectorCore
from simdistill_ros.detection.parameters import (
    NUSCENES_CAMERAS,
    PARAMETERS,
    StartupError,
    check_live,
    detector_params,
    with_cameras,
)

ROOT = Path(__file__).resolve().parents[1]
TYPE_NAMES = {bool: "bool", int: "int", float: "double", str: "string", list: "string[]"}


def _docs_table() -> dict[str, tuple[str, str, str]]:
    """name -> (type, default text, live or read-only) of the parameter table in docs/detector_node.md."""
    text = (ROOT / "docs" / "detector_node.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|", text, flags=re.M)
    return {name: (kind.strip(), default.strip(), live.strip()) for name, kind, default, live in rows}


def test_the_yaml_holds_every_declared_default():
    text = (ROOT / "config" / "detector.yaml").read_text()
    params = yaml.safe_load(text)["/**"]["ros__parameters"]
    for name, param in PARAMETERS.items():
        assert params.get(name) == param.ros_default, name  # optional lists as UNSET ([""])
    assert set(params) == set(PARAMETERS), set(params) ^ set(PARAMETERS)
    live = [name for name, p in PARAMETERS.items() if p.live]
    assert "Live (`ros2 param set` while the node runs, checked): " + ", ".join(live) in " ".join(
        line.lstrip("# ") for line in text.splitlines()
    )


def test_the_docs_table_lists_every_parameter_with_its_type_and_default():
    table = _docs_table()
    assert set(table) == set(PARAMETERS)
    for name, param in PARAMETERS.items():
        kind, text, live = table[name]
        assert live == ("live" if param.live else "read-only"), name
        default = param.default
        if default is None:
            assert (kind, text) == ("string[]", '`[""]` (unset)'), name
        elif default == NUSCENES_CAMERAS:
            assert kind == "string[]" and text == f"the {len(NUSCENES_CAMERAS)} nuScenes cameras", name
        else:
            assert kind == TYPE_NAMES[type(default)], name
            assert yaml.safe_load(text.strip("`")) == default, name


def test_each_default_is_written_once():
    assert PARAMETERS["model"].default == DEFAULT_MODEL
    assert PARAMETERS["score_threshold"].default == DEFAULT_SCORE_THRESHOLD
    import inspect

    assert inspect.signature(DetectorCore).parameters["score_threshold"].default == DEFAULT_SCORE_THRESHOLD
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    detect = {a.dest: a.default for a in sub["detect"]._actions}
    assert detect["model"] == DEFAULT_MODEL and detect["score_threshold"] == DEFAULT_SCORE_THRESHOLD
    assert {a.dest: a.default for a in sub["replay"]._actions}["teacher"] == DEFAULT_TEACHER
    launch = (ROOT / "launch" / "detector.launch.py").read_text()
    assert re.search(rf'"model", default_value="{DEFAULT_MODEL}"', launch)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"camera_names": ["A", ""]}, "empty names"),
        ({"camera_names": ["A", "A"]}, "unique"),
        ({"image_topic": "/front/image"}, "must contain {camera}"),
        ({"image_topics": ["/a"]}, "image_topics needs camera_names"),
        ({"camera_names": ["A", "B"], "image_topics": ["/a"]}, "image_topics has 1 topics for 2 cameras"),
        ({"frame_queue_size": 0}, "frame_queue_size must be >= 1"),
        ({"device": "tpu"}, "device must be auto, cpu or cuda"),
        ({"score_threshold": 1.5}, "score_threshold must be between 0 and 1, got 1.5"),
        ({"camera_timeout": 0.0}, "camera_timeout must be > 0 seconds"),
        ({"debug_image_rate": -1.0}, "debug_image_rate must be >= 0 (0: off)"),
        ({"camera_qos_reliability": "sometimes"}, "camera_qos_reliability must be best_effort or reliable"),
        ({"camera_qos_depth": 0}, "camera_qos_depth must be >= 1, got 0"),
        ({"outputs": ["vision_msgs", "lidar"]}, "unknown output lidar: choose from vision_msgs, autoware"),
        ({"outputs": [""]}, "choose at least one output"),
        (
            {"orientation_availability": "front"},
            "orientation availability must be one of unavailable, sign_unknown, available",
        ),
    ],
)
def test_bad_parameters_are_one_line_startup_errors(change: dict, message: str):
    values = {name: p.ros_default for name, p in PARAMETERS.items()}
    ok = with_cameras(detector_params(values), None)  # no camera_names, a model without cameras: nuScenes
    assert ok.image_topics[0] == "/CAM_FRONT/image_rect_compressed" and len(ok.camera_info_topics) == 6
    assert ok.camera_names == NUSCENES_CAMERAS
    trained = with_cameras(detector_params(values), ["CAM_BACK", "CAM_FRONT"])  # the model's order
    assert trained.camera_names == ["CAM_BACK", "CAM_FRONT"]
    assert trained.image_topics == ["/CAM_BACK/image_rect_compressed", "/CAM_FRONT/image_rect_compressed"]
    mine = detector_params({**values, "camera_names": ["CAM_FRONT"]})  # configured: wins over the model's
    assert with_cameras(mine, ["CAM_BACK", "CAM_FRONT"]).camera_names == ["CAM_FRONT"]
    with pytest.raises(StartupError, match=re.escape(message)):
        detector_params({**values, **change})


def test_live_checks_accept_good_values_and_refuse_read_only_names():
    assert check_live("score_threshold", 0.5) == "" and check_live("max_detections", 1) == ""
    assert check_live("max_detections", 0) == "max_detections must be >= 1, got 0"
    assert "model is read-only" in check_live("model", "baseline_tiny")
    assert check_live("max_stamp_ahead", 0.0) == ""  # 0: the check is off
    refused = "max_stamp_ahead must be >= 0 seconds (0: no check), got -1.0"
    assert check_live("max_stamp_ahead", -1.0) == refused
    assert {n for n, p in PARAMETERS.items() if p.live} == {
        "score_threshold", "max_detections", "max_stamp_ahead", "frame_queue_size", "camera_timeout",
        "diagnostics_period", "debug_image_rate",
    }  # fmt: skip
