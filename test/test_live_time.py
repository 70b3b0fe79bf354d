"""Time in the live pipeline, without ROS: a stamp far ahead of the clock is refused, a backwards jump (of
the stamps or of the ROS clock) resets the synchroniser, the frame queue and the transforms, and every drop
is counted, reaches the diagnostics with its reason and is logged once. The same cases through the real
node and a publisher process are in test_live_time_node.py."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

from simdistill_ros.detection.core import FrameResult
from simdistill_ros.detection.frame_queue import FrameQueue
from simdistill_ros.detection.live import LiveDetector
from simdistill_ros.detection.live_inputs import CameraSync
from simdistill_ros.detection.live_stats import (
    AHEAD,
    BEFORE_JUMP,
    ERROR,
    LOG_THROTTLE_S,
    NO_SET,
    OK,
    TIME_JUMP,
    WARN,
    PipelineStats,
)
from simdistill_ros.detection.live_tf import StaticTransforms
from simdistill_ros.detection.parameters import PARAMETERS, detector_params
from simdistill_ros.detection.stamp_gate import JUMP_BACK_NS, LATE_S, LiveInput, StampGate
from simdistill_ros.frames.images import COMPRESSED_FORMAT, encode_jpeg
from simdistill_ros.frames.sync import ApproximateTimeSync
from simdistill_ros.frames.tf_tree import ExtrapolationError, TransformTree
from simdistill_ros.geometry import Transform

CAMS = ["CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK"]
SEC = 1_000_000_000
HOUR = 3600 * SEC
T0 = 1_700_000_000 * SEC  # the stamps and the clock of the good frames
PERIOD = SEC // 12  # 12 Hz camera cycles; camera i fires i * 8 ms after the cycle start


class Rig:
    """A LiveInput over the project's synchroniser, fed camera sets as a driver would publish them."""

    def __init__(self, max_ahead_s: float = 10.0) -> None:
        self.stats = PipelineStats(CAMS)
        self.frames = FrameQueue(1000)
        self.jumps = 0
        self.input = LiveInput(CameraSync(CAMS, 0.06, 10), self.frames, self.stats, max_ahead_s, self._jumped)
        self.logs: list[tuple[int, str]] = []
        self.now = 100.0  # time.monotonic() stand-in, seconds

    def _jumped(self) -> None:
        self.jumps += 1

    def send(
        self, start_ns: int, clock_ns: int, offsets: dict[str, int] | None = None, period_ns: int = PERIOD
    ) -> None:
        """One camera set of cycle ``start_ns`` (plus per-camera offsets), the node clock at ``clock_ns``;
        the next set arrives ``period_ns`` later."""
        offsets = offsets or {}
        for i, cam in enumerate(CAMS):
            stamp = start_ns + i * 8_000_000 + offsets.get(cam, 0)
            for kind in ("info", "image"):
                msg = SimpleNamespace(stamp=stamp, kind=kind)
                self.logs += self.input.add((kind, cam), stamp, msg, clock_ns, self.now)
        self.now += period_ns / SEC

    def good(self, first: int, count: int, base: int = T0, period_ns: int = PERIOD) -> list[int]:
        """Send ``count`` good cycles from cycle number ``first``; returns their stamps."""
        stamps = [base + k * period_ns for k in range(first, first + count)]
        for s in stamps:
            self.send(s, clock_ns=s + 20_000_000, period_ns=period_ns)
        return stamps

    def synced(self) -> list[int]:
        out = []
        while (f := self.frames.get(timeout=0)) is not None:
            out.append(f.stamp_ns)
        return out

    def logged(self, reason: str) -> list[str]:
        return [text for _, text in self.logs if text.startswith(reason)]


def test_without_the_gate_one_future_set_stalls_the_synchroniser():
    """Why the gate exists: a set stamped an hour ahead becomes the newest stamp the synchroniser passed,
    and every later (correct) frame is refused as late."""
    keys = [(k, c) for c in CAMS for k in ("image", "info")]
    sync = ApproximateTimeSync(keys, 60_000_000, 10)
    emitted = []
    for start in [T0, T0 + HOUR] + [T0 + k * PERIOD for k in range(1, 13)]:
        for i, key in enumerate(keys):
            emitted += sync.add(key, start + (i // 2) * 8_000_000, None)
    assert [s.stamp_ns for s in emitted] == [T0, T0 + HOUR]  # 12 good frames after it: none


def test_a_camera_set_an_hour_ahead_is_refused_and_the_next_good_frames_all_pass():
    rig = Rig()
    before = rig.good(0, 5)
    rig.send(T0 + HOUR, clock_ns=T0 + 5 * PERIOD)
    after = rig.good(5, 12)  # one second of good frames
    assert rig.synced() == before + after
    assert rig.stats.dropped(AHEAD) == 2 * len(CAMS)  # every image and CameraInfo of the set
    assert len(rig.logged(AHEAD)) == 1 and "CAM_FRONT info stamped 3599.583 s ahead" in rig.logged(AHEAD)[0]
    assert "max_stamp_ahead 10 s" in rig.logged(AHEAD)[0]
    level, message, values = rig.stats.diagnostics(rig.now, camera_timeout=1.0, model="m")
    assert level == WARN and message.startswith(f"{AHEAD}: ") and values[f"dropped: {AHEAD}"] == "6"
    assert rig.stats.diagnostics(rig.now + 6.0, camera_timeout=10.0, model="m")[:2] == (OK, "ok")


def test_only_the_reference_camera_an_hour_ahead_loses_only_that_frame():
    rig = Rig()
    before = rig.good(0, 3)
    rig.send(T0 + 3 * PERIOD, clock_ns=T0 + 3 * PERIOD, offsets={"CAM_FRONT": HOUR})
    after = rig.good(4, 12)
    assert rig.synced() == before + after
    assert rig.stats.dropped(AHEAD) == 2 and len(rig.logged(AHEAD)) == 1  # its image and CameraInfo
    assert rig.jumps == 0


def test_time_stepping_back_30_s_resets_once_and_the_first_frames_after_it_pass():
    rig = Rig()
    assert rig.good(0, 6) == rig.synced()
    rig.frames.put(SimpleNamespace(stamp_ns=-1))  # a frame of the old timeline still waiting for the model
    restart = T0 - 30 * SEC
    after = rig.good(0, 12, base=restart)  # the clock restarted too (sim time), so nothing is "ahead"
    assert rig.synced() == after  # the waiting old frame was discarded by the reset
    assert rig.jumps == 1 and rig.stats.dropped(TIME_JUMP) == 1
    (line,) = rig.logged(TIME_JUMP)
    assert "CAM_FRONT info stamps jumped back 30.4" in line and "1 frames" in line and "reset" in line
    level, message, _ = rig.stats.diagnostics(rig.now, camera_timeout=1.0, model="m")
    assert level == WARN and TIME_JUMP in message


def test_a_bag_loop_without_sim_time_recovers_and_late_messages_of_the_old_loop_are_refused():
    """The stamps jump back while the (wall) clock runs on; a CameraInfo of the old loop arrives after the
    new loop has started: refused, it must not become the newest stamp of its stream."""
    rig = Rig()
    loop = rig.good(0, 12)  # a one-second bag
    clock = T0 + HOUR  # wall time far past the bag's stamps: the "ahead" check never fires
    synced = rig.synced()
    for s in loop:
        rig.send(s, clock)  # loop again from the start
    synced += rig.synced()
    for k, s in enumerate(loop):
        if k == 2:  # the last CAM_BACK CameraInfo of the previous loop, delivered late
            rig.logs += rig.input.add(("info", "CAM_BACK"), loop[-1] + 16_000_000, None, clock, rig.now)
        rig.send(s, clock)
    assert synced + rig.synced() == loop * 3
    assert rig.jumps == 2 and len(rig.logged(TIME_JUMP)) == 1  # logged once, counted twice
    assert rig.stats.dropped(TIME_JUMP) == 2 and rig.stats.dropped(BEFORE_JUMP) == 1
    assert rig.logged(BEFORE_JUMP) and "CAM_BACK info" in rig.logged(BEFORE_JUMP)[0]


@pytest.mark.parametrize("period_s", [0.3, 0.6, 1.0, 2.0])
def test_after_a_jump_back_every_frame_of_the_new_timeline_passes_whatever_its_spacing(period_s):
    """tf2's behaviour: clear, then accept. Frames further apart than the jump threshold (0.5 s) used to
    stall until their stamps passed the old timeline."""
    rig = Rig()
    period = int(period_s * SEC)
    assert rig.good(0, 5, period_ns=period) == rig.synced()
    after = rig.good(0, 6, base=T0 - 30 * SEC, period_ns=period)
    assert rig.synced() == after
    assert rig.jumps == 1 and rig.stats.dropped(BEFORE_JUMP) == 0


@pytest.mark.parametrize(("period_s", "frames"), [(0.5, 6), (1.0, 6), (1 / 12, 12)])
def test_a_looping_bag_without_clock_loses_no_frame_of_its_second_lap(period_s, frames):
    """Two laps of a bag (2 Hz key frames, 1 Hz, 12 Hz), the wall clock far ahead of its stamps. (A lap
    shorter than the jump threshold, 0.5 s, is no jump: its stamps are late for the synchroniser.)"""
    rig = Rig()
    period = int(period_s * SEC)
    lap = [T0 + k * period for k in range(frames)]
    synced = []
    for _ in range(2):
        for s in lap:
            rig.send(s, clock_ns=T0 + HOUR, period_ns=period)
            synced += rig.synced()  # the worker takes each frame as it comes
    assert synced == lap + lap
    assert rig.jumps == 1 and rig.stats.dropped(BEFORE_JUMP) == 0


def test_a_late_reference_image_of_the_old_timeline_does_not_jump_the_gate_forward_again():
    rig = Rig()
    old = rig.good(0, 6)
    assert rig.synced() == old
    restart = T0 - 30 * SEC
    after = rig.good(0, 1, base=restart)
    late = old[-1] + PERIOD  # the next set of the old timeline, its reference image still in flight
    rig.logs += rig.input.add(("image", CAMS[0]), late, None, late, rig.now)
    after += rig.good(1, 6, base=restart)
    assert rig.synced() == after
    assert rig.jumps == 1 and rig.stats.dropped(BEFORE_JUMP) == 1
    assert "CAM_FRONT image continues the old timeline (30.4" in rig.logged(BEFORE_JUMP)[0]


def test_large_images_arriving_after_the_next_camera_info_are_no_time_jump():
    """Reliable 4 MB images arrive late: the CameraInfo of the next set (0.5 s on) comes before the image
    of this one. Each topic runs forward, so nothing jumped: every set is synced, nothing is reset."""
    rig = Rig()
    period = SEC // 2 + 10_000_000
    stamps = [T0 + k * period for k in range(6)]
    infos = {s: [] for s in stamps}
    for s in stamps:  # every camera's CameraInfo of the set first, its images one set later
        for i, cam in enumerate(CAMS):
            rig.logs += rig.input.add(("info", cam), s + i * 8_000_000, None, s, rig.now)
        infos[s] = True
        prev = s - period
        if prev in infos:
            for i, cam in enumerate(CAMS):
                rig.logs += rig.input.add(("image", cam), prev + i * 8_000_000, None, s, rig.now)
        rig.now += period / SEC
    for i, cam in enumerate(CAMS):
        rig.logs += rig.input.add(("image", cam), stamps[-1] + i * 8_000_000, None, stamps[-1], rig.now)
    assert rig.synced() == stamps
    assert rig.jumps == 0 and rig.stats.dropped(TIME_JUMP) == 0


def test_a_message_stamped_like_the_old_timeline_long_after_the_jump_is_the_new_timeline():
    """A short jump back (0.6 s) with frames 1 s apart: the second frame of the new timeline lies near the
    old one's newest stamp; it came a second after the jump, so it is not a late message: accepted."""
    gate = StampGate("A", max_ahead_ns=10 * SEC)
    assert gate.check(("image", "A"), T0, T0, now=10.0)[0] == StampGate.ACCEPT
    assert gate.check(("image", "A"), T0 - 600_000_000, T0, now=10.1)[0] == StampGate.RESET
    assert gate.check(("image", "B"), T0 + 8_000_000, T0, now=10.2)[:2] == (StampGate.REFUSE, BEFORE_JUMP)
    assert gate.check(("image", "A"), T0 + 400_000_000, T0, now=10.1 + LATE_S)[0] == StampGate.ACCEPT


def test_a_clock_jump_after_the_stamps_already_jumped_resets_nothing_more():
    """With sim time the first images of the restarted timeline may come before the /clock message."""
    rig = Rig()
    rig.good(0, 6)
    restart = T0 - 30 * SEC
    first = rig.good(0, 2, base=restart)
    rig.logs += rig.input.clock_jumped(-30 * SEC, rig.now, clock_ns=restart + PERIOD)
    rest = rig.good(2, 6, base=restart)
    assert rig.synced()[-8:] == first + rest
    assert rig.jumps == 1 and rig.stats.dropped(TIME_JUMP) == 1


def test_after_a_clock_jump_late_messages_of_the_old_timeline_are_refused():
    rig = Rig(max_ahead_s=0)  # off: with it, the late message would be refused as ahead of the clock
    old = rig.good(0, 6)
    rig.synced()
    rig.logs += rig.input.clock_jumped(-30 * SEC, rig.now, clock_ns=T0 - 30 * SEC)
    rig.logs += rig.input.add(("info", CAMS[1]), old[-1] + PERIOD, None, T0 - 30 * SEC, rig.now)
    after = rig.good(0, 6, base=T0 - 30 * SEC)
    assert rig.synced() == after
    assert rig.jumps == 1 and rig.stats.dropped(BEFORE_JUMP) == 1


def test_a_future_set_with_no_clock_yet_is_passed_and_the_next_good_frame_resets():
    """Before the first /clock message ROS time is 0 and nothing can be judged "ahead"; the stamp jump
    back to the good frames then resets, so the frames still recover at once."""
    rig = Rig()
    rig.send(T0 + HOUR, clock_ns=0)
    assert rig.synced() == [T0 + HOUR]
    good = [T0 + k * PERIOD for k in range(12)]
    for s in good:
        rig.send(s, clock_ns=0)
    assert rig.synced() == good
    assert rig.jumps == 1 and rig.stats.dropped(AHEAD) == 0


def test_a_ros_clock_jump_resets_the_pipeline_and_the_transforms():
    rig = Rig()
    rig.good(0, 3)
    rig.send(T0 + 3 * PERIOD, clock_ns=T0)  # an incomplete set waits in the synchroniser...
    rig.frames.put(SimpleNamespace(stamp_ns=-1))  # ...and a frame waits for the model
    rig.synced()
    rig.frames.put(SimpleNamespace(stamp_ns=-1))
    logs = rig.input.clock_jumped(-30 * SEC, rig.now)
    assert rig.jumps == 1 and len(rig.frames) == 0
    assert logs[0][0] == WARN and "the ROS clock jumped back 30.000 s" in logs[0][1]
    assert rig.good(0, 12, base=T0 - 30 * SEC) == rig.synced()


def test_a_stamp_gate_refuses_only_what_it_can_judge():
    gate = StampGate("A", max_ahead_ns=10 * SEC)
    assert gate.check(("image", "A"), T0 + 11 * SEC, T0)[:2] == (StampGate.REFUSE, AHEAD)
    assert gate.check(("image", "A"), T0 + 9 * SEC, T0)[0] == StampGate.ACCEPT
    # Reordering within half a second is the synchroniser's business, not a jump.
    assert gate.check(("image", "A"), T0 + 9 * SEC - JUMP_BACK_NS + 1, T0)[0] == StampGate.ACCEPT
    assert gate.check(("image", "B"), T0, T0)[0] == StampGate.ACCEPT  # only the reference decides jumps
    # Each topic against itself: a CameraInfo far behind the last image is no jump (large images lag).
    assert gate.check(("info", "A"), T0 + 9 * SEC - 2 * JUMP_BACK_NS, T0)[0] == StampGate.ACCEPT
    assert gate.check(("image", "A"), T0 + 9 * SEC - JUMP_BACK_NS - 1, T0)[:2] == (StampGate.RESET, TIME_JUMP)
    assert StampGate("A", 10 * SEC).check(("image", "A"), T0 + HOUR, 0)[0] == StampGate.ACCEPT  # no clock yet
    off = StampGate("A", max_ahead_ns=0)
    assert off.check(("image", "A"), T0 + HOUR, T0)[0] == StampGate.ACCEPT


def test_every_drop_reason_is_logged_first_then_throttled_with_the_count():
    stats = PipelineStats(CAMS)
    assert stats.drop(NO_SET, "x", 10.0) == (WARN, f"{NO_SET}: x")
    assert stats.drop(NO_SET, "y", 11.0, n=3) is None
    assert stats.drop(AHEAD, "z", 11.0) == (WARN, f"{AHEAD}: z")  # another reason: its own first line
    assert stats.drop(NO_SET, "w", 10.0 + LOG_THROTTLE_S) == (
        WARN,
        f"{NO_SET}: w (3 more since the last report)",
    )
    assert stats.dropped(NO_SET) == 5
    assert stats.drop("processing error", "boom", 12.0, level=ERROR)[0] == ERROR
    level, message, _ = stats.diagnostics(12.5, camera_timeout=10.0, model="m")
    assert level == ERROR and message.split("; ")[0] == "processing error: boom"  # the worst reason first
    assert f"{NO_SET}: w" in message and f"{AHEAD}: z" in message


def test_a_synchroniser_reset_forgets_the_old_timeline():
    sync = ApproximateTimeSync(["a", "b"], 10, 5)
    assert sync.add("a", 1000, "a1") == [] and len(sync.add("b", 1000, "b1")) == 1
    sync.add("a", 1100, "a2")
    assert sync.add("a", 50, "old") == [] and sync.dropped["a"] == 1  # behind the horizon: late
    assert sync.reset() == 1 and sync.dropped["a"] == 2 and sync.pending == {"a": 0, "b": 0}
    sync.add("a", 50, "a0")
    assert [s.stamp_ns for s in sync.add("b", 52, "b0")] == [50]


def test_transforms_forget_their_dynamic_history_and_keep_the_static_edges():
    tree = TransformTree()
    tree.add_static("base_link", "CAM_FRONT", Transform(translation=np.array([1.0, 0, 0])))
    tree.add("map", "base_link", Transform(translation=np.array([5.0, 0, 0])), T0)
    tree.add("map", "base_link", Transform(translation=np.array([6.0, 0, 0])), T0 + SEC)
    assert tree.lookup("map", "CAM_FRONT", T0 + SEC // 2).translation[0] == pytest.approx(6.5)
    tree.clear()
    assert tree.lookup("base_link", "CAM_FRONT", T0).translation[0] == 1.0
    with pytest.raises(ExtrapolationError, match="since time jumped back"):
        tree.lookup("map", "CAM_FRONT", T0)
    tree.add("map", "base_link", Transform(translation=np.array([2.0, 0, 0])), T0 - 30 * SEC)
    assert tree.lookup("map", "CAM_FRONT", T0 - 30 * SEC).translation[0] == 3.0
    static = StaticTransforms()
    static.add("base_link", "CAM_FRONT", Transform())
    static.clear()
    np.testing.assert_allclose(static.lookup("base_link", "CAM_FRONT", 0), np.eye(4))


class _RecordingCore:
    """The detector core's interface the live pipeline uses; records the frames it is given."""

    model_type, device, score_threshold, max_detections = "student", "cpu", 0.2, 100

    def __init__(self) -> None:
        self.stamps: list[int] = []

    def detect(self, cameras: list, stamp_ns: int, ready: list | None = None) -> FrameResult:
        self.stamps.append(stamp_ns)
        return FrameResult(stamp_ns, [], 0.0, 0.0, False)


def _camera_set(stamp_ns: int) -> list[tuple[tuple[str, str], SimpleNamespace]]:
    sec, nanosec = divmod(stamp_ns, SEC)
    out = []
    for cam in CAMS[:2]:
        header = SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec), frame_id=cam)
        k = [100.0, 0, 50, 0, 100.0, 40, 0, 0, 1]
        out.append((("info", cam), SimpleNamespace(header=header, k=k, height=80, width=100)))
        data = encode_jpeg(np.full((80, 100, 3), 90, np.uint8)).tobytes()
        out.append((("image", cam), SimpleNamespace(header=header, format=COMPRESSED_FORMAT, data=data)))
    return out


def test_the_live_detector_keeps_a_frame_for_late_transforms_and_a_time_jump_discards_it():
    values = {name: p.ros_default for name, p in PARAMETERS.items()}
    params = detector_params({**values, "camera_names": CAMS[:2], "frame_queue_size": 10})
    tree, published, logs, cleared = StaticTransforms(), [], [], []
    lookup = lambda frame_id, stamp: tree.lookup("base_link", frame_id, stamp)  # noqa: E731
    core = _RecordingCore()
    det = LiveDetector(
        core,
        params,
        CameraSync(CAMS[:2], 0.06, 10),
        lookup,
        lambda f, cams, result, t0: published.append(f.stamp_ns),
        lambda level, text: logs.append((level, text)),
        lambda: cleared.append(True),
    )
    det.start()
    try:
        for key, msg in _camera_set(T0):  # no transforms yet: the frame waits
            det.add(key, T0, msg, clock_ns=T0)
        _wait_for(lambda: len(det.tf_wait) == 1)
        assert published == [] and any("frame waits" in text for _, text in logs)
        for cam in CAMS[:2]:
            tree.add("base_link", cam, Transform(translation=np.array([0.0, 0.0, 1.5])))
        det.retry_waiting()  # what the node does when transforms arrive
        _wait_for(lambda: published == [T0])
        assert core.stamps == [T0] and len(det.tf_wait) == 0

        tree.clear()  # static edges stay; a frame of an unknown camera frame waits again
        later = T0 + PERIOD
        for key, msg in _camera_set(later):
            msg.header.frame_id = "not_in_tf"
            det.add(key, later, msg, clock_ns=later)
        _wait_for(lambda: len(det.tf_wait) == 1)
        det.clock_jumped(-30 * SEC)  # the old timeline's waiting frame goes with the reset
        assert len(det.tf_wait) == 0 and cleared == [True] and det.stats.dropped(TIME_JUMP) == 1
        assert any("1 frames and 0 messages discarded" in text for _, text in logs)

        det.set_live({"max_stamp_ahead": 1.0, "score_threshold": 0.5})  # live: from the next message on
        assert core.score_threshold == 0.5 and det.params.max_stamp_ahead == 1.0
        key, msg = _camera_set(later)[0]
        det.add(key, later + 5 * SEC, msg, clock_ns=later)
        assert det.stats.dropped(AHEAD) == 1
        assert any("max_stamp_ahead 1 s" in text for _, text in logs)
    finally:
        assert det.stop().startswith("2 frames synced")


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _run_distorting_rig(rectification: str, p: list[float] | None) -> tuple[list, list, LiveDetector]:
    """Three camera sets through a LiveDetector whose CAM_FRONT_RIGHT CameraInfo names a distortion (and
    ``p``, when given): what was published, the log and the detector (stopped)."""
    values = {name: p.ros_default for name, p in PARAMETERS.items()}
    params = detector_params(
        {**values, "camera_names": CAMS[:2], "frame_queue_size": 10, "image_rectification": rectification}
    )
    tree, published, logs = StaticTransforms(), [], []
    for cam in CAMS[:2]:
        tree.add("base_link", cam, Transform(translation=np.array([0.0, 0.0, 1.5])))
    det = LiveDetector(
        _RecordingCore(),
        params,
        CameraSync(CAMS[:2], 0.06, 10),
        lambda frame_id, stamp: tree.lookup("base_link", frame_id, stamp),
        lambda f, cams, result, t0: published.append((f.stamp_ns, {c.name: c.intrinsics for c in cams})),
        lambda level, text: logs.append((level, text)),
    )
    det.start()
    try:
        for stamp in [T0 + k * PERIOD for k in range(3)]:
            for key, msg in _camera_set(stamp):
                if key == ("info", "CAM_FRONT_RIGHT"):
                    msg.distortion_model, msg.d = "plumb_bob", [-0.3, 0.1, 0.0, 0.0, 0.0]
                    if p is not None:
                        msg.p = p
                det.add(key, stamp, msg, clock_ns=stamp)
        _wait_for(lambda: len(published) == 3)
    finally:
        det.stop()
    return published, logs, det


def test_raw_images_of_a_distorting_camera_are_warned_of_once_naming_its_topic_and_still_detected():
    published, logs, det = _run_distorting_rig("raw", None)
    warned = [(level, text) for level, text in logs if "distortion" in text]
    assert warned == [(WARN, warned[0][1])]  # once, not once per CameraInfo
    assert warned[0][1].startswith("/CAM_FRONT_RIGHT/camera_info: distortion model 'plumb_bob'")
    assert "used as if rectified" in warned[0][1]
    values = det.diagnostics()[2]
    assert values["inputs assumed"].startswith("/CAM_FRONT_RIGHT/camera_info: distortion model")
    assert [stamp for stamp, _ in published] == [T0 + k * PERIOD for k in range(3)]


def test_rectified_images_use_the_camera_matrix_of_p_and_their_raw_cameras_distortion_is_expected():
    """image_proc publishes image_rect beside the raw camera's CameraInfo: D describes the raw image, P's
    left 3x3 the rectified one (here 8 % longer focal length than K, as rectification may crop)."""
    p = [108.0, 0.0, 52.0, 0.0, 0.0, 108.0, 41.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    published, logs, _ = _run_distorting_rig("auto", p)  # the default topics are image_rect_compressed
    assert not [text for _, text in logs if "distortion" in text]
    for _, intrinsics in published:
        np.testing.assert_allclose(intrinsics["CAM_FRONT_RIGHT"], np.array(p).reshape(3, 4)[:, :3])
        np.testing.assert_allclose(intrinsics["CAM_FRONT"], np.reshape(_camera_set(T0)[0][1].k, (3, 3)))
