"""The `simdistill` command as a user runs it: real subprocesses, real bags, the official devkit."""

import json
from pathlib import Path

import pytest
from cli_runner import run_cli as run


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    run(
        "synth",
        "--out",
        str(out),
        "--scenes",
        "2",
        "--frames-per-scene",
        "2",
        "--seed",
        "3",
        "--image-size",
        "64x112",
        "--workers",
        "2",
    )
    return out


def test_synth_writes_bags_tables_and_summary(world: Path):
    summary = json.loads((world / "synth.json").read_text())
    assert summary["frames"] == 4 and summary["split"] == {
        "train": ["scene-0003-0000"],
        "val": ["scene-0003-0001"],
    }
    for name in ("scene-0003-0000", "scene-0003-0001"):
        assert (world / "bags" / name / "metadata.yaml").exists()
        assert list((world / "bags" / name).glob("*.mcap"))
    assert len(list((world / "v1.0-synth").glob("*.json"))) >= 13


def test_devkit_loads_the_dataset(world: Path):
    from nuscenes.nuscenes import NuScenes

    nusc = NuScenes(version="v1.0-synth", dataroot=str(world), verbose=False)
    assert len(nusc.scene) == 2 and len(nusc.sample) == 4
    ann = nusc.sample_annotation[0]
    assert len(ann["size"]) == 3
    # true counts from the ray-cast sweep (the devkit drops boxes with none): integers, some boxes hit
    counts = [a["num_lidar_pts"] for a in nusc.sample_annotation]
    assert all(isinstance(c, int) and c >= 0 for c in counts) and max(counts) > 0


def test_gt_as_results_scores_map_one(world: Path):
    proc = run("evaluate", "--data", str(world), "--split", "val", "--gt-as-results")
    lines = {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines() if line.strip()}
    assert float(lines["mAP"]) == pytest.approx(1.0)
    assert float(lines["NDS"]) == pytest.approx(1.0, abs=1e-3)


def test_sqlite3_storage_and_raw_images(tmp_path: Path):
    run(
        "synth",
        "--out",
        str(tmp_path),
        "--scenes",
        "1",
        "--frames-per-scene",
        "1",
        "--seed",
        "5",
        "--image-size",
        "48x80",
        "--storage",
        "sqlite3",
        "--raw-images",
    )
    bag = tmp_path / "bags" / "scene-0005-0000"
    assert list(bag.glob("*.db3"))
    from rosbags.highlevel import AnyReader

    with AnyReader([bag]) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
    assert types["/CAM_FRONT/image_rect"] == "sensor_msgs/msg/Image"
    assert types["/LIDAR_TOP"] == "sensor_msgs/msg/PointCloud2"


def test_clear_errors_for_bad_input(world: Path, tmp_path: Path):
    again = run("synth", "--out", str(world), "--scenes", "1", check=False)
    assert (
        again.returncode == 2
        and "already holds a dataset" in again.stderr
        and "Traceback" not in again.stderr
    )
    size = run("synth", "--out", str(tmp_path / "x"), "--render-size", "big", check=False)
    assert size.returncode == 2 and "--render-size" in size.stderr
    # a bad option is refused before --overwrite deletes anything
    workers = run("synth", "--out", str(world), "--overwrite", "--workers", "0", check=False)
    assert workers.returncode == 2 and "--workers must be at least 1" in workers.stderr
    assert (world / "v1.0-synth" / "splits.json").is_file() and any((world / "bags").iterdir())
    missing = run("evaluate", "--data", str(tmp_path / "nothing"), "--gt-as-results", check=False)
    assert missing.returncode == 2 and "v1.0-synth" in missing.stderr
