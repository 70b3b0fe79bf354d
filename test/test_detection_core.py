"""The detector core without ROS: inputs, calibration handling, geometry cache, message fields, launch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from _detector_helpers import tiny_student_checkpoint

from simdistill_ros.detection import CameraFrame, DetectorCore, FrameInputError
from simdistill_ros.geometry import Box3D, nuscenes_like_rig
from simdistill_ros.outputs.markers import (
    MARKER_DELETEALL,
    MARKER_LINE_LIST,
    MARKER_TEXT_VIEW_FACING,
    marker_fields,
)
from simdistill_ros.outputs.vision import detection_array_fields

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def core(tmp_path_factory) -> DetectorCore:
    ckpt = tiny_student_checkpoint(tmp_path_factory.mktemp("ckpt") / "student")
    return DetectorCore.from_checkpoint(ckpt, "cpu", score_threshold=0.0, max_detections=20)


def rig_frames(h: int = 64, w: int = 112, n: int = 6, seed: int = 0) -> list[CameraFrame]:
    rng = np.random.default_rng(seed)
    rig = nuscenes_like_rig(h, w)
    return [
        CameraFrame(c.name, rng.integers(0, 255, (h, w, 3), np.uint8), c.intrinsics, c.cam_to_base.matrix())
        for c in rig.cameras[:n]
    ]


def test_core_imports_no_ros():
    code = (
        "import sys, simdistill_ros.detection, simdistill_ros.outputs.vision, "
        "simdistill_ros.outputs.autoware, simdistill_ros.outputs.markers, simdistill_ros.outputs.ros, "
        "simdistill_ros.detection.pictures, simdistill_ros.detection.command; "
        "ros = ('rclpy', 'vision_msgs', 'std_msgs', 'autoware_perception_msgs'); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ros]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_detect_returns_base_frame_boxes_and_caches_rig_geometry(core: DetectorCore):
    frames = rig_frames()
    vt = core.model.camera.view_transform
    updates, misses = core.geometry_updates, vt.cache_misses
    first = core.detect(frames, stamp_ns=5)
    assert first.stamp_ns == 5 and 0 < len(first.boxes) <= 20
    assert all(isinstance(b, Box3D) and b.score >= 0.0 for b in first.boxes)
    again = core.detect(rig_frames(seed=1))  # new pixels, same calibration: nothing recomputed
    assert not again.geometry_updated and core.geometry_updates == updates + 1
    assert vt.cache_misses == misses + 1
    moved = rig_frames(seed=1)
    moved[0].cam_to_base = moved[0].cam_to_base.copy()
    moved[0].cam_to_base[0, 3] += 0.5  # recalibrated camera
    assert core.detect(moved).geometry_updated and vt.cache_misses == misses + 2


def test_detect_decodes_with_every_head_setting_as_evaluation_does():
    """The core's boxes are the model's own decode, footprint NMS of the vehicle classes (tiny_v2) included:
    the node and `simdistill detect` must not show boxes that `simdistill evaluate` suppresses."""
    import dataclasses
    import math

    import torch

    from simdistill_ros.models import StudentModel, tiny
    from simdistill_ros.models.head import decode

    torch.manual_seed(0)
    cfg = tiny()
    cfg.head = dataclasses.replace(cfg.head, nms_footprint_classes=(0, 1, 2, 3, 4))
    net = StudentModel(cfg).eval()
    with torch.no_grad():  # 6 m boxes: neighbouring peaks overlap, as stacked boxes on one car do
        net.head.branches["size"][-1].bias.fill_(math.log(6.0))
    core = DetectorCore(net, cfg.image_size, torch.device("cpu"), score_threshold=0.0, max_detections=2000)
    frames = rig_frames()
    inputs, _ = core.prepare(frames)
    ref = net.detect(inputs, score_threshold=0.0, max_detections=2000)[0]
    got = core.detect(frames).boxes
    with torch.no_grad():
        head = net(inputs).head
    c = cfg.head
    unsuppressed = decode(head, cfg.grid, 0.0, 2000, c.nms, c.nms_radius)[0]
    assert len(unsuppressed.boxes) > len(ref.boxes)  # footprint NMS matters for this input
    assert len(got) == len(ref.boxes)
    np.testing.assert_allclose(np.stack([b.to_array() for b in got]), ref.boxes.numpy(), atol=1e-5)


def test_camera_info_for_another_resolution_scales_the_intrinsics(core: DetectorCore):
    # A CameraInfo written for 128x224 with images arriving at 64x112: K must be halved, exactly as if the
    # CameraInfo had described the 64x112 images.
    small = rig_frames(64, 112)
    big_k = rig_frames(128, 224)
    mixed = [CameraFrame(s.name, s.image, b.intrinsics, s.cam_to_base, (128, 224))
             for s, b in zip(small, big_k)]  # fmt: skip
    a, _ = core.prepare(small)
    b, _ = core.prepare(mixed)
    np.testing.assert_allclose(a.intrinsics.numpy(), b.intrinsics.numpy(), rtol=1e-6)
    # and the model input (48x88 here) is reached with the evaluation resize folded into K
    assert tuple(a.images.shape[-2:]) == core.input_hw
    fx_in = a.intrinsics[0, 0, 0, 0].item()
    assert fx_in == pytest.approx(small[0].intrinsics[0, 0] * max(48 / 64, 88 / 112), rel=1e-5)


def test_cameras_of_different_sizes_are_each_resized(core: DetectorCore):
    frames = rig_frames(64, 112, n=2)
    frames[1] = rig_frames(96, 168, n=2)[1]
    inputs, _ = core.prepare(frames)
    assert tuple(inputs.images.shape) == (1, 2, 3, *core.input_hw)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: f[0].__setattr__("intrinsics", np.full((3, 3), np.nan)), "unusable intrinsics"),
        (lambda f: f[1].__setattr__("intrinsics", np.zeros((3, 3))), "uncalibrated"),
        (lambda f: f[1].intrinsics.__setitem__((0, 0), 1e30), r"CAM_\w+'.*field of view.*outside 1..175 deg"),
        (lambda f: f[1].intrinsics.__setitem__((1, 1), -5.0), "must be positive"),
        (lambda f: f[1].__setattr__("info_hw", (6400, 11200)), "field of view"),  # K for 100x smaller
        (lambda f: f[2].__setattr__("image", f[2].image[:, :, 0]), "RGB uint8"),
        (lambda f: f[2].__setattr__("image", f[2].image.astype(np.float32)), "RGB uint8"),
        (lambda f: f[3].__setattr__("cam_to_base", np.full((4, 4), np.inf)), "not a finite 4x4"),
        (lambda f: f.pop(), "expects 6"),
    ],
)
def test_bad_input_is_a_clear_frame_error(tmp_path: Path, core: DetectorCore, mutate, message: str):
    fixed = DetectorCore(core.model, core.input_hw, core.device, camera_names=[c.name for c in rig_frames()])
    frames = rig_frames()
    mutate(frames)
    with pytest.raises(FrameInputError, match=message):
        fixed.detect(frames)


def test_teacher_checkpoints_are_refused(core: DetectorCore):
    from simdistill_ros.errors import UserError

    with pytest.raises(UserError, match="LiDAR"):
        DetectorCore(core.model, core.input_hw, core.device, model_type="teacher")


def test_message_fields_and_real_messages_round_trip():
    boxes = [
        Box3D([10.0, -2.0, 0.8], [4.5, 1.9, 1.6], 0.3, "car", score=0.9),
        Box3D([5.0, 3.0, 0.9], [0.6, 0.7, 1.8], -2.0, "pedestrian", score=0.4),
    ]
    fields = detection_array_fields(boxes, 1_700_000_000_123_456_789, "base_link")
    assert [d.id for d in fields.detections] == ["1700000000123456789-0", "1700000000123456789-1"]
    assert fields.detections[0].class_id == "car" and fields.detections[0].size == (4.5, 1.9, 1.6)
    markers = marker_fields(boxes)
    assert markers[0].action == MARKER_DELETEALL
    lines = [m for m in markers if m.type == MARKER_LINE_LIST and m.action != MARKER_DELETEALL]
    texts = [m for m in markers if m.type == MARKER_TEXT_VIEW_FACING]
    assert len(lines) == len(texts) == 2 and len(lines[0].points) == 26
    assert texts[1].text == "pedestrian 0.40"

    pytest.importorskip("vision_msgs.msg")
    from simdistill_ros.outputs.ros import detection_array_msg, marker_array_msg
    from simdistill_ros.outputs.vision import boxes_from_detection_array

    msg = detection_array_msg(fields)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1_700_000_000, 123_456_789)
    assert msg.detections[1].header.frame_id == "base_link"
    assert msg.detections[0].results[0].hypothesis.class_id == "car"
    back = boxes_from_detection_array(msg)
    for a, b in zip(boxes, back):
        np.testing.assert_allclose(a.to_array()[:7], b.to_array()[:7], atol=1e-9)
        assert (a.label, a.score) == (b.label, b.score)
    ma = marker_array_msg(markers, fields.stamp_ns, "base_link")
    assert len(ma.markers) == 5 and ma.markers[0].action == MARKER_DELETEALL


def test_launch_file_parameters_and_rviz_config_are_consistent():
    from simdistill_ros.nodes.detector_node import PARAMETERS

    source = (ROOT / "launch" / "detector.launch.py").read_text()
    tree = ast.parse(source)
    compile(tree, "detector.launch.py", "exec")
    declared = {
        n.args[0].value
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "DeclareLaunchArgument"
    }
    assert {"params_file", "model", "device", "namespace", "use_rviz"} <= declared
    assert '"detector_node"' in source and '"detector.yaml"' in source and '"detector.rviz"' in source
    text = (ROOT / "config" / "detector.yaml").read_text()
    params = yaml.safe_load(text)["/**"]["ros__parameters"]
    assert params == {name: p.ros_default for name, p in PARAMETERS.items()}
    rviz = yaml.safe_load((ROOT / "config" / "detector.rviz").read_text())["Visualization Manager"]
    assert rviz["Global Options"]["Fixed Frame"] == "base_link"
    classes = {d["Class"] for d in rviz["Displays"]}
    assert {"rviz_default_plugins/MarkerArray", "vision_msgs_rviz_plugins/Detection3DArray"} <= classes
    # Out of the box with any RViz: only default plugins enabled, and images RViz can subscribe to (the
    # default bags' /<CAM>/image_rect_compressed is no image_transport topic): the node's debug image.
    enabled = [d for d in rviz["Displays"] if d["Enabled"]]
    assert all(d["Class"].startswith("rviz_default_plugins/") for d in enabled), enabled
    images = [d["Topic"]["Value"] for d in enabled if d["Class"] == "rviz_default_plugins/Image"]
    assert images == ["/simdistill_detector/debug/image"]
    assert "rviz_default_plugins/Image" in classes
