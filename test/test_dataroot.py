"""The synthetic world as a nuScenes dataroot, read back through the devkit: files, frames against the
bags, evaluation and training from the dataroot, and bad datasets.

There is no nuScenes dataroot here (it cannot be downloaded on this machine): every dataroot below is
written by ``simdistill synth``. The official-split test renames a copy to v1.0-mini with mini scene
names; it checks the split resolution, it is not real data.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_cli
from timeouts import time_limit

from simdistill_ros.cli import main as simdistill
from simdistill_ros.dataset.dataroot import DatarootFrames, DatasetError
from simdistill_ros.dataset.split_frames import open_split_frames
from simdistill_ros.synth.export import synthesize

REPO = Path(__file__).resolve().parents[1]
VERSION = "v1.0-synth"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """Two scenes of three frames (one train, one val) at the shipped tiny models' 160x400, with bags."""
    out = tmp_path_factory.mktemp("dataroot_world")
    with time_limit(180, "synthesizing the dataroot world"):
        synthesize(out, 2, 3, 7, image_size=(160, 400), progress=False)
    return out


@pytest.fixture()
def dataroot_copy(world: Path, tmp_path: Path) -> Path:
    """The world's dataroot without its bags (tables, samples, sweeps, map): safe to damage."""
    out = tmp_path / "root"
    for name in (VERSION, "samples", "sweeps", "maps"):
        shutil.copytree(world / name, out / name)
    return out


def _table(root: Path, name: str, version: str = VERSION) -> list[dict]:
    return json.loads((root / version / f"{name}.json").read_text())


def test_synth_writes_a_dataroot_whose_tables_name_its_files(world: Path) -> None:
    records = _table(world, "sample_data")
    lidar = [r for r in records if r["fileformat"] == "pcd"]
    cams = [r for r in records if r["fileformat"] == "jpg"]
    assert len(cams) == 2 * 3 * 6 and sum(r["is_key_frame"] for r in lidar) == 2 * 3
    sweeps = [r for r in lidar if not r["is_key_frame"]]
    assert sweeps and all(r["filename"].startswith("sweeps/LIDAR_TOP/") for r in sweeps)
    for r in records:
        assert (world / r["filename"]).is_file(), r["filename"]
        folder = "samples" if r["is_key_frame"] else "sweeps"
        assert r["filename"].split("/")[0] == folder
    points = np.fromfile(world / lidar[0]["filename"], np.float32).reshape(-1, 5)
    assert len(points) > 1000
    rings = points[:, 4]
    assert np.array_equal(rings, np.round(rings)) and rings.min() == 0 and rings.max() == 31
    assert (world / "bags").is_dir()  # the bags stay


def test_dataroot_frames_match_the_bags(world: Path) -> None:
    bags = open_split_frames(world, "val", VERSION, source="bags")
    root = open_split_frames(world, "val", VERSION, source="samples")
    assert isinstance(root, DatarootFrames) and len(root) == len(bags) == 3
    assert root.camera_names == bags.camera_names
    for i in range(len(bags)):
        a, b = bags[i], root[i]
        assert a.token == b.token
        assert np.array_equal(a.images, b.images)  # the jpg holds the bag's jpeg bytes
        assert np.allclose(a.intrinsics, b.intrinsics)
        assert np.array_equal(a.labels, b.labels) and np.allclose(a.boxes, b.boxes, atol=1e-5)
        assert a.points.shape == b.points.shape and np.array_equal(a.points[:, 3], b.points[:, 3])
        # The first camera fires at the sample time: no ego motion, the bag's static extrinsics. Each later
        # camera fires 8 ms after the previous one and is placed where the car was then: ahead of the bag's.
        assert np.allclose(a.cam_to_base[0], b.cam_to_base[0], atol=1e-4)
        shift = [b.cam_to_base[c, 0, 3] - a.cam_to_base[c, 0, 3] for c in range(6)]
        assert all(np.diff(shift) > 0), shift


def _median_gap(points: np.ndarray, reference: np.ndarray) -> float:
    """Median distance from each point to the nearest reference point."""
    from scipy.spatial import cKDTree

    return float(np.median(cKDTree(reference).query(points)[0]))


def test_earlier_sweeps_are_motion_compensated_with_a_time_lag(world: Path) -> None:
    from simdistill_ros.dataset.nuscenes_tables import load_split_samples
    from simdistill_ros.geometry import points_in_boxes

    frames = DatarootFrames(world, VERSION, "val", lidar_sweeps=3)
    frame, sample = frames[2], frames.samples[2]  # the third sample has two earlier sweeps
    lag = frame.points[:, 4]
    assert sorted(np.unique(lag).round(3)) == [0.0, 0.05, 0.1]
    # Parked cars do not move: the sweep of 100 ms earlier, placed with its own ego pose, puts as many points
    # in their boxes (at the sample time) as the key frame does; left where the sensor saw it (the key
    # frame's placement), a fifth of them fall outside, so the check sees the ego motion.
    labels = load_split_samples(world, "val", VERSION)[2]
    parked = [b for b, a in zip(labels.boxes, labels.attributes) if a == "vehicle.parked"]
    assert len(parked) >= 3
    key, old = frame.points[lag == 0, :3], frame.points[lag > 0.09, :3]
    sensor = (old - sample.sweeps[2].to_base[:3, 3]) @ sample.sweeps[2].to_base[:3, :3]
    uncompensated = sensor @ sample.sweeps[0].to_base[:3, :3].T + sample.sweeps[0].to_base[:3, 3]
    n_key, n_old, n_raw = (points_in_boxes(p, parked).sum() for p in (key, old, uncompensated))
    assert 0.9 < n_old / n_key < 1.15 and n_raw / n_key < 0.85, (n_key, n_old, n_raw)
    one = DatarootFrames(world, VERSION, "val")[2]
    assert one.points.shape[1] == 4 and np.array_equal(one.points, frame.points[lag == 0, :4])


def test_evaluate_from_the_dataroot_scores_as_from_the_bags(world: Path) -> None:
    from simdistill_ros.evaluation.nuscenes_eval import evaluate
    from simdistill_ros.evaluation.predict import predict_split_results

    scores = {}
    for source in ("bags", "samples"):
        results = predict_split_results(
            REPO / "models" / "student_tiny", world, "val", VERSION, device="cpu", frames_from=source
        )
        report = evaluate(world, "val", results, VERSION)
        scores[source] = (100 * report.mean_ap, 100 * report.nd_score)
    print(f"student_tiny on val: bags mAP {scores['bags'][0]:.2f} NDS {scores['bags'][1]:.2f}; "
          f"dataroot mAP {scores['samples'][0]:.2f} NDS {scores['samples'][1]:.2f}")  # fmt: skip
    assert scores["bags"][0] > 1.0  # the model detects here, so the comparison says something
    assert abs(scores["bags"][0] - scores["samples"][0]) <= 1.0
    assert abs(scores["bags"][1] - scores["samples"][1]) <= 1.0


@pytest.mark.parametrize(
    "model,extra",
    [
        ("teacher", ["--lidar-sweeps", "2"]),
        ("baseline", []),
        ("student", ["--teacher", str(REPO / "models" / "teacher_tiny")]),
    ],
)
def test_train_from_the_dataroot(world: Path, tmp_path: Path, model: str, extra: list[str]) -> None:
    run = tmp_path / "run"
    args = ["train", model, "--data", str(world), "--version", VERSION, "--frames-from", "samples"]
    args += [
        "--config",
        "tiny",
        "--max-steps",
        "2",
        "--batch-size",
        "1",
        "--device",
        "cpu",
        "--out",
        str(run),
    ]
    assert simdistill(args + extra) == 0
    meta = json.loads((run / "last" / "meta.json").read_text())
    assert meta["frames_from"] == "samples" and meta["train_frames"] == 3 and meta["data_version"] == VERSION
    if model == "teacher":
        assert json.loads((run / "last" / "config.json").read_text())["pillars"]["lidar_sweeps"] == 2


def _first(root: Path, prefix: str) -> dict:
    return next(
        r for r in _table(root, "sample_data") if r["filename"].startswith(prefix) and r["is_key_frame"]
    )


def test_bad_datasets_get_one_line_naming_the_file(dataroot_copy: Path) -> None:
    root = dataroot_copy
    image = root / _first(root, "samples/CAM_BACK/")["filename"]
    os.unlink(image)
    with pytest.raises(DatasetError, match=f"names {image.relative_to(root)}, which does not exist"):
        DatarootFrames(root, VERSION, "train")
    assert len(DatarootFrames(root, VERSION, "val")) == 3  # only the split being read is checked
    shutil.copy(next(image.parent.iterdir()), image)

    pcd = root / _first(root, "samples/LIDAR_TOP/")["filename"]
    pcd.write_bytes(pcd.read_bytes()[:-6])
    with pytest.raises(DatasetError, match=f"{pcd} is truncated"):
        DatarootFrames(root, VERSION, "train")
    camera_only = DatarootFrames(root, VERSION, "train", with_points=False)  # a camera model reads no LiDAR
    assert len(camera_only) == 3

    records = _table(root, "sample_data")
    front = next(r for r in records if r["filename"].startswith("samples/CAM_FRONT/"))
    front["filename"] = "samples/CAM_FRONT/absent.jpg"
    (root / VERSION / "sample_data.json").write_text(json.dumps(records))
    with pytest.raises(DatasetError, match=r"sample_data.json names samples/CAM_FRONT/absent.jpg"):
        DatarootFrames(root, VERSION, "train", with_points=False)

    with pytest.raises(DatasetError, match=r"unknown version 'v1.0-trainval'.*the dataroot has v1.0-synth"):
        DatarootFrames(root, "v1.0-trainval", "train")
    with pytest.raises(DatasetError, match=r"split 'nope' is neither one of nuScenes' splits nor in"):
        DatarootFrames(root, VERSION, "nope")


def test_a_corrupt_image_is_named_when_read(dataroot_copy: Path) -> None:
    root = dataroot_copy
    frames = DatarootFrames(root, VERSION, "val", with_points=False)
    image = root / frames.samples[1].images[2]
    image.write_bytes(image.read_bytes()[:200])
    frames[0]  # other frames still read
    with pytest.raises(DatasetError, match=f"{image}"):
        frames[1]


def test_a_bad_dataset_stops_training_before_anything_is_written(dataroot_copy: Path, tmp_path: Path) -> None:
    pcd = dataroot_copy / _first(dataroot_copy, "samples/LIDAR_TOP/")["filename"]
    pcd.write_bytes(pcd.read_bytes()[:-6])
    run = tmp_path / "run"
    proc = run_cli(
        "train", "teacher", "--data", str(dataroot_copy), "--max-steps", "2", "--out", str(run), check=False
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "is truncated" in last and pcd.name in last
    assert not run.exists()


def test_official_splits_resolve_on_the_version_scenes(dataroot_copy: Path) -> None:
    """A copy renamed to v1.0-mini with two of nuScenes' mini scene names and no splits.json: mini_val is
    the official split restricted to the version's scenes, read and scored through the devkit."""
    from nuscenes.utils.splits import mini_train, mini_val

    from simdistill_ros.evaluation.nuscenes_eval import evaluate, gt_as_results

    root = dataroot_copy
    os.rename(root / VERSION, root / "v1.0-mini")
    os.unlink(root / "v1.0-mini" / "splits.json")
    scenes = _table(root, "scene", "v1.0-mini")
    for record, name in zip(scenes, (mini_train[0], mini_val[0])):
        record["name"] = name
    (root / "v1.0-mini" / "scene.json").write_text(json.dumps(scenes))
    frames = DatarootFrames(root, "v1.0-mini", "mini_val", with_points=False)
    assert len(frames) == 3
    report = evaluate(root, "mini_val", gt_as_results(root, "mini_val", "v1.0-mini"), "v1.0-mini")
    assert report.mean_ap == pytest.approx(1.0)


def test_nuscenes_to_bag_gives_the_frames_of_the_original_bags(world: Path, dataroot_copy: Path) -> None:
    out = dataroot_copy / "bags"
    assert (
        simdistill(["nuscenes-to-bag", "--data", str(dataroot_copy), "--version", VERSION, "--out", str(out)])
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (world / "bags").iterdir())
    original = open_split_frames(world, "val", VERSION, source="bags")
    converted = open_split_frames(dataroot_copy, "val", VERSION, source="bags")
    assert len(converted) == len(original) == 3
    for a, b in zip(original, converted):
        assert a.token == b.token  # (the key differs below 1 us: the tables hold microseconds)
        assert np.array_equal(a.images, b.images)
        assert np.allclose(a.cam_to_base, b.cam_to_base, atol=1e-5) and np.allclose(
            a.intrinsics, b.intrinsics
        )
        assert np.allclose(a.points, b.points, atol=1e-4)
    # Bags that exist are kept; a dataset naming a missing file writes no bag.
    assert (
        simdistill(["nuscenes-to-bag", "--data", str(dataroot_copy), "--version", VERSION, "--out", str(out)])
        == 2
    )
    image = dataroot_copy / _first(dataroot_copy, "samples/CAM_FRONT/")["filename"]
    os.unlink(image)
    fresh = dataroot_copy / "fresh"
    with pytest.raises(DatasetError, match=f"names {image.relative_to(dataroot_copy)}, which does not exist"):
        from simdistill_ros.dataset.to_bag import dataroot_to_bags

        dataroot_to_bags(dataroot_copy, VERSION, fresh)
    assert not fresh.exists()


def test_the_memory_tool_writes_a_dataroot_the_reader_reads(tmp_path: Path) -> None:
    from tool_modules import load_tool

    tool = load_tool("dataroot_memory")
    tool.write_load_dataroot(tmp_path, 3, (90, 160))
    frames = DatarootFrames(tmp_path, VERSION, "train", lidar_sweeps=2)
    frame = frames[2]
    assert len(frames) == 3 and frame.images.shape == (6, 90, 160, 3) and len(frame.boxes) == 5
    assert sorted(np.unique(frame.points[:, 4]).round(3)) == [0.0, 0.05]
