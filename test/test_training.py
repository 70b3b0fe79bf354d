"""Training end to end on a tiny synthetic world: teacher, baseline and student, checkpoints, resume, DDP."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run_cli as run


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train_world")
    run(
        "synth",
        "--out",
        str(out),
        "--scenes",
        "2",
        "--frames-per-scene",
        "3",
        "--seed",
        "11",
        "--render-size",
        "64x112",
    )
    return out


@pytest.fixture(scope="module")
def teacher(world: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("teacher")
    # the fixture's own limit (pytest's per-test timeout covers test bodies only)
    run(
        "train",
        "teacher",
        "--data",
        str(world),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--batch-size",
        "2",
        timeout=400,
    )
    return out / "last"


def test_teacher_checkpoint_has_weights_config_and_metadata(teacher: Path):
    meta = json.loads((teacher / "meta.json").read_text())
    assert meta["model_type"] == "teacher" and meta["data_hash"] and meta["train_frames"] == 3
    assert (teacher / "model.safetensors").stat().st_size > 100_000
    assert json.loads((teacher / "config.json").read_text())["grid"]
    assert (teacher.parent / "log.csv").read_text().startswith("epoch,")


def test_student_distills_from_the_teacher_and_resumes(world: Path, teacher: Path, tmp_path: Path):
    run(
        "train",
        "student",
        "--data",
        str(world),
        "--out",
        str(tmp_path),
        "--teacher",
        str(teacher),
        "--epochs",
        "1",
        "--batch-size",
        "2",
    )
    log = (tmp_path / "log.csv").read_text().splitlines()
    header = log[0].split(",")
    for term in ("gt_heatmap", "imd", "cmd", "mmd_feat", "mmd_pred_heatmap", "mmd_pred_box"):
        assert term in header, header
    run(
        "train",
        "student",
        "--data",
        str(world),
        "--out",
        str(tmp_path),
        "--teacher",
        str(teacher),
        "--epochs",
        "2",
        "--batch-size",
        "2",
        "--resume",
    )
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]  # resumed at epoch 2, not restarted


def test_ablation_without_distillation_needs_no_teacher(world: Path, tmp_path: Path):
    run(
        "train",
        "student",
        "--data",
        str(world),
        "--out",
        str(tmp_path),
        "--disable",
        "distill",
        "gcm",
        "--max-steps",
        "1",
        "--batch-size",
        "2",
    )
    cfg = json.loads((tmp_path / "last" / "config.json").read_text())
    assert cfg["gcm"]["enabled"] is False and cfg["loss"]["use_imd"] is False


def test_student_warm_started_from_its_teacher(world: Path, teacher: Path, tmp_path: Path):
    common = ["train", "student", "--data", str(world), "--teacher", str(teacher), "--max-steps", "1"]
    proc = run(*common, "--out", str(tmp_path / "warm"), "--init-from", str(teacher), "--batch-size", "2")
    assert "initialised" in proc.stdout and "start fresh" in proc.stdout
    meta = json.loads((tmp_path / "warm" / "last" / "meta.json").read_text())
    assert meta["init_from"] == str(teacher)
    bad = run(*common, "--out", str(tmp_path / "bad"), "--init-from", str(tmp_path / "nope"), check=False)
    assert bad.returncode == 2 and "--init-from" in bad.stderr and "nope" in bad.stderr
    assert not (tmp_path / "bad" / "last").exists()


def test_student_without_teacher_is_a_clear_error(world: Path, tmp_path: Path):
    proc = run("train", "student", "--data", str(world), "--out", str(tmp_path), check=False)
    assert proc.returncode == 2 and "--teacher" in proc.stderr


def test_evaluate_a_checkpoint_with_the_official_metric(world: Path, teacher: Path, tmp_path: Path):
    proc = run(
        "evaluate", "--data", str(world), "--split", "val", "--model", str(teacher), "--out", str(tmp_path)
    )
    assert "mAP" in proc.stdout and "NDS" in proc.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["results"]) == 3  # every val sample has an entry
    # the same model under pixel noise: other boxes, on every frame's tokens
    noisy = run(
        "evaluate", "--data", str(world), "--split", "val", "--model", str(teacher), "--out",
        str(tmp_path / "noisy"), "--image-noise", "20",
    )  # fmt: skip
    assert "mAP" in noisy.stdout
    noisy_results = json.loads((tmp_path / "noisy" / "results.json").read_text())["results"]
    assert noisy_results.keys() == results["results"].keys() and noisy_results != results["results"]
    bad = run(
        "evaluate",
        "--data",
        str(world),
        "--split",
        "val",
        "--gt-as-results",
        "--image-noise",
        "4",
        check=False,
    )
    assert bad.returncode == 2 and "needs --model" in bad.stderr


def test_evaluation_noise_is_the_same_for_a_frame_on_every_run(world: Path):
    import numpy as np

    from simdistill_ros.dataset.frame_cache import load_split_frames
    from simdistill_ros.training.dataset import FrameDataset

    frames = load_split_frames(world, "val")
    plain = FrameDataset(frames, (64, 112), augment=False)
    first = FrameDataset(frames, (64, 112), augment=False, image_noise=6.0)
    again = FrameDataset(frames, (64, 112), augment=False, image_noise=6.0)
    assert np.array_equal(first[0].images, again[0].images)  # seeded by the frame: models compare
    noise = [first[i].images.astype(np.float32) - plain[i].images.astype(np.float32) for i in (0, 1)]
    assert not np.array_equal(noise[0], noise[1])  # but not the same pattern on every frame
    assert 4.0 < float(noise[0].std()) < 7.0 and abs(float(noise[0].mean())) < 0.5


def test_truncated_checkpoint_is_refused_clearly(world: Path, teacher: Path, tmp_path: Path):
    broken = tmp_path / "broken"
    shutil.copytree(teacher, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    proc = run("evaluate", "--data", str(world), "--split", "val", "--model", str(broken), check=False)
    assert proc.returncode == 2 and "model.safetensors" in proc.stderr and "Traceback" not in proc.stderr


def test_ddp_with_two_cpu_processes(world: Path, tmp_path: Path):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            str(torchrun),
            "--standalone",  # the rendezvous port is taken free from the OS
            "--nproc_per_node",
            "2",
            "-m",
            "simdistill_ros.cli",
            "train",
            "baseline",
            "--data",
            str(world),
            "--out",
            str(tmp_path),
            "--max-steps",
            "2",
            "--batch-size",
            "1",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    meta = json.loads((tmp_path / "last" / "meta.json").read_text())
    assert meta["step"] == 2  # both ranks took both steps (the equal weights: test_training_exact.py)


def test_a_pretrained_backbone_learns_at_a_tenth_of_the_rate() -> None:
    import argparse

    import torch

    from simdistill_ros.models.config import tiny, tiny_v2
    from simdistill_ros.models.detectors import BaselineModel
    from simdistill_ros.training.command import backbone_lr_scale
    from simdistill_ros.training.loop import OptimConfig, param_groups

    model = BaselineModel(tiny_v2())
    backbone = {id(p) for p in model.camera.backbone.parameters() if p.requires_grad}
    fast, slow = param_groups(model, None, OptimConfig(lr=2e-3, backbone_lr_scale=0.1))
    assert (fast["lr"], slow["lr"]) == (2e-3, pytest.approx(2e-4))
    assert {id(p) for p in slow["params"]} == backbone
    assert not backbone & {id(p) for p in fast["params"]}
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(p.numel() for g in (fast, slow) for p in g["params"]) == trainable  # frozen stages left out
    # one group at the full rate when the scale is 1
    assert [g["lr"] for g in param_groups(model, None, OptimConfig(lr=1e-3))] == [1e-3]
    # the CLI's default follows the preset's backbone; an explicit value wins
    ns = argparse.Namespace
    assert backbone_lr_scale(ns(config="tiny_v2", backbone_lr_scale=None)) == 0.1
    assert backbone_lr_scale(ns(config="tiny", backbone_lr_scale=None)) == 1.0
    assert backbone_lr_scale(ns(config="tiny_v2", backbone_lr_scale=0.5)) == 0.5
    assert tiny_v2().backbone.pretrained and not tiny().backbone.pretrained
    # the one-cycle schedule peaks at each group's own rate
    opt = torch.optim.AdamW([fast, slow])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[2e-3, 2e-4], total_steps=10, pct_start=0.5)
    for _ in range(4):  # the peak is step pct_start * total_steps - 1
        opt.step(), sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([2e-3, 2e-4])


def test_every_preset_has_a_training_schedule() -> None:
    import argparse

    from simdistill_ros.models.config import PRESETS
    from simdistill_ros.training.command import optim_config

    for name in PRESETS:  # `simdistill train --config tiny_v2` once failed here with a KeyError
        args = argparse.Namespace(
            config=name,
            epochs=None,
            batch_size=None,
            lr=None,
            seed=0,
            workers=0,
            max_steps=None,
            backbone_lr_scale=None,
        )
        cfg = optim_config(args)
        assert cfg.lr > 0 and cfg.backbone_lr_scale == (0.1 if PRESETS[name]().backbone.pretrained else 1.0)


def test_a_lighter_simulated_lidar_branch_trains_and_loads(world: Path, tmp_path: Path):
    from simdistill_ros.models import load_checkpoint
    from simdistill_ros.models.config import light_sim_branch

    run("train", "student", "--data", str(world), "--out", str(tmp_path), "--disable", "distill",
        "--sim-channels", "8", "--sim-depthnet-channels", "32", "--sim-gcm-stride", "2",
        "--max-steps", "1", "--batch-size", "2")  # fmt: skip
    net, cfg, _ = load_checkpoint(tmp_path / "last")
    assert cfg == light_sim_branch(cfg)  # the flags of arm student_light build the bench's light branch
    assert cfg.sim_context_channels == cfg.sim_bev_channels == 8
    assert cfg.sim_depthnet_channels == 32 and cfg.gcm.bev_stride == 2
    assert net.sim_lidar.bev_gcm.attn.embed_dim == 8 and net.sim_lidar.bev_gcm.stride == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["baseline", "--sim-channels", "16"], "student only"),
        (["baseline", "--sim-gcm-stride", "2"], "student only"),
        (["student", "--sim-channels", "6"], "multiple of 4 and of the BEV GCM's 4 heads"),
        (["student", "--sim-channels", "0"], "positive multiple"),
        (["student", "--sim-depthnet-channels", "0"], "must be positive"),
        (["student", "--sim-gcm-stride", "3"], "divide the 50x50 BEV grid"),
    ],
)
def test_sim_channels_is_refused_where_it_cannot_apply(argv: list[str], message: str):
    from simdistill_ros.cli import build_parser
    from simdistill_ros.errors import UserError
    from simdistill_ros.training.command import build_config

    args = build_parser().parse_args(["train", *argv, "--out", "unused"])
    with pytest.raises(UserError, match=message):
        build_config(args)


def test_baseline_with_depth_supervision_keeps_snapshots_and_logs_the_term(world: Path, tmp_path: Path):
    """The camera-only baseline learns depth from the LiDAR (loaded for it alone), and --snapshot-steps
    keeps the weights part way for scoring the run's convergence; photometric augmentation rides along."""
    run(
        "train", "baseline", "--data", str(world), "--out", str(tmp_path), "--max-steps", "2",
        "--batch-size", "2", "--depth-weight", "3", "--snapshot-steps", "1",
        "--image-noise", "4", "--color-jitter", "0.1",
    )  # fmt: skip
    assert "--image-noise 4" in json.loads((tmp_path / "last" / "meta.json").read_text())["command"]
    header = (tmp_path / "log.csv").read_text().splitlines()[0].split(",")
    assert "depth" in header and "gt_heatmap" in header
    snap = json.loads((tmp_path / "step_1" / "meta.json").read_text())
    assert snap["step"] == 1 and snap["snapshot"] is True
    assert json.loads((tmp_path / "last" / "meta.json").read_text())["step"] == 2
    assert json.loads((tmp_path / "last" / "config.json").read_text())["loss"]["depth"] == 3.0


def test_photometric_augmentation_is_refused_for_a_target_store():
    import argparse

    from simdistill_ros.errors import UserError
    from simdistill_ros.training.command import run_train_command

    args = argparse.Namespace(targets="any_store", model="student", image_noise=4.0, color_jitter=0.0)
    with pytest.raises(UserError, match="trains unaugmented"):
        run_train_command(args)
