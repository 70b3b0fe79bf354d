"""One scene seen at 1x and 2x resolution: the shipped student finds the same boxes (the input rule maps
both to nearly the same model input, see test_preprocess)."""

from __future__ import annotations

import numpy as np

from simdistill_ros.detection.core import CameraFrame, DetectorCore
from simdistill_ros.geometry import nuscenes_like_rig
from simdistill_ros.synth.render import render_camera
from simdistill_ros.synth.world import generate_scene

# The devkit's 2 m centre-distance threshold: boxes this close are the same detection for the metric.
SAME_M = 2.0


def _frame(scene, hw: tuple[int, int], t: float) -> list[CameraFrame]:
    ego = scene.ego_pose_at(t)
    return [
        CameraFrame(
            c.name,
            render_camera(c, ego, scene, t, np.random.default_rng(0))[0],
            c.intrinsics,
            c.cam_to_base.matrix(),
        )
        for c in nuscenes_like_rig(*hw).cameras
    ]


def test_the_shipped_student_finds_the_same_boxes_at_2x_resolution():
    scene = generate_scene(np.random.default_rng(11))
    core = DetectorCore.from_checkpoint("student_tiny", device="cpu", score_threshold=0.15)
    one = core.detect(_frame(scene, (160, 400), 1.0)).boxes
    two = core.detect(_frame(scene, (320, 800), 1.0)).boxes
    confident = [b for b in one if b.score >= 0.3]
    assert confident, "the scene must give the student something to find"
    # Confident 1x boxes have a 2x box of their class within 2 m; the 2x side may score it lower (down
    # to 0.15): a threshold between the two would turn interpolation noise into a miss. The student is
    # weak (6.6 mAP): a 0.3 truck beside a 0.2 trailer may swap classes or move a heatmap cell (1.6 m)
    # between nearly equal peaks, so most, not all, must match; a wrong input rule matches few (the
    # 224x400 bag before the principal-point anchor lost most of its mAP).
    matched = [
        any(c.label == b.label and np.linalg.norm(c.center[:2] - b.center[:2]) < SAME_M for c in two)
        for b in confident
    ]
    assert np.mean(matched) >= 0.8, [
        (b.label, np.round(b.center[:2], 1)) for b, m in zip(confident, matched) if not m
    ]
