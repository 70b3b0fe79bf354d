"""The student from a target store: the distillation losses from stored targets equal those of the online
teacher on the same frames (fp16 tolerance), and `simdistill train student --targets` trains from a store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from replay_helpers import replay_world, run

TERMS = ("gt_heatmap", "gt_bbox", "imd", "cmd", "mmd_feat", "mmd_pred_heatmap", "mmd_pred_box", "loss")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return replay_world(tmp_path_factory)


def test_losses_from_the_store_equal_the_online_teachers(root: Path):
    from simdistill_ros.dataset.frame_cache import load_split_frames
    from simdistill_ros.models import CameraInputs, StudentModel, load_checkpoint, tiny
    from simdistill_ros.targets.store import TargetStore
    from simdistill_ros.training.batch import collate
    from simdistill_ros.training.dataset import FrameDataset
    from simdistill_ros.training.distillation import pseudo_label_targets, simdistill_loss
    from simdistill_ros.training.objectives import OnlineDistillationObjective
    from simdistill_ros.training.store_dataset import (
        StoreDataset,
        StoredDistillationObjective,
        collate_stored,
    )

    cfg = tiny()
    teacher, _, _ = load_checkpoint(root / "teacher")
    torch.manual_seed(3)
    student = StudentModel(cfg).train()
    frames = FrameDataset(load_split_frames(root / "world", "train"), cfg.image_size, augment=False)
    online = collate([frames[0], frames[1]])
    store = TargetStore(root / "store")
    rows = [store.position(k) for k in online.keys]  # the same frames, found by key

    def compare(a: dict, b: dict) -> None:
        assert set(a) == set(b)
        for k in a:
            assert float(b[k]) == pytest.approx(float(a[k]), rel=2e-3, abs=1e-5), k

    # with ground truth (the store holds the same boxes the frame cache has)
    stored = collate_stored([StoreDataset(store, cfg.image_size)[i] for i in rows])
    assert torch.equal(stored.batch.images, online.images) and torch.equal(
        stored.batch.boxes[0], online.boxes[0]
    )
    with torch.no_grad():
        a = OnlineDistillationObjective(cfg, teacher)(student, online)
        b = StoredDistillationObjective(cfg)(student, stored)
    assert set(TERMS) <= set(a)
    compare(a, b)

    # pseudo-labels: the teacher's decoded boxes (a random teacher scores about sigmoid(-2.19) = 0.1)
    threshold = 0.1
    stored = collate_stored([StoreDataset(store, cfg.image_size, True, threshold)[i] for i in rows])
    assert sum(len(b) for b in stored.batch.boxes) > 0
    with torch.no_grad():
        cameras = CameraInputs.from_batch(online)
        teacher_out = teacher.freeze()(cameras, online.points)
        student_out = student(cameras)
        targets = pseudo_label_targets(student.head, teacher_out.head, score_threshold=threshold)
        a = simdistill_loss(student_out, teacher_out, targets, None, cfg.head, cfg.loss)
        b = StoredDistillationObjective(cfg)(student, stored)
    assert float(a["cmd"]) > 0 and float(a["mmd_pred_box"]) > 0
    compare(a, b)


def test_train_student_from_the_store_without_teacher_or_lidar(root: Path, tmp_path: Path):
    proc = run(
        "train",
        "student",
        "--targets",
        str(root / "store"),
        "--out",
        str(tmp_path / "run"),
        "--max-steps",
        "2",
        "--batch-size",
        "2",
        "--epochs",
        "1",
    )
    mixed = "6 frames, 3 with ground truth, the other 3 on teacher pseudo-labels >= 0.3"
    assert mixed in proc.stdout, proc.stdout
    meta = json.loads((tmp_path / "run" / "last" / "meta.json").read_text())
    store_header = json.loads((root / "store" / "store.json").read_text())
    assert meta["model_type"] == "student" and meta["teacher_hash"] == store_header["teacher"]["hash"]
    header = (tmp_path / "run" / "log.csv").read_text().splitlines()[0].split(",")
    assert {"imd", "cmd", "mmd_feat", "mmd_pred_heatmap", "gt_heatmap"} <= set(header)
    proc = run(
        "train",
        "student",
        "--targets",
        str(root / "store"),
        "--out",
        str(tmp_path / "run2"),
        "--max-steps",
        "1",
        "--batch-size",
        "2",
        "--pseudo-labels",
        "--init-from",
        str(root / "teacher"),
    )
    # --pseudo-labels: every frame on the teacher's boxes, and the line says so (no "rest" of none).
    assert "6 frames, all on teacher pseudo-labels >= 0.3" in proc.stdout and "initialised" in proc.stdout
    assert json.loads((tmp_path / "run2" / "last" / "meta.json").read_text())["init_from"]
    bad = run("train", "teacher", "--targets", str(root / "store"), "--out", str(tmp_path / "x"), check=False)
    assert bad.returncode == 2 and "student only" in bad.stderr


def test_the_store_carries_the_lidar_returns_that_give_the_online_depth_targets(root: Path, tmp_path: Path):
    """Depth supervision from a store: its LiDAR returns in view give the very targets the online LiDAR
    gives, a store-trained student logs the depth term, and a store without them is one line."""
    from simdistill_ros.dataset.frame_cache import load_split_frames
    from simdistill_ros.models import tiny
    from simdistill_ros.models.depth_supervision import NO_RETURN, lidar_depth_targets
    from simdistill_ros.targets.store import TargetStore, TargetStoreWriter
    from simdistill_ros.training.batch import collate
    from simdistill_ros.training.dataset import FrameDataset
    from simdistill_ros.training.store_dataset import StoreDataset, collate_stored

    cfg = tiny()
    frames = FrameDataset(load_split_frames(root / "world", "train"), cfg.image_size, augment=False)
    online = collate([frames[0], frames[1]])
    store = TargetStore(root / "store")
    assert store.frames_with_depth_points() == len(store)
    stored = collate_stored(
        [StoreDataset(store, cfg.image_size, with_depth_points=True)[store.position(k)] for k in online.keys]
    )
    for b in range(2):  # only returns some camera sees are kept
        assert 0 < len(stored.batch.points[b]) < len(online.points[b])
    h, w = cfg.image_size
    args = (online.intrinsics, online.cam_to_base, (h, w), (h // 8, w // 8), cfg.grid)
    from_store = lidar_depth_targets(stored.batch.points, *args)
    from_lidar = lidar_depth_targets(online.points, *args)
    assert torch.equal(from_store, from_lidar) and int((from_store != NO_RETURN).sum()) > 100

    proc = run(
        "train", "student", "--targets", str(root / "store"), "--out", str(tmp_path / "run"),
        "--max-steps", "1", "--batch-size", "2", "--depth-weight", "3",
    )  # fmt: skip
    header = (tmp_path / "run" / "log.csv").read_text().splitlines()[0].split(",")
    assert "depth" in header, proc.stdout
    assert json.loads((tmp_path / "run" / "last" / "config.json").read_text())["loss"]["depth"] == 3.0

    # a store replayed before depth targets existed: the same frames without their returns
    old = tmp_path / "old_store"
    with TargetStoreWriter(old, store.teacher) as writer:
        for i in range(len(store)):
            f = store[i]
            f.depth_points = None
            writer.add(f)
    bad = run(
        "train", "student", "--targets", str(old), "--out", str(tmp_path / "x"), "--depth-weight", "3",
        "--max-steps", "1", check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "6 of 6 frames have none" in bad.stderr, bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
