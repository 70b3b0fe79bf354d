"""Teacher replay into a target store: contents, resume, refusal of other teachers/schemas, integrity,
crash safety under SIGKILL, sharding and merging, skipped frames and bags without LiDAR."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from cli_runner import EXE
from replay_helpers import FRAMES_PER_SCENE, bags, env, replay_world, run

from simdistill_ros.frames.assembly import FrameReader
from simdistill_ros.targets.store import (
    SCHEMA_VERSION,
    FrameTargets,
    StoreError,
    TargetStore,
    TargetStoreWriter,
    merge_stores,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return replay_world(tmp_path_factory)


def test_store_holds_every_frame_with_teacher_targets_inputs_and_ground_truth(root: Path):
    store = TargetStore(root / "store", verify="full")
    assert len(store) == 2 * FRAMES_PER_SCENE and store.duplicates == 0
    header = json.loads((root / "store" / "store.json").read_text())
    assert header["schema_version"] == SCHEMA_VERSION and len(header["teacher"]["hash"]) == 64
    assert header["teacher"]["config"]["grid"]["downsample"] == 2
    f = store[0]
    assert f.features["camera_bev"].dtype == np.float16 and f.features["fused_bev"].shape == (64, 50, 50)
    assert f.features["lidar_bev"].shape == (32, 50, 50) and f.head["heatmap"].shape == (10, 50, 50)
    assert f.det_boxes.shape[1] == 9 and len(f.det_boxes) == len(f.det_scores) == len(f.det_labels)
    assert f.intrinsics.shape == (6, 3, 3) and f.cam_to_base.shape == (6, 4, 4) and f.encoded
    # the mcap scene has its tables in --data, the sqlite3 scene has none: GT where the source has it
    has_gt: dict[str, list[bool]] = {}
    for i in range(len(store)):
        fr = store[i]
        has_gt.setdefault(fr.bag, []).append(fr.has_gt)
        assert fr.key == f"{fr.bag}/{fr.stamp_ns}"
    assert has_gt == {
        "scene-0021-0000": [True] * FRAMES_PER_SCENE,
        "scene-0022-0000": [False] * FRAMES_PER_SCENE,
    }
    gt_frame = next(store[i] for i in range(len(store)) if store[i].has_gt)
    assert gt_frame.sample_token and len(gt_frame.gt_boxes) == len(gt_frame.gt_labels) > 0
    # stored jpeg bytes decode to exactly what the bag reader gives (the recorded bytes, not a re-encode)
    from simdistill_ros.frames.images import decode_compressed

    bag = next(b for b in bags(root) if Path(b).name == f.bag)
    first = next(iter(FrameReader(bag, require_lidar=True)))
    assert first.stamp_ns == f.stamp_ns
    np.testing.assert_array_equal(decode_compressed(f.image_format, f.images[0]), first.images[f.cameras[0]])


def test_rerun_skips_stored_frames_and_other_teacher_or_schema_is_refused(root: Path, tmp_path: Path):
    proc = run(
        "replay", "--teacher", str(root / "teacher"), "--bags", *bags(root), "--out", str(root / "store")
    )
    assert "0 frames stored" in proc.stdout and f"{2 * FRAMES_PER_SCENE} already in the store" in proc.stdout
    proc = run(
        "replay",
        "--teacher",
        str(root / "teacher_b"),
        "--bags",
        *bags(root),
        "--out",
        str(root / "store"),
        check=False,
    )
    assert proc.returncode == 2 and "another teacher" in proc.stderr, proc.stderr
    copy = tmp_path / "store"
    shutil.copytree(root / "store", copy)
    header = json.loads((copy / "store.json").read_text())
    header["schema_version"] = SCHEMA_VERSION + 1
    (copy / "store.json").write_text(json.dumps(header))
    with pytest.raises(StoreError, match="schema version"):
        TargetStore(copy)


def test_corrupt_or_truncated_shard_is_detected(root: Path, tmp_path: Path):
    copy = tmp_path / "store"
    shutil.copytree(root / "store", copy)
    shard = sorted((copy / "shards").iterdir())[0]
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF  # flip a byte inside the tensor data: same size, different hash
    shard.write_bytes(bytes(data))
    store = TargetStore(copy)  # sizes match: opening works, the first read of that shard does not
    with pytest.raises(StoreError, match="sha256"):
        for i in range(len(store)):
            store[i]
    shard.write_bytes(bytes(data[:-10]))
    with pytest.raises(StoreError, match="truncated"):
        TargetStore(copy)


def test_a_rerun_rechecks_the_shards_it_would_skip_and_replays_a_damaged_one(root: Path, tmp_path: Path):
    copy = tmp_path / "store"
    shutil.copytree(root / "store", copy)
    shard = sorted((copy / "shards").iterdir())[0]
    n_frames = len(TargetStore(copy).shards[shard.name]["frames"])
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF  # same size, different hash: only the sha256 tells
    shard.write_bytes(bytes(data))
    proc = run("replay", "--teacher", str(root / "teacher"), "--bags", *bags(root), "--out", str(copy))
    assert f"shards/{shard.name} was damaged (sha256): dropped, its {n_frames} frames are replayed again" in (
        proc.stdout
    )
    assert f"{n_frames} frames stored" in proc.stdout
    store = TargetStore(copy, verify="full")
    assert store.keys == TargetStore(root / "store").keys and store.duplicates == 0


def test_another_writers_damaged_shard_names_the_frames_to_redo(root: Path, tmp_path: Path):
    copy = tmp_path / "store"
    shutil.copytree(root / "store", copy)
    shard = sorted((copy / "shards").iterdir())[0]
    shard.write_bytes(shard.read_bytes()[:-1] + b"?")
    header = json.loads((copy / "store.json").read_text())
    with pytest.raises(
        StoreError, match=r"sha256 differs .*frames of writer 'shard-0-of-1' \(e\.g\. .*re-run"
    ):
        TargetStoreWriter(copy, header["teacher"], writer_id="shard-1-of-2")


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"shards": [{"file": "x"}]}'])
def test_a_corrupt_index_is_a_one_line_error_saying_what_to_do(root: Path, tmp_path: Path, content: str):
    copy = tmp_path / "store"
    shutil.copytree(root / "store", copy)
    (copy / "index" / "shard-0-of-1.json").write_text(content)
    proc = run(
        "replay", "--teacher", str(root / "teacher"), "--bags", *bags(root), "--out", str(copy), check=False
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unreadable index" in lines[0] and "re-run that writer" in lines[0], lines


def test_sigkill_mid_run_then_rerun_gives_a_complete_store_with_each_frame_once(root: Path, tmp_path: Path):
    out = tmp_path / "store"
    cmd = [*EXE, "replay", "--teacher", str(root / "teacher"), "--bags", *bags(root)]
    cmd += ["--out", str(out), "--frames-per-shard", "1"]
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    index = out / "index" / "shard-0-of-1.json"
    deadline = time.monotonic() + 120
    try:  # kill as soon as some (not all) frames are stored: mid-run, possibly mid-shard-write
        while time.monotonic() < deadline and proc.poll() is None:
            if index.exists() and len(json.loads(index.read_text())["shards"]) >= 1:
                break
            time.sleep(0.02)
        # a fast machine may finish first: then the rerun below must still find every frame stored once
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    stored_before = len(TargetStore(out, verify="full"))
    assert 1 <= stored_before <= 2 * FRAMES_PER_SCENE
    rerun = run("replay", "--teacher", str(root / "teacher"), "--bags", *bags(root), "--out", str(out))
    assert f"{stored_before} already in the store" in rerun.stdout
    store = TargetStore(out, verify="full")
    reference = TargetStore(root / "store")
    assert store.keys == reference.keys and store.duplicates == 0
    names = [s["file"] for s in json.loads(index.read_text())["shards"]]
    assert sorted(p.name for p in (out / "shards").iterdir()) == sorted(names)  # no orphans, no temp files
    a, b = store[len(store) - 1], reference[len(reference) - 1]
    np.testing.assert_array_equal(a.features["fused_bev"], b.features["fused_bev"])  # deterministic


def test_a_shard_without_index_entry_is_never_read_and_is_cleaned_up(root: Path, tmp_path: Path):
    copy = tmp_path / "store"
    shutil.copytree(root / "store", copy)
    orphan = copy / "shards" / "shard-0-of-1-999999.safetensors"
    orphan.write_bytes(b"partial")  # what a kill between the shard rename and the index update leaves
    assert len(TargetStore(copy)) == 2 * FRAMES_PER_SCENE
    header = json.loads((copy / "store.json").read_text())
    TargetStoreWriter(copy, header["teacher"]).close()  # the writer's next run removes it
    assert not orphan.exists()


def test_shards_write_into_one_store_and_stores_merge(root: Path, tmp_path: Path):
    one = tmp_path / "one"
    run(
        "replay",
        "--teacher",
        str(root / "teacher"),
        "--bags",
        *bags(root),
        "--out",
        str(one),
        "--shard",
        "0/2",
    )
    # torchrun-style: RANK/WORLD_SIZE pick the shard when --shard is not given
    run(
        "replay",
        "--teacher",
        str(root / "teacher"),
        "--bags",
        *bags(root),
        "--out",
        str(one),
        extra_env={"RANK": "1", "WORLD_SIZE": "2"},
    )
    assert sorted(p.name for p in (one / "index").glob("*.json")) == [
        "shard-0-of-2.json",
        "shard-1-of-2.json",
    ]
    reference = TargetStore(root / "store")
    assert TargetStore(one, verify="full").keys == reference.keys
    merged = tmp_path / "merged"
    proc = run("replay", "--out", str(merged), "--merge", str(one), str(root / "store"))
    assert "6 frames in all" in proc.stdout
    store = TargetStore(merged, verify="full")
    assert store.keys == reference.keys and store.duplicates == 0
    assert merge_stores(merged, [one])["frames_added"] == 0  # merging again is a no-op


def _filtered_copy(src: Path, dst: Path, drop) -> None:
    """Copy a bag message by message, leaving out those ``drop(topic, stamp_ns)`` selects."""
    from rosbags.rosbag2 import Reader, StoragePlugin, Writer

    from simdistill_ros.frames.messages import typestore

    with Reader(src) as reader, Writer(dst, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {}
        for c in reader.connections:
            conns[c.id] = writer.add_connection(
                c.topic, c.msgtype, typestore=typestore(), offered_qos_profiles=c.ext.offered_qos_profiles
            )
        for c, t, raw in reader.messages():
            if not drop(c.topic, t):
                writer.write(conns[c.id], t, raw)


def test_frames_that_cannot_be_assembled_are_skipped_and_counted(root: Path, tmp_path: Path):
    src = next(Path(b) for b in bags(root) if "0021" in b)
    start = min(f.stamp_ns for f in FrameReader(src))
    bag = tmp_path / "holes"
    # no CAM_BACK image in the first cycle; LiDAR stops after 100 ms (the third frame, at 167 ms, has none)
    _filtered_copy(
        src,
        bag,
        lambda topic, t: (
            (topic.startswith("/CAM_BACK/image") and t < start + 30_000_000)
            or (topic == "/LIDAR_TOP" and t > start + 110_000_000)
        ),
    )
    proc = run("replay", "--teacher", str(root / "teacher"), "--bags", str(bag), "--out", str(tmp_path / "s"))
    assert "1 frames stored" in proc.stdout and "2 could not be assembled" in proc.stdout, proc.stdout
    assert "camera missing" in proc.stdout and "no LiDAR sweep in window" in proc.stdout


def test_bag_without_lidar_is_a_clear_error_naming_its_topics(root: Path, tmp_path: Path):
    from simdistill_ros.synth.export import synthesize

    synthesize(tmp_path / "w", 1, 1, seed=5, image_size=(64, 112), with_lidar=False, progress=False)
    bag = next((tmp_path / "w" / "bags").iterdir())
    proc = run(
        "replay",
        "--teacher",
        str(root / "teacher"),
        "--bags",
        str(bag),
        "--out",
        str(tmp_path / "s"),
        check=False,
    )
    assert proc.returncode == 2 and "/LIDAR_TOP" in proc.stderr and "/CAM_FRONT/camera_info" in proc.stderr


def _fake_frame(i: int) -> FrameTargets:
    rng = np.random.default_rng(i)
    return FrameTargets(
        key=f"bag/{i}",
        bag="bag",
        stamp_ns=i,
        index=i,
        cameras=["CAM_FRONT"],
        images=[b"\xff\xd8fake"],
        image_format="jpeg",
        image_stamps_ns=np.array([i]),
        intrinsics=np.eye(3)[None],
        cam_to_base=np.eye(4)[None],
        features={k: rng.standard_normal((2, 4, 4)) for k in ("camera_bev", "lidar_bev", "fused_bev")},
        head={"heatmap": rng.standard_normal((1, 4, 4))},
        det_boxes=np.zeros((0, 9)),
        det_scores=np.zeros(0),
        det_labels=np.zeros(0, np.int64),
    )


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4, 5, 6])
def test_a_crash_at_any_step_of_a_shard_write_leaves_a_valid_store(tmp_path: Path, monkeypatch, fail_at: int):
    """Fail the k-th file operation of the second shard's write (fsync, renames): the store keeps the first
    shard only, and the next run completes it with each frame once."""
    import os as os_module

    import simdistill_ros.targets.store as ts

    teacher = {"hash": "0" * 64, "path": "", "config": {}, "meta": {}}
    writer = TargetStoreWriter(tmp_path, teacher, frames_per_shard=1)
    writer.add(_fake_frame(0))
    calls = {"n": 0}
    real_replace, real_fsync = os_module.replace, os_module.fsync

    def failing(real):
        def op(*args):
            calls["n"] += 1
            if calls["n"] == fail_at:
                raise KeyboardInterrupt("killed")
            return real(*args)

        return op

    monkeypatch.setattr(ts.os, "replace", failing(real_replace))
    monkeypatch.setattr(ts.os, "fsync", failing(real_fsync))
    with pytest.raises(KeyboardInterrupt):
        writer.add(_fake_frame(1))
    monkeypatch.undo()
    writer._lock.close()  # the killed process's lock goes with it
    assert TargetStore(tmp_path, verify="full").keys in (["bag/0"], ["bag/0", "bag/1"])
    rerun = TargetStoreWriter(tmp_path, teacher, frames_per_shard=1)
    for i in range(3):
        if not rerun.has(f"bag/{i}"):
            rerun.add(_fake_frame(i))
    rerun.close()
    store = TargetStore(tmp_path, verify="full")
    assert store.keys == ["bag/0", "bag/1", "bag/2"] and store.duplicates == 0
    np.testing.assert_allclose(
        store[1].features["fused_bev"], _fake_frame(1).features["fused_bev"], atol=1e-2
    )
    assert not [p for p in (tmp_path / "shards").iterdir() if p.name.startswith(".")]


def _copy_lacking_inputs(src: Path, dst: Path) -> None:
    """``src`` with every LiDAR cloud lacking its intensity field (its bytes stay, as padding) and the
    CAM_FRONT CameraInfo naming a distortion with non-zero coefficients."""
    import dataclasses

    from simdistill_ros.frames.bag_reader import BagReader
    from simdistill_ros.frames.bag_writer import SensorBagWriter

    with BagReader(src) as reader, SensorBagWriter(dst) as out:
        for topic, stamp, msg in reader.messages():
            if topic == "/LIDAR_TOP":
                msg = dataclasses.replace(msg, fields=[f for f in msg.fields if f.name != "intensity"])
            elif topic == "/CAM_FRONT/camera_info":
                msg = dataclasses.replace(
                    msg, distortion_model="plumb_bob", d=np.array([-0.3, 0.1, 0, 0, 0.0])
                )
            out.write(topic, reader.topics[topic], msg, stamp)


def test_inputs_a_message_lacks_are_warned_once_and_recorded_in_the_store(root: Path, tmp_path: Path):
    src = next(Path(b) for b in bags(root) if "0021" in b)
    bag = tmp_path / "lacking"
    _copy_lacking_inputs(src, bag)
    store = tmp_path / "s"
    # its images declared raw: a distorting camera's raw images are used as if rectified (rectified ones
    # come with their raw camera's D and are used with P: nothing to warn of)
    proc = run(
        "replay", "--teacher", str(root / "teacher"), "--bags", str(bag), "--out", str(store),
        "--image-rectification", "raw",
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    (line,) = [ln for ln in out.splitlines() if "/LIDAR_TOP:" in ln]  # once for the bag, not once per frame
    assert line.startswith(f"{bag}: /LIDAR_TOP: ")
    assert "PointCloud2 (x, y, z) has no intensity field" in line and "intensity 0 assumed" in line
    (cam,) = [ln for ln in out.splitlines() if "/CAM_FRONT/camera_info:" in ln]
    assert "distortion model 'plumb_bob'" in cam and "used as if rectified" in cam
    assert f"{FRAMES_PER_SCENE} frames stored" in out
    frames = TargetStore(store)
    assert len(frames) == FRAMES_PER_SCENE
    for i in range(len(frames)):
        assumed = frames[i].assumed
        assert sorted(assumed) == ["/CAM_FRONT/camera_info", "/LIDAR_TOP"]
        assert "intensity 0 assumed" in assumed["/LIDAR_TOP"]
    assert frames.summary()["frames_with_assumptions"] == FRAMES_PER_SCENE
    # the original bag's frames assume nothing, and their index records say nothing of it
    index = json.loads(next((root / "store" / "index").glob("*.json")).read_text())
    assert all("assumed" not in f for s in index["shards"] for f in s["frames"])
