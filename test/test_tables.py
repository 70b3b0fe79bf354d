"""nuScenes table writer: a tiny hand-made dataset loads in the official devkit with consistent links, reads
back exactly with our own loader, and is written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simdistill_ros.dataset import nuscenes_tables
from simdistill_ros.dataset.nuscenes_tables import (
    TABLES,
    NuScenesTableWriter,
    SampleInput,
    SensorCalibration,
    SensorDataInput,
    load_split_samples,
    read_splits,
)
from simdistill_ros.geometry import Box3D, Transform, camera_mount

VERSION = "v1.0-synth"
SAMPLE_DT_US = 500_000
# (instance id, class, map position at t=0, yaw in map, map velocity, size (l, w, h), lidar points)
OBJECTS = {
    "scene-a": [
        ("car1", "car", (12.0, 2.0, 0.8), 0.1, (4.0, 0.5), (4.5, 1.9, 1.6), 120),
        ("car2", "car", (-8.0, -3.0, 0.8), 3.0, (0.0, 0.0), (4.2, 1.8, 1.5), 40),
        ("ped1", "pedestrian", (6.0, 5.0, 0.9), 1.5, (0.0, 1.2), (0.7, 0.6, 1.8), 25),
        ("bar1", "barrier", (10.0, -4.0, 0.5), 0.0, (0.0, 0.0), (0.5, 2.5, 1.0), 15),
    ],
    "scene-b": [
        ("car1", "car", (20.0, -2.0, 0.8), -0.2, (-3.0, 1.0), (4.6, 2.0, 1.7), 80),
        ("cone1", "traffic_cone", (7.0, 3.0, 0.4), 0.0, (0.0, 0.0), (0.4, 0.4, 0.8), 10),
        ("ped1", "pedestrian", (-5.0, 2.0, 0.9), -1.0, (0.8, -0.5), (0.6, 0.6, 1.7), 20),
        ("far", "car", (300.0, 0.0, 0.8), 0.0, (0.0, 0.0), (4.0, 1.8, 1.5), 3),  # beyond the 50 m range
    ],
}
EGO = {"scene-a": ((100.0, 50.0), 0.3, 5.0), "scene-b": ((-40.0, 10.0), -1.2, 2.0)}  # start, yaw, speed
START_US = {"scene-a": 1_600_000_000_000_000, "scene-b": 1_600_000_100_000_000}


def ego_pose(scene: str, t: float) -> Transform:
    (x, y), yaw, speed = EGO[scene]
    return Transform.from_xyz_yaw(x + speed * t * np.cos(yaw), y + speed * t * np.sin(yaw), 0.0, yaw)


def map_box(scene: str, obj: tuple, t: float) -> Box3D:
    """Object ``obj`` in map at time t; map positions are relative to the ego's start pose."""
    iid, label, p0, yaw, v, size, _ = obj
    start = ego_pose(scene, 0.0)
    v_map = start.rotation @ np.array([v[0], v[1], 0.0])
    center = start.apply(np.array([p0]))[0] + v_map * t
    return Box3D(center, size, yaw + start.yaw, label, v_map[:2], 1.0, iid)


def calibration() -> dict:
    k = np.array([[400.0, 0.0, 320.0], [0.0, 400.0, 180.0], [0.0, 0.0, 1.0]])
    return {
        "CAM_FRONT": SensorCalibration(camera_mount(1.7, 0.0, 1.5, 0.0), k, "camera", 640, 360),
        "CAM_BACK": (camera_mount(0.0, 0.0, 1.5, 180.0), k, "camera", 640, 360),
        "LIDAR_TOP": (Transform.from_xyz_yaw(0.94, 0.0, 1.84, 0.0), None, "lidar"),
    }


def make_samples(scene: str, n: int = 3) -> list[SampleInput]:
    samples = []
    for k in range(n):
        ts = START_US[scene] + k * SAMPLE_DT_US
        t = k * SAMPLE_DT_US / 1e6
        pose = ego_pose(scene, t)
        data = [
            SensorDataInput("CAM_FRONT", ts, pose),
            SensorDataInput("CAM_BACK", ts + 8000, ego_pose(scene, t + 0.008)),
            SensorDataInput("LIDAR_TOP", ts + 20000, ego_pose(scene, t + 0.02)),
            SensorDataInput("LIDAR_TOP", ts + 270000, ego_pose(scene, t + 0.27), is_key_frame=False),
        ]
        objs = OBJECTS[scene]
        boxes = [map_box(scene, o, t).transformed(pose.inverse()) for o in objs]
        points = [o[6] for o in objs]
        samples.append(SampleInput(ts, pose, data, boxes, points, visibility=["4", 3, "2", "1"]))
    return samples


def build_dataset(root: Path) -> Path:
    writer = NuScenesTableWriter(root, VERSION)
    for scene in ("scene-a", "scene-b"):
        writer.add_scene(scene, f"log-{scene}", calibration(), make_samples(scene))
    return writer.write({"train": ["scene-a"], "val": ["scene-b"], "all": ["scene-a", "scene-b"]})


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    build_dataset(root)
    return root


def test_writes_all_tables_splits_and_map(dataroot):
    names = sorted(p.name for p in (dataroot / VERSION).iterdir())
    assert names == sorted([f"{t}.json" for t in TABLES] + ["splits.json"])
    splits = read_splits(dataroot, VERSION)
    assert splits["val"] == ["scene-b"] and splits["custom_val"] == ["scene-b"]
    assert splits["all"] == ["scene-a", "scene-b"] and "custom_all" not in splits
    assert (dataroot / "maps" / "synth.png").is_file()
    assert not [p for p in dataroot.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_official_devkit_loads_with_consistent_links(dataroot):
    from nuscenes import NuScenes

    nusc = NuScenes(version=VERSION, dataroot=str(dataroot), verbose=False)
    nusc.list_scenes()
    assert len(nusc.scene) == 2 and len(nusc.sample) == 6 and len(nusc.sample_annotation) == 24
    assert {s["channel"]: s["modality"] for s in nusc.sensor} == {
        "CAM_FRONT": "camera",
        "CAM_BACK": "camera",
        "LIDAR_TOP": "lidar",
    }
    assert [v["token"] for v in nusc.visibility] == ["1", "2", "3", "4"]
    assert {a["name"] for a in nusc.attribute} >= {"vehicle.moving", "vehicle.parked", "pedestrian.moving"}
    for scene in nusc.scene:
        assert scene["nbr_samples"] == 3
        tokens, tok = [], scene["first_sample_token"]
        while tok:
            sample = nusc.get("sample", tok)
            assert sample["scene_token"] == scene["token"]
            assert set(sample["data"]) == {"CAM_FRONT", "CAM_BACK", "LIDAR_TOP"}
            assert len(sample["anns"]) == 4
            for ann in sample["anns"]:
                rec = nusc.get("sample_annotation", ann)
                assert rec["sample_token"] == tok and rec["num_lidar_pts"] > 0
                assert rec["prev"] == "" or nusc.get("sample_annotation", rec["prev"])["next"] == ann
            cam = nusc.get("sample_data", sample["data"]["CAM_FRONT"])
            assert cam["width"] == 640 and cam["height"] == 360 and cam["fileformat"] == "jpg"
            assert cam["filename"].startswith(f"bags/{scene['name']}#CAM_FRONT@")
            cs = nusc.get("calibrated_sensor", cam["calibrated_sensor_token"])
            assert np.allclose(cs["camera_intrinsic"][0], [400.0, 0.0, 320.0]) and len(cs["rotation"]) == 4
            tokens.append(tok)
            tok = sample["next"]
        assert tokens[-1] == scene["last_sample_token"] and len(tokens) == 3
    for inst in nusc.instance:
        assert inst["nbr_annotations"] == 3
        assert nusc.get("sample_annotation", inst["first_annotation_token"])["prev"] == ""
        assert nusc.get("sample_annotation", inst["last_annotation_token"])["next"] == ""
    # LiDAR sample_data chain: key frames and sweeps of a scene in time order.
    lidar = [sd for sd in nusc.sample_data if sd["channel"] == "LIDAR_TOP"]
    assert len(lidar) == 12 and sum(sd["is_key_frame"] for sd in lidar) == 6
    first = [sd for sd in lidar if sd["prev"] == ""]
    assert len(first) == 2
    chain, tok = [], first[0]["token"]
    while tok:
        chain.append(nusc.get("sample_data", tok)["timestamp"])
        tok = nusc.get("sample_data", tok)["next"]
    assert len(chain) == 6 and chain == sorted(chain)
    # Box geometry: the devkit's box (global) equals our box sent to map with the sample's ego pose.
    scene_a = nusc.get("scene", [s["token"] for s in nusc.scene if s["name"] == "scene-a"][0])
    boxes = [nusc.get_box(a) for a in nusc.get("sample", scene_a["first_sample_token"])["anns"]]
    for obj in OBJECTS["scene-a"]:
        ours = map_box("scene-a", obj, 0.0)
        (theirs,) = [b for b in boxes if np.allclose(b.center, ours.center, atol=1e-6)]
        assert np.allclose(theirs.wlh, [ours.size[1], ours.size[0], ours.size[2]])
        assert np.isclose(np.cos(theirs.orientation.yaw_pitch_roll[0] - ours.yaw), 1.0)


def test_loader_round_trips_boxes_in_base_frame(dataroot):
    samples = load_split_samples(dataroot, "train", VERSION)
    assert [s.scene_name for s in samples] == ["scene-a"] * 3
    expected = make_samples("scene-a")
    for s, e in zip(samples, expected):
        assert s.timestamp_us == e.timestamp_us
        assert np.allclose(s.ego_pose.matrix(), e.ego_pose.matrix())
        assert np.allclose(s.lidar_ego_pose.translation, e.sensor_data[2].ego_pose.translation)
        by_label_pos = {(b.label, round(float(b.center[0]), 3)): b for b in s.boxes}
        assert len(s.boxes) == 4
        for b in e.boxes:
            got = by_label_pos[(b.label, round(float(b.center[0]), 3))]
            assert np.allclose(got.center, b.center, atol=1e-6)
            assert np.allclose(got.size, b.size)
            assert np.isclose(np.cos(got.yaw - b.yaw), 1.0)
            # Velocity is estimated from the annotation chain (as the devkit does); exact for constant motion.
            assert np.allclose(got.velocity, b.velocity, atol=1e-6)
    assert sorted(samples[0].attributes) == sorted(
        ["vehicle.parked", "vehicle.parked", "pedestrian.moving", ""]
    )
    assert sorted(samples[0].num_lidar_pts.tolist()) == [15, 25, 40, 120]


def test_rejects_inconsistent_input(tmp_path):
    writer = NuScenesTableWriter(tmp_path)
    bad = make_samples("scene-a")
    bad[1].sensor_data = [d for d in bad[1].sensor_data if d.channel != "LIDAR_TOP"]
    with pytest.raises(ValueError, match="LIDAR_TOP"):
        writer.add_scene("scene-a", "log", calibration(), bad)
    bad = make_samples("scene-a")
    bad[0].num_lidar_pts = [1]
    with pytest.raises(ValueError, match="num_lidar_pts"):
        writer.add_scene("scene-a", "log", calibration(), bad)
    writer.add_scene("scene-a", "log", calibration(), make_samples("scene-a"))
    with pytest.raises(ValueError, match="never added"):
        writer.write({"val": ["scene-x"]})


def test_write_is_atomic(tmp_path, monkeypatch):
    writer = NuScenesTableWriter(tmp_path, VERSION)
    writer.add_scene("scene-a", "log-a", calibration(), make_samples("scene-a"))
    calls = []
    real = nuscenes_tables._write_json

    def failing(path, obj):
        calls.append(path)
        if len(calls) == 6:
            raise OSError("disk full (simulated)")
        real(path, obj)

    monkeypatch.setattr(nuscenes_tables, "_write_json", failing)
    with pytest.raises(OSError, match="simulated"):
        writer.write({"val": ["scene-a"]})
    assert not (tmp_path / VERSION).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    monkeypatch.setattr(nuscenes_tables, "_write_json", real)
    writer.write({"val": ["scene-a"]})
    assert len(json.loads((tmp_path / VERSION / "sample.json").read_text())) == 3
    with pytest.raises(FileExistsError):
        writer.write({"val": ["scene-a"]})
    # Overwrite replaces it whole; a failure during the rewrite leaves the old dataset in place.
    monkeypatch.setattr(nuscenes_tables, "_write_json", failing)
    calls.clear()
    with pytest.raises(OSError):
        writer.write({"train": ["scene-a"]}, overwrite=True)
    assert read_splits(tmp_path, VERSION) == {"val": ["scene-a"], "custom_val": ["scene-a"]}
    monkeypatch.setattr(nuscenes_tables, "_write_json", real)
    writer.write({"train": ["scene-a"]}, overwrite=True)
    assert read_splits(tmp_path, VERSION) == {"train": ["scene-a"], "custom_train": ["scene-a"]}


def test_annotation_pose_kept_when_no_sensor_fires_at_the_sample_time(tmp_path):
    samples = make_samples("scene-a")
    for s in samples:
        for d in s.sensor_data:
            d.timestamp_us += 1000
    writer = NuScenesTableWriter(tmp_path, VERSION)
    writer.add_scene("scene-a", "log-a", calibration(), samples)
    writer.write({"val": ["scene-a"]})
    loaded = load_split_samples(tmp_path, "val", VERSION)
    for s, e in zip(loaded, samples):
        assert np.allclose(s.ego_pose.matrix(), e.ego_pose.matrix())
        assert not np.allclose(s.lidar_ego_pose.translation, e.ego_pose.translation)
        centers = sorted(tuple(np.round(b.center, 6)) for b in s.boxes)
        assert centers == sorted(tuple(np.round(b.center, 6)) for b in e.boxes)
