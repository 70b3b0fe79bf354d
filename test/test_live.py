"""The live pipeline without ROS: the frame queue drops the oldest frame, the worker survives a failing
frame, the statistics feed /diagnostics, and camera sets become CameraFrames. No rclpy here."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from simdistill_ros.detection.core import CameraFrame, FrameInputError
from simdistill_ros.detection.frame_queue import FrameQueue, SyncedFrame, Worker
from simdistill_ros.detection.live import Throttle, debug_picture
from simdistill_ros.detection.live_inputs import CameraSync, camera_frames, decode_image
from simdistill_ros.detection.live_stats import BUSY, ERROR, NO_TF, OK, WARN, PipelineStats
from simdistill_ros.detection.live_tf import StaticTransforms
from simdistill_ros.frames.images import COMPRESSED_FORMAT, encode_jpeg
from simdistill_ros.geometry import Transform

ROOT = Path(__file__).resolve().parents[1]


def test_live_pipeline_imports_no_ros():
    code = (
        "import sys, simdistill_ros.detection.live, simdistill_ros.detection.parameters; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('rclpy', 'vision_msgs', 'std_msgs')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_a_full_queue_drops_its_oldest_frame():
    q = FrameQueue(2)
    assert [q.put(i) for i in range(4)] == [False, False, True, True]
    assert len(q) == 2
    assert q.get(timeout=0.1) == 2 and q.get(timeout=0.1) == 3
    assert q.get(timeout=0.05) is None  # empty: times out
    with pytest.raises(ValueError, match=">= 1"):
        FrameQueue(0)


def test_close_wakes_a_waiting_get():
    q = FrameQueue(1)
    got = []
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    time.sleep(0.05)
    q.close()
    t.join(timeout=2.0)
    assert not t.is_alive() and got == [None]


def test_the_worker_processes_in_order_and_survives_a_failing_frame():
    q, stats = FrameQueue(10), PipelineStats(["CAM_FRONT"])
    done, errors = [], []

    def process(item: int) -> None:
        if item == 1:
            raise RuntimeError("boom")
        done.append(item)

    worker = Worker(q, process, stats, lambda item, err: errors.append((item, str(err))))
    worker.start()
    for i in range(4):
        q.put(i)
    deadline = time.monotonic() + 5.0
    while len(done) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert done == [0, 2, 3]
    assert errors == [(1, "boom")]
    assert stats.failed == 1 and stats.last_error == "RuntimeError: boom"


def test_statistics_give_the_diagnostic_level_rate_and_means():
    stats = PipelineStats(["CAM_FRONT", "CAM_BACK"])
    logs = [stats.frame_synced(100.0 + 0.1 * k, dropped=k == 4) for k in range(5)]
    assert logs[:4] == [None] * 4 and logs[4][0] == WARN and logs[4][1].startswith(BUSY)
    stats.image_seen("CAM_FRONT", 100.4)
    stats.image_seen("CAM_BACK", 100.4)
    stats.frame_published(10.0, 20.0)
    stats.frame_published(30.0, 40.0)
    level, message, values = stats.diagnostics(100.5, camera_timeout=1.0, model="m")
    assert level == WARN and message.startswith(f"{BUSY}: the model is slower")  # a drop: never silent
    assert values["frames synced"] == "5" and values["frames published"] == "2"
    assert values[f"dropped: {BUSY}"] == "1"
    assert values["input rate (Hz)"] == "10.00"
    assert values["processing time (ms)"] == "20.0" and values["pipeline latency (ms)"] == "30.0"
    assert stats.diagnostics(104.0, camera_timeout=10.0, model="m")[:2] == (WARN, message)
    assert stats.diagnostics(106.0, camera_timeout=10.0, model="m")[:2] == (OK, "ok")  # 5 s without a drop
    level, message, values = stats.diagnostics(106.0, camera_timeout=1.0, model="m")
    assert level == WARN and message == "stale cameras: CAM_FRONT, CAM_BACK"
    stats.frame_failed("base_link <- CAM_FRONT: unknown", 106.0, reason=NO_TF)
    level, message, _ = stats.diagnostics(106.5, camera_timeout=1.0, model="m")
    assert level == ERROR and message == f"{NO_TF}: base_link <- CAM_FRONT: unknown"
    summary = stats.summary()
    assert summary.startswith(
        "5 frames synced, 2 published, 1 failed, dropped: 1 model busy (frame queue full)"
    )
    assert summary.endswith(f", 1 {NO_TF}")


def _header(stamp_ns: int, frame_id: str) -> SimpleNamespace:
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    return SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec), frame_id=frame_id)


def test_camera_sets_become_camera_frames_with_calibration_and_extrinsics():
    names = ["CAM_FRONT", "CAM_BACK"]
    sync = CameraSync(names, slop_s=0.02, queue_size=5)
    k = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    frames = []
    for i, name in enumerate(names):
        stamp = 1_000_000_000 + i * 8_000_000
        img = SimpleNamespace(header=_header(stamp, f"{name}_optical"), format=COMPRESSED_FORMAT)
        img.data = encode_jpeg(np.full((80, 100, 3), 40 * (i + 1), np.uint8)).tobytes()
        info = SimpleNamespace(header=_header(stamp, name), k=list(k.reshape(-1)), height=80, width=100)
        frames += sync.add(("info", name), stamp, info, now=1.0)
        frames += sync.add(("image", name), stamp, img, now=2.0 + i)
    assert len(frames) == 1 and isinstance(frames[0], SyncedFrame)
    f = frames[0]
    assert f.stamp_ns == 1_000_000_000 and f.received == 3.0 and sync.dropped == 0
    tree = StaticTransforms()
    for i, name in enumerate(names):
        tree.add("base_link", f"{name}_optical", Transform(translation=np.array([i, 0.0, 1.5])))
    decoded = [decode_image(n, m, compressed=True) for n, m in zip(names, f.images)]

    def stamp_of(stamp: SimpleNamespace) -> int:
        return stamp.sec * 1_000_000_000 + stamp.nanosec

    def lookup(frame_id: str, stamp_ns: int) -> np.ndarray:
        return tree.lookup("base_link", frame_id, stamp_ns)

    cams = camera_frames(names, f.images, f.infos, decoded, lookup, stamp_of)
    assert [c.name for c in cams] == names and [c.stamp_ns for c in cams] == [1_000_000_000, 1_008_000_000]
    assert cams[1].image.shape == (80, 100, 3) and abs(int(cams[1].image.mean()) - 80) <= 2
    np.testing.assert_allclose(cams[0].intrinsics, k)
    np.testing.assert_allclose(cams[1].cam_to_base[:3, 3], [1.0, 0.0, 1.5])
    assert cams[0].info_hw == (80, 100)
    with pytest.raises(LookupError):
        tree.lookup("base_link", "CAM_LEFT_optical", 0)
    bad = SimpleNamespace(header=_header(0, "x"), k=[1.0, 2.0], height=1, width=1)
    with pytest.raises(FrameInputError, match="K has 2 values"):
        camera_frames(["CAM_FRONT"], [f.images[0]], [bad], decoded[:1], lambda fid, s: np.eye(4), stamp_of)


def test_an_undecodable_image_is_a_frame_input_error_naming_the_camera():
    msg = SimpleNamespace(format="jpeg", data=b"not a jpeg")
    with pytest.raises(FrameInputError, match=r"camera 'CAM_FRONT': cannot decode image \(jpeg"):
        decode_image("CAM_FRONT", msg, compressed=True)


def test_a_smaller_frame_queue_drops_its_oldest_frames():
    q = FrameQueue(4)
    for k in range(4):
        q.put(k)
    assert q.resize(2) == 2 and len(q) == 2 and q.get(0.0) == 2  # the newest two stay
    assert q.resize(5) == 0 and not q.put(9)
    with pytest.raises(ValueError, match=">= 1"):
        q.resize(0)


def test_throttle_keeps_to_its_rate_and_zero_is_off():
    t = Throttle(2.0)
    assert [t.ready(s) for s in (0.0, 0.2, 0.49, 0.5, 0.9, 1.01)] == [True, False, False, True, False, True]
    t.rate = 0.0
    assert not t.ready(100.0)


def test_debug_picture_is_the_offline_picture_with_k_scaled_to_the_image():
    from simdistill_ros.detection.pictures import frame_picture
    from simdistill_ros.geometry import Box3D, PinholeCamera

    k = np.array([[50.0, 0, 56], [0, 50.0, 32], [0, 0, 1]])
    cam_to_base = np.array([[0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 1.5], [0, 0, 0, 1]], dtype=float)
    image = np.full((64, 112, 3), 40, np.uint8)
    # the CameraInfo is for twice the image's size: K is scaled to the image, as for the model input
    frame = CameraFrame("CAM_FRONT", image, k * [[2], [2], [1]], cam_to_base, (128, 224))
    box = Box3D(center=[10.0, 0.0, 1.0], size=[4.0, 2.0, 1.5], yaw=0.0, label="car", score=0.8)
    drawn = debug_picture([frame], [box])
    camera = PinholeCamera("CAM_FRONT", 112, 64, k, Transform.from_matrix(cam_to_base))
    np.testing.assert_array_equal(drawn, np.asarray(frame_picture([image], [camera], [box])))
    assert drawn.dtype == np.uint8 and (drawn != debug_picture([frame], [])).any()
