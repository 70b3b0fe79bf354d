"""The `nuscenes` preset a GPU user starts from: a smoke run of the teacher (10 sweeps), the baseline and
the student, and the student's evaluation, from a synthetic dataroot through the devkit reader.

The preset is sized for a GPU (256x704 input, a 360x360 splat); to keep this a smoke run on two CPU cores
the world has one camera and each model takes one step of batch one. Real nuScenes cannot be downloaded
here: the commands are those of docs/guide.md ("nuScenes on a GPU") with the synthetic dataroot in its place.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from timeouts import time_limit

from simdistill_ros.cli import main as simdistill
from simdistill_ros.geometry import CameraRig, nuscenes_like_rig
from simdistill_ros.synth.export import synthesize

VERSION = "v1.0-synth"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("preset_world")
    full = nuscenes_like_rig(96, 264)
    rig = CameraRig(full.cameras[:1], full.lidar_to_base)
    with time_limit(120, "synthesizing the one-camera dataroot"):
        synthesize(out, 2, 2, 13, image_size=(96, 264), rig=rig, progress=False)
    return out


@pytest.mark.timeout(600)
def test_nuscenes_preset_trains_each_model_from_a_dataroot_and_evaluates(root: Path, tmp_path: Path) -> None:
    common = ["--config", "nuscenes", "--data", str(root), "--version", VERSION, "--frames-from", "samples"]
    common += ["--max-steps", "1", "--batch-size", "1", "--device", "cpu"]
    teacher = tmp_path / "teacher"
    assert simdistill(["train", "teacher", *common, "--out", str(teacher)]) == 0
    config = json.loads((teacher / "last" / "config.json").read_text())
    assert config["pillars"]["lidar_sweeps"] == 10 and config["backbone"]["pretrained"] is True
    assert simdistill(["train", "baseline", *common, "--out", str(tmp_path / "baseline")]) == 0
    student = tmp_path / "student"
    assert (
        simdistill(["train", "student", *common, "--teacher", str(teacher / "last"), "--out", str(student)])
        == 0
    )
    meta = json.loads((student / "last" / "meta.json").read_text())
    assert meta["step"] == 1 and meta["data_version"] == VERSION
    out = tmp_path / "eval"
    args = [
        "evaluate",
        "--data",
        str(root),
        "--version",
        VERSION,
        "--split",
        "val",
        "--frames-from",
        "samples",
    ]
    assert simdistill([*args, "--model", str(student / "last"), "--device", "cpu", "--out", str(out)]) == 0
    summary = json.loads((out / "metrics_summary.json").read_text())
    assert 0.0 <= summary["mean_ap"] <= 1.0 and 0.0 <= summary["nd_score"] <= 1.0
