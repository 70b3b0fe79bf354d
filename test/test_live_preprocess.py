"""The live pipeline makes each camera's model input as its image arrives (decode, resize, normalise on
the decoder threads, with the camera's latest CameraInfo): the model then sees exactly what the offline
path makes from the same frame, and an input made with another CameraInfo than the frame's is made again."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import torch

from simdistill_ros.detection.core import DetectorCore
from simdistill_ros.detection.live import LiveDetector
from simdistill_ros.detection.live_inputs import CameraSync, camera_frames, decode_image
from simdistill_ros.detection.parameters import PARAMETERS, detector_params
from simdistill_ros.frames.images import COMPRESSED_FORMAT, encode_jpeg
from simdistill_ros.frames.messages import stamp_to_ns
from simdistill_ros.models import StudentModel, tiny

CAMS = ["CAM_FRONT", "CAM_BACK"]
SEC = 1_000_000_000
T0 = 1_700_000_000 * SEC
MOUNT = np.array([[0, 0, 1, 1.5], [-1, 0, 0, 0], [0, -1, 0, 1.6], [0, 0, 0, 1]], dtype=np.float64)


def _messages(stamp_ns: int, cy: float, seed: int) -> dict[str, tuple[SimpleNamespace, SimpleNamespace]]:
    """(CameraInfo, CompressedImage) per camera; ``cy``: the principal point's row (the resize's crop)."""
    rng = np.random.default_rng(seed)
    sec, nanosec = divmod(stamp_ns, SEC)
    out = {}
    for cam in CAMS:
        header = SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec), frame_id=cam)
        info = SimpleNamespace(header=header, k=[90.0, 0, 60, 0, 90.0, cy, 0, 0, 1], height=96, width=120)
        data = encode_jpeg(rng.integers(0, 256, (96, 120, 3), dtype=np.uint8)).tobytes()
        out[cam] = (info, SimpleNamespace(header=header, format=COMPRESSED_FORMAT, data=data))
    return out


class _Spy:
    """Counts the core's per-camera input making and keeps the model inputs it is given."""

    def __init__(self, core: DetectorCore) -> None:
        self.made, self.inputs, self.lock = 0, [], threading.Lock()
        make, head = core.camera_tensor, core.head_outputs

        def camera_tensor(*a, **kw):
            with self.lock:
                self.made += 1
            return make(*a, **kw)

        def head_outputs(inputs):
            self.inputs.append(inputs.images.clone())
            return head(inputs)

        core.camera_tensor, core.head_outputs = camera_tensor, head_outputs


def test_inputs_made_on_arrival_are_what_the_offline_path_makes_and_a_changed_calibration_is_redone():
    torch.manual_seed(0)
    core = DetectorCore(StudentModel(tiny()).eval(), (64, 96), torch.device("cpu"), score_threshold=0.0)
    offline = DetectorCore(core.model, (64, 96), torch.device("cpu"))
    spy = _Spy(core)
    values = {name: p.ros_default for name, p in PARAMETERS.items()}
    params = detector_params({**values, "camera_names": CAMS, "frame_queue_size": 10})
    published = []
    det = LiveDetector(
        core,
        params,
        CameraSync(CAMS, 0.06, 10),
        lambda frame_id, stamp: MOUNT,
        lambda f, cams, result, t0: published.append((f, result)),
        lambda level, text: None,
    )
    det.start()
    try:
        first = _messages(T0, cy=48.0, seed=1)
        for cam in CAMS:  # info, then image: the input is made with this frame's CameraInfo
            info, image = first[cam]
            det.add(("info", cam), T0, info, clock_ns=T0)
            det.add(("image", cam), T0, image, clock_ns=T0)
        _wait_for(lambda: len(published) == 1)
        assert (det.decode.collected, det.decode.late, spy.made) == (2, 0, 2)  # none made again

        later = T0 + SEC // 12
        second = _messages(later, cy=30.0, seed=2)  # the principal point moved: another crop
        for cam in CAMS:  # image first: made ahead with the previous CameraInfo (cy 48), so made again
            info, image = second[cam]
            det.add(("image", cam), later, image, clock_ns=later)
            time.sleep(0.05)
            det.add(("info", cam), later, info, clock_ns=later)
        _wait_for(lambda: len(published) == 2)
        assert (det.decode.collected, spy.made) == (4, 6)
    finally:
        det.stop()

    for (frame, _), given, msgs in zip(published, spy.inputs, (first, second)):
        infos, images = [msgs[c][0] for c in CAMS], [msgs[c][1] for c in CAMS]
        rgb = [decode_image(c, m, True) for c, m in zip(CAMS, images)]
        cameras = camera_frames(CAMS, images, infos, rgb, lambda frame_id, stamp: MOUNT, stamp_to_ns)
        want = offline.prepare(cameras)[0].images
        assert frame.stamp_ns == stamp_to_ns(images[0].header.stamp)
        assert torch.equal(given, want)  # bit for bit


def test_an_image_that_cannot_be_decoded_fails_its_frame_when_collected_and_the_next_frame_runs():
    core = DetectorCore(StudentModel(tiny()).eval(), (64, 96), torch.device("cpu"))
    values = {name: p.ros_default for name, p in PARAMETERS.items()}
    params = detector_params({**values, "camera_names": CAMS, "frame_queue_size": 10})
    published, logs = [], []
    det = LiveDetector(
        core,
        params,
        CameraSync(CAMS, 0.06, 10),
        lambda frame_id, stamp: MOUNT,
        lambda f, cams, result, t0: published.append(f.stamp_ns),
        lambda level, text: logs.append(text),
    )
    det.start()
    try:
        bad = _messages(T0, cy=48.0, seed=3)
        bad["CAM_BACK"][1].data = b"\xff\xd8\xff" + b"\x00" * 64  # a jpeg header, then nothing usable
        later = T0 + SEC // 12
        for stamp, msgs in ((T0, bad), (later, _messages(later, cy=48.0, seed=4))):
            for cam in CAMS:
                det.add(("info", cam), stamp, msgs[cam][0], clock_ns=stamp)
                det.add(("image", cam), stamp, msgs[cam][1], clock_ns=stamp)
        _wait_for(lambda: published == [later])
        assert det.stats.failed == 1 and any("CAM_BACK" in text and "jpeg" in text for text in logs)
    finally:
        det.stop()


def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
