"""The live detection pipeline without ROS: a frame queue that drops the oldest frame, the worker thread
that runs it, and the timing and diagnostic statistics, composed by :class:`LiveDetector` (stamp checks,
synchroniser, the wait for late transforms, live parameters). ``detector_node`` only wires ROS to it.

Real time: when the model is busy, a newer frame is worth more than an old one, so a full queue drops its
oldest frame. One failing frame is counted and reported, never fatal: the worker keeps serving.

Time as ROS handles it: a stamp far ahead of the node's clock is refused before it reaches the
synchroniser (one such set would make it wait for, or pass over, every later frame); when time jumps
back (a bag loop, a restarted simulation: the ROS clock or the reference camera's stamps), the
synchroniser, the frame queue and the transform history start afresh. Every dropped frame or message is
counted under its reason, the reason reaches /diagnostics as WARN or ERROR, and its first occurrence is
logged (later ones at most every ``LOG_THROTTLE_S``).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import torch

from simdistill_ros.detection.core import (
    CameraFrame,
    CameraTensor,
    DetectorCore,
    FrameInputError,
    FrameResult,
)
from simdistill_ros.detection.parameters import NUSCENES_CAMERAS, DetectorParams, StartupError
from simdistill_ros.detection.pictures import frame_picture
from simdistill_ros.detection.transport import PublisherQos, silent_camera_reason
from simdistill_ros.frames.images import decode_compressed, image_to_rgb
from simdistill_ros.frames.messages import distortion_assumed, stamp_to_ns, transform_from_msg
from simdistill_ros.frames.sync import ApproximateTimeSync
from simdistill_ros.frames.tf_tree import TransformTree
from simdistill_ros.geometry import Box3D, PinholeCamera, Transform

# Diagnostic levels (diagnostic_msgs/DiagnosticStatus: OK, WARN, ERROR)
OK, WARN, ERROR = 0, 1, 2
LOG_THROTTLE_S = 5.0  # a drop reason is logged when first seen, then at most this often
RECENT_S = 5.0  # a drop reason keeps /diagnostics at WARN/ERROR this long after it last happened
# A stream never runs backwards by this much (messages of one topic arrive in order); a bag loop or a
# restarted simulation does. Smaller jumps recover by themselves within this time (the late stamps are
# refused by the synchroniser until the stamps pass the old ones).
JUMP_BACK_NS = 500_000_000
# Messages of the old timeline still in flight arrive within this many seconds after a jump back; a /clock
# jump this soon after the stamps jumped is the same jump (the images of a restarted simulation came
# before its /clock message): nothing more is reset.
LATE_S = 1.0
TF_WAIT_FRAMES = 16  # frames kept while their transforms have not arrived (a late /tf_static)

# Why frames or messages are dropped (the /diagnostics keys and log lines name these).
AHEAD = "stamp ahead of the clock"
BEFORE_JUMP = "stamp from before a time jump"
TIME_JUMP = "time jumped back"
NO_SET = "no complete camera set"
BUSY = "model busy (frame queue full)"
BAD_INPUT = "bad input"
NO_TF = "missing transform"
FAILED = "processing error"


@dataclass
class SyncedFrame:
    """One synchronised set of camera messages waiting for the model."""

    stamp_ns: int
    images: list[Any]  # image messages in camera order
    infos: list[Any]  # CameraInfo messages in camera order
    received: float  # time.monotonic() when the set's last message arrived


class FrameQueue:
    """A bounded queue of frames; ``put`` on a full queue drops the oldest. Thread-safe."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"frame queue size must be >= 1, got {maxsize}")
        self.maxsize = int(maxsize)
        self._items: deque[Any] = deque()
        self._cv = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        with self._cv:
            return len(self._items)

    def put(self, item: Any) -> bool:
        """Append ``item``; True when the oldest frame was dropped to make room."""
        with self._cv:
            dropped = len(self._items) >= self.maxsize
            if dropped:
                self._items.popleft()
            self._items.append(item)
            self._cv.notify()
            return dropped

    def resize(self, maxsize: int) -> int:
        """A new bound (a live ``frame_queue_size``); the oldest frames beyond it are dropped, counted."""
        if maxsize < 1:
            raise ValueError(f"frame queue size must be >= 1, got {maxsize}")
        with self._cv:
            self.maxsize = int(maxsize)
            dropped = 0
            while len(self._items) > self.maxsize:
                self._items.popleft()
                dropped += 1
            return dropped

    def get(self, timeout: float | None = None) -> Any | None:
        """The oldest frame, waiting up to ``timeout`` seconds; None when closed or timed out."""
        with self._cv:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._items and not self._closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cv.wait(left)
            if self._closed:
                return None
            return self._items.popleft()

    def clear(self) -> int:
        """Drop every waiting frame; returns how many."""
        with self._cv:
            n = len(self._items)
            self._items.clear()
            return n

    def close(self) -> None:
        """Wake every waiting ``get`` (which then returns None)."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()


@dataclass
class _Reason:
    level: int
    count: int = 0
    last: float = 0.0  # time.monotonic() of the last occurrence
    detail: str = ""
    logged: float | None = None  # when it was last logged
    unlogged: int = 0  # occurrences since then


@dataclass
class PipelineStats:
    """Counters shared by the callbacks and the worker (guarded by ``lock``)."""

    cameras: list[str]
    window: int = 50
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    synced: int = 0
    published: int = 0
    failed: int = 0
    last_error: str = ""

    def __post_init__(self) -> None:
        self.sync_times: deque[float] = deque(maxlen=self.window)
        self.processing_ms: deque[float] = deque(maxlen=self.window)
        self.latency_ms: deque[float] = deque(maxlen=self.window)
        self.last_image: dict[str, float] = {c: 0.0 for c in self.cameras}
        self.reasons: dict[str, _Reason] = {}
        self.assumed: dict[str, str] = {}  # topic -> what is assumed of an input its messages lack

    def assume(self, topic: str, note: str) -> str | None:
        """Record an assumption about ``topic``'s messages; the line to log the first time, else None."""
        with self.lock:
            if topic in self.assumed:
                return None
            self.assumed[topic] = note
        return f"{topic}: {note}"

    @property
    def dropped_busy(self) -> int:
        return self.dropped(BUSY)

    def dropped(self, reason: str) -> int:
        """How many frames or messages were dropped for ``reason`` so far."""
        with self.lock:
            r = self.reasons.get(reason)
            return r.count if r else 0

    def drop(
        self, reason: str, detail: str, now: float, level: int = WARN, n: int = 1
    ) -> tuple[int, str] | None:
        """Count ``n`` drops for ``reason``; (level, log line) when it is to be logged now: its first
        occurrence, then at most every ``LOG_THROTTLE_S`` (saying how many happened in between)."""
        if n <= 0:
            return None
        with self.lock:
            r = self.reasons.setdefault(reason, _Reason(level))
            r.level, r.count, r.last, r.detail = max(r.level, level), r.count + n, now, detail
            r.unlogged += n
            if r.logged is not None and now - r.logged < LOG_THROTTLE_S:
                return None
            more = (
                f" ({r.unlogged - 1} more since the last report)"
                if r.logged is not None and r.unlogged > 1
                else ""
            )
            r.logged, r.unlogged = now, 0
            return r.level, f"{reason}: {detail}{more}"

    def image_seen(self, camera: str, now: float) -> None:
        with self.lock:
            self.last_image[camera] = now

    def frame_synced(self, now: float, dropped: bool) -> tuple[int, str] | None:
        """A synchronised frame was queued (``dropped``: the queue's oldest frame made room for it)."""
        with self.lock:
            self.synced += 1
            self.sync_times.append(now)
        if dropped:
            return self.drop(
                BUSY, "the model is slower than the input: the oldest waiting frame was dropped", now
            )
        return None

    def frame_published(self, processing_ms: float, latency_ms: float) -> None:
        with self.lock:
            self.published += 1
            self.processing_ms.append(processing_ms)
            self.latency_ms.append(latency_ms)

    def frames_dropped(self, n: int, detail: str, now: float) -> tuple[int, str] | None:
        """Frames dropped by a smaller ``frame_queue_size`` (counted as dropped while busy)."""
        return self.drop(BUSY, detail, now, n=n)

    def frame_failed(self, error: str, now: float, reason: str = FAILED) -> tuple[int, str] | None:
        """A frame the worker could not finish: ``reason`` NO_TF, BAD_INPUT or FAILED (an exception)."""
        with self.lock:
            self.failed += 1
            self.last_error = error
        return self.drop(reason, error, now, ERROR if reason in (NO_TF, FAILED) else WARN)

    def summary(self) -> str:
        """One line of counts, for the log when the node stops."""
        with self.lock:
            drops = ", ".join(f"{r.count} {name}" for name, r in self.reasons.items())
            counts = f"{self.synced} frames synced, {self.published} published, {self.failed} failed"
            return f"{counts}, dropped: {drops or 'none'}"

    def stale_cameras(self, now: float, camera_timeout: float) -> dict[str, float | None]:
        """Cameras without an image for ``camera_timeout`` s: name -> seconds since the last (None: never)."""
        with self.lock:
            return {
                c: (now - t if t else None) for c, t in self.last_image.items() if now - t > camera_timeout
            }

    def diagnostics(
        self, now: float, camera_timeout: float, model: str, silent: dict[str, str] | None = None
    ) -> tuple[int, str, dict[str, str]]:
        """(level, message, key-value pairs) of the pipeline's state for /diagnostics: the worst drop
        reason of the last ``RECENT_S`` seconds (WARN or ERROR, with its last detail), else stale
        cameras (WARN), else OK. ``silent``: camera -> why its images do not arrive, said for each stale
        camera (WARN at least)."""
        with self.lock:
            rate = 0.0
            recent = [t for t in self.sync_times if now - t < 5.0]
            if len(recent) >= 2 and recent[-1] > recent[0]:
                rate = (len(recent) - 1) / (recent[-1] - recent[0])
            stale = [c for c, t in self.last_image.items() if now - t > camera_timeout]
            values = {
                "frames synced": self.synced,
                "frames published": self.published,
                "frames failed": self.failed,
                "input rate (Hz)": f"{rate:.2f}",
                "processing time (ms)": f"{np.mean(self.processing_ms):.1f}" if self.processing_ms else "n/a",
                "pipeline latency (ms)": f"{np.mean(self.latency_ms):.1f}" if self.latency_ms else "n/a",
                "stale cameras": ", ".join(stale) or "none",
                "inputs assumed": "; ".join(f"{t}: {n}" for t, n in self.assumed.items()) or "none",
                "model": model,
                "last error": self.last_error or "none",
            }
            values.update({f"dropped: {name}": r.count for name, r in self.reasons.items()})
            active = sorted(
                ((r.level, name, r.detail) for name, r in self.reasons.items() if now - r.last < RECENT_S),
                key=lambda x: -x[0],
            )
        why = [silent[c] for c in stale if silent and c in silent]
        if active:
            level = active[0][0]
            message = "; ".join([f"{name}: {detail}" for _, name, detail in active] + why)
        elif why:
            level, message = WARN, "; ".join(why)
        elif stale:
            level, message = WARN, f"stale cameras: {', '.join(stale)}"
        else:
            level, message = OK, "ok"
        return level, message, {k: str(v) for k, v in values.items()}


class Worker:
    """Takes frames from a :class:`FrameQueue` and calls ``process`` on each, on its own thread. An
    exception from ``process`` is counted in ``stats`` and passed to ``on_error``; the loop goes on."""

    def __init__(
        self,
        frames: FrameQueue,
        process: Callable[[Any], None],
        stats: PipelineStats,
        on_error: Callable[[Any, BaseException], None] = lambda item, err: None,
    ) -> None:
        self.frames, self.process, self.stats, self.on_error = frames, process, stats, on_error
        self._thread = threading.Thread(target=self._run, name="detector", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self.frames.get()
            if item is None:
                return
            try:
                self.process(item)
            except Exception as err:  # noqa: BLE001 - one frame must never take the pipeline down
                self.stats.frame_failed(f"{type(err).__name__}: {err}", time.monotonic())
                self.on_error(item, err)

    def stop(self, timeout: float = 5.0) -> None:
        self.frames.close()
        self._thread.join(timeout=timeout)


def load_core(p: DetectorParams, warn: Callable[[str], None] = print) -> DetectorCore:
    """The detector core the parameters ask for; CUDA asked for without CUDA falls back to the CPU (told
    through ``warn``). Any failure to load is a :class:`StartupError` in one line."""
    device = p.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        warn(f"device {device!r} asked for but CUDA is not available: using the CPU")
        device = "cpu"
    try:
        core = DetectorCore.from_checkpoint(
            p.model,
            device,
            p.backend,
            fp16=p.fp16,
            score_threshold=p.score_threshold,
            max_detections=p.max_detections,
        )
    except Exception as err:  # the model file, its type, the device: told in one line
        raise StartupError(f"cannot load model {p.model!r}: {err}") from None
    for note in core.notes:
        warn(note)
    trained = core.trained_cameras
    names = p.sensors.camera_order(trained) or list(NUSCENES_CAMERAS)
    if trained and names != list(trained):
        missing = [c for c in trained if c not in names]
        extra = [c for c in names if c not in trained]
        warn(
            f"camera_names {names} differ from the cameras the model was trained on {list(trained)} "
            f"(missing: {missing or 'none'}; extra: {extra or 'none'})"
        )
    core.camera_names = names
    return core


def debug_picture(cameras: list[CameraFrame], boxes: list[Box3D]) -> np.ndarray:
    """The ``~/debug/image`` picture (H, W, 3) uint8 RGB: the offline pictures' drawing
    (:func:`~simdistill_ros.detection.pictures.frame_picture`) of one live frame."""
    pinholes = []
    for c in cameras:
        h, w = c.image.shape[:2]
        ih, iw = c.info_hw if c.info_hw and tuple(c.info_hw) != (0, 0) else (h, w)
        cam = PinholeCamera(c.name, int(iw), int(ih), c.intrinsics, Transform.from_matrix(c.cam_to_base))
        pinholes.append(cam if (ih, iw) == (h, w) else cam.scaled(w, h))
    return np.asarray(frame_picture([c.image for c in cameras], pinholes, boxes))


class Throttle:
    """At most ``rate`` events per second (0: none). Thread-safe enough for one worker thread."""

    def __init__(self, rate: float) -> None:
        self.rate, self._last = float(rate), -float("inf")

    def ready(self, now: float) -> bool:
        """True (and the event counted) when an event at ``now`` keeps to the rate."""
        if self.rate <= 0 or now - self._last < 1.0 / self.rate:
            return False
        self._last = now
        return True


def camera_frames(
    names: list[str],
    images: list[Any],
    infos: list[Any],
    decoded: list[np.ndarray],
    lookup: Callable[[str, int], np.ndarray],
    stamp_of: Callable[[Any], int],
) -> list[CameraFrame]:
    """The :class:`CameraFrame` s of one synchronised set: decoded images, K from each CameraInfo and the
    camera-to-base transform from ``lookup(frame_id, stamp_ns)``. Messages are read by attribute only."""
    out = []
    for name, img, info, rgb in zip(names, images, infos, decoded):
        k = np.asarray(info.k, dtype=np.float64)
        if k.size != 9:
            raise FrameInputError(f"camera {name!r}: CameraInfo K has {k.size} values, expected 9")
        frame_id = img.header.frame_id or info.header.frame_id or name
        stamp = stamp_of(img.header.stamp)
        cam_to_base = lookup(frame_id, stamp)
        out.append(CameraFrame(name, rgb, k.reshape(3, 3), cam_to_base, (info.height, info.width), stamp))
    return out


def optional_module(name: str) -> Any | None:
    """The module, or None where it is not installed (message_filters, tf2_ros)."""
    try:
        return __import__(name, fromlist=["_"])
    except ImportError:
        return None


def camera_sync(cameras: list[str], slop_s: float, queue_size: int) -> tuple[Any, str]:
    """The synchroniser and its name: message_filters' where installed (fed through the stamp checks,
    not by its own subscribers), else the project's :class:`CameraSync`."""
    mf = optional_module("message_filters")
    if mf is not None:
        return MessageFiltersSync(mf, cameras, slop_s, queue_size), "message_filters"
    return CameraSync(cameras, slop_s, queue_size), "ApproximateTimeSync"


class ImageDecoder:
    """Decodes every image as it arrives, and makes its model input (resize, normalise) with the camera's
    latest CameraInfo, on a small pool (simplejpeg, OpenCV and NumPy release the GIL). When the last image
    of a frame comes in the others are ready: only its own work is left on the frame's latency (cameras of
    a rig fire over tens of milliseconds), and it overlaps the model's work on the frame before.

    The worker collects the results; an image it finds none for (evicted, or never submitted) is decoded
    then, and a model input made with another CameraInfo than the frame's is made again by the detector.
    A decode error surfaces when the worker collects that image.

    ``prepare(rgb, info)``: the model input of a decoded image (None: decode only); ``keep``: results
    held per camera (images that never join a frame are evicted oldest first).
    """

    def __init__(
        self,
        cameras: int,
        compressed: bool,
        prepare: Callable[[np.ndarray, Any], CameraTensor] | None = None,
        keep: int = 3,
    ) -> None:
        self.compressed = compressed
        self.prepare = prepare
        self.keep = max(1, keep) * max(1, cameras)
        workers = max(1, min(cameras, os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")
        self._lock = threading.Lock()
        # id(msg) -> (msg, its work); the message is held so that its id is not reused meanwhile
        self._started: OrderedDict[int, tuple[Any, Future]] = OrderedDict()
        self.collected = 0  # images whose work had started on arrival
        self.late = 0  # images decoded only when the worker asked

    def submit(self, name: str, msg: Any, info: Any | None = None) -> None:
        """Start decoding ``msg`` (camera ``name``) now, and making its model input with ``info``."""
        future = self._pool.submit(self._work, name, msg, info)
        with self._lock:
            self._started[id(msg)] = (msg, future)
            while len(self._started) > self.keep:
                self._started.popitem(last=False)

    def _work(self, name: str, msg: Any, info: Any | None) -> tuple[np.ndarray, CameraTensor | None]:
        rgb = decode_image(name, msg, self.compressed)
        if info is None or self.prepare is None:
            return rgb, None
        try:
            return rgb, self.prepare(rgb, info)
        except Exception:  # noqa: BLE001 - the detector validates the frame and names the problem
            return rgb, None

    def __call__(self, names: list[str], msgs: list[Any]) -> list[tuple[np.ndarray, CameraTensor | None]]:
        """(RGB image, model input made ahead or None) of each of ``msgs``; raises the first camera's
        :class:`FrameInputError`."""
        futures = []
        with self._lock:
            for name, msg in zip(names, msgs):
                held = self._started.pop(id(msg), None)
                if held is not None and held[0] is msg:
                    self.collected += 1
                    futures.append(held[1])
                else:
                    self.late += 1
                    futures.append(self._pool.submit(self._work, name, msg, None))
        return [f.result() for f in futures]

    def close(self) -> None:
        with self._lock:
            self._started.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)


def decode_image(name: str, msg: Any, compressed: bool) -> np.ndarray:
    """RGB (H, W, 3) uint8 of a CompressedImage (``compressed``) or Image message, through the project's
    one decoder (it honours ``step``, which cv_bridge ignores). Any failure is a :class:`FrameInputError`
    naming the camera and encoding."""
    try:
        if compressed:
            return decode_compressed(msg.format, msg.data)
        return image_to_rgb(msg)
    except Exception as err:  # OpenCV, simplejpeg and our decoder all raise their own types
        enc = getattr(msg, "encoding", None) or getattr(msg, "format", "")
        size = f"{getattr(msg, 'width', '?')}x{getattr(msg, 'height', '?')}"
        raise FrameInputError(f"camera {name!r}: cannot decode image ({enc}, {size}): {err}") from None


class CameraSync:
    """Image + CameraInfo messages of N cameras -> :class:`SyncedFrame` s, by the project's approximate-time
    policy (where message_filters is not installed). Thread-safe."""

    def __init__(self, cameras: list[str], slop_s: float, queue_size: int) -> None:
        self.cameras = list(cameras)
        keys = [("image", n) for n in self.cameras] + [("info", n) for n in self.cameras]
        self._sync = ApproximateTimeSync(keys, int(slop_s * 1e9), queue_size)
        self._lock = threading.Lock()

    def add(self, key: tuple[str, str], stamp_ns: int, msg: Any, now: float) -> list[SyncedFrame]:
        """Add one message (``key`` = ("image" or "info", camera)); the sets it completes."""
        with self._lock:
            sets = self._sync.add(key, stamp_ns, (msg, now))
        out = []
        for s in sets:
            images = [s.item(("image", n))[0] for n in self.cameras]
            infos = [s.item(("info", n))[0] for n in self.cameras]
            out.append(SyncedFrame(s.stamp_ns, images, infos, max(s.item(k)[1] for k in s.messages)))
        return out

    def reset(self) -> int:
        """Forget every waiting message (a time jump); returns how many."""
        with self._lock:
            return self._sync.reset()

    @property
    def dropped(self) -> int:
        """Reference-camera images that never completed a set."""
        return int(self._sync.dropped[("image", self.cameras[0])])


class MessageFiltersSync:
    """message_filters' ``ApproximateTimeSynchronizer`` (the module is passed in: it needs ROS) behind
    :class:`CameraSync`'s interface. Messages enter through one ``SimpleFilter`` per topic, so that the
    stamp checks run before it; a reset builds a new synchroniser (it has no public way to empty one)."""

    dropped = 0  # message_filters does not count what it drops

    def __init__(self, mf: Any, cameras: list[str], slop_s: float, queue_size: int) -> None:
        self._mf, self.cameras = mf, list(cameras)
        self._slop, self._queue_size = float(slop_s), int(queue_size)
        self._keys = [("image", n) for n in self.cameras] + [("info", n) for n in self.cameras]
        self._lock = threading.Lock()
        self._out: list[SyncedFrame] = []
        self._now = 0.0
        # Older releases define SimpleFilter in the package, newer ones in message_filters.simple_filter.
        self._simple_filter = getattr(mf, "SimpleFilter", None)
        if self._simple_filter is None:
            self._simple_filter = optional_module("message_filters.simple_filter").SimpleFilter
        self.reset()

    def reset(self) -> int:
        with self._lock:
            self._inputs = {k: self._simple_filter() for k in self._keys}
            sync = self._mf.ApproximateTimeSynchronizer(
                [self._inputs[k] for k in self._keys], self._queue_size, self._slop
            )
            sync.registerCallback(self._on_set)
            self._sync = sync
        return 0

    def _on_set(self, *msgs: Any) -> None:
        n = len(self.cameras)
        stamp = msgs[0].header.stamp
        stamp_ns = int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
        self._out.append(SyncedFrame(stamp_ns, list(msgs[:n]), list(msgs[n:]), self._now))

    def add(self, key: tuple[str, str], stamp_ns: int, msg: Any, now: float) -> list[SyncedFrame]:
        with self._lock:
            self._out, self._now = [], now
            self._inputs[key].signalMessage(msg)
            return self._out


class StampGate:
    """Decides, per message, whether its stamp may enter the synchroniser. No ROS, no clock of its own.

    - More than ``max_ahead_ns`` ahead of the node's clock (``clock_ns``; skipped while the clock is 0, as
      ROS time is before the first /clock message; ``max_ahead_ns <= 0`` turns the check off): refused.
    - A stamp of the reference camera's image or CameraInfo more than ``jump_ns`` behind the newest one
      of the same topic: time jumped back; the caller resets, the message is kept and starts the new
      timeline. Each topic is judged against itself, as only within a topic do messages arrive in order
      (a reliable 4 MB image can arrive after the next, small, CameraInfo). From then on the new timeline
      is accepted whatever its frame spacing (tf2's behaviour: clear, then accept).
    - Only messages of the old timeline still in flight are refused, those stamped more than ``jump_ns``
      ahead of the new timeline (its newest stamp; after a clock jump, the clock) that are either the first
      of their topic since the jump and do not lie ``jump_ns`` behind its newest before it (they continue
      the old timeline), or arrive within ``late_s`` seconds of the jump stamped within ``jump_ns`` of the
      old timeline's newest. One of them would become the newest stamp of its stream in the synchroniser,
      which would then pass over every frame of the new timeline until it got there.
    """

    ACCEPT, RESET, REFUSE = "accept", "reset", "refuse"

    def __init__(
        self, reference: str, max_ahead_ns: int, jump_ns: int = JUMP_BACK_NS, late_s: float = LATE_S
    ) -> None:
        self.reference, self.max_ahead_ns, self.jump_ns = reference, int(max_ahead_ns), int(jump_ns)
        self.late_s = float(late_s)
        self._newest: dict[Any, int] = {}  # per topic (key): its newest stamp on the current timeline
        self._old: dict[Any, int] = {}  # per topic not yet seen since the last jump: its newest before it
        self._old_newest: int | None = None  # the old timeline's newest stamp
        self._jumped_at: float | None = None  # when (``now``) time last jumped back
        self._stamps_jumped_at: float | None = None  # ... seen from the stamps

    @property
    def newest_ns(self) -> int | None:
        """The newest stamp of the current timeline (None before the first)."""
        return max(self._newest.values(), default=None)

    def stamps_jumped_within(self, now: float) -> bool:
        """True within ``late_s`` seconds after the stamps jumped back."""
        return self._stamps_jumped_at is not None and now - self._stamps_jumped_at < self.late_s

    def forget(self, now: float = 0.0) -> None:
        """The clock jumped back: the next messages start a new timeline."""
        self._jump(now)

    def _jump(self, now: float) -> None:
        if self._newest:
            self._old_newest = self.newest_ns
        self._old = {**self._old, **self._newest}
        self._newest, self._jumped_at = {}, now

    def check(
        self, key: tuple[str, str], stamp_ns: int, clock_ns: int, now: float = 0.0
    ) -> tuple[str, str, str]:
        """(ACCEPT | RESET | REFUSE, reason, detail) for a message of ``key`` = (kind, camera) arriving at
        ``now`` (seconds, ``time.monotonic()``)."""
        if self.max_ahead_ns > 0 and clock_ns > 0 and stamp_ns - clock_ns > self.max_ahead_ns:
            ahead = (stamp_ns - clock_ns) / 1e9
            bound = f"max_stamp_ahead {self.max_ahead_ns / 1e9:g} s"
            detail = f"{_name(key)} stamped {ahead:.3f} s ahead of the clock ({bound})"
            return self.REFUSE, AHEAD, detail
        if self._jumped_at is not None:
            new = self.newest_ns if self._newest else (clock_ns or None)
            if new is not None and stamp_ns > new + self.jump_ns:
                first = key in self._old and stamp_ns >= self._old[key] - self.jump_ns
                late = (
                    now - self._jumped_at < self.late_s
                    and self._old_newest is not None
                    and abs(stamp_ns - self._old_newest) <= self.jump_ns
                )
                if first or late:
                    ahead = (stamp_ns - new) / 1e9
                    detail = f"{_name(key)} continues the old timeline ({ahead:.3f} s ahead of the new one)"
                    return self.REFUSE, BEFORE_JUMP, detail
            self._old.pop(key, None)  # on the new timeline from here on (a topic's messages arrive in order)
        own = self._newest.get(key)
        if key[1] == self.reference and own is not None and stamp_ns < own - self.jump_ns:
            self._jump(now)
            self._stamps_jumped_at = now
            del self._old[key]
            self._newest[key] = stamp_ns
            return self.RESET, TIME_JUMP, f"{_name(key)} stamps jumped back {(own - stamp_ns) / 1e9:.3f} s"
        self._newest[key] = stamp_ns if own is None else max(own, stamp_ns)
        return self.ACCEPT, "", ""


def _name(key: Any) -> str:
    return f"{key[1]} {key[0]}" if isinstance(key, tuple) and len(key) == 2 else str(key)


Log = tuple[int, str]  # (level, line) for the node's logger


class LiveInput:
    """Camera messages -> :class:`StampGate` -> synchroniser (:class:`CameraSync` or
    :class:`MessageFiltersSync`) -> :class:`FrameQueue`, counting every drop in ``stats``. A time jump
    (of the stamps, or of the ROS clock through :meth:`clock_jumped`) empties the synchroniser and the
    queue and calls ``on_jump`` (which clears the transforms and may return how many more frames it
    discarded). Thread-safe; methods return the lines to log."""

    def __init__(
        self,
        sync: Any,
        frames: FrameQueue,
        stats: PipelineStats,
        max_ahead_s: float,
        on_jump: Callable[[], int | None] = lambda: None,
    ) -> None:
        self.sync, self.frames, self.stats, self.on_jump = sync, frames, stats, on_jump
        self.gate = StampGate(sync.cameras[0], int(max_ahead_s * 1e9))
        self._lock = threading.Lock()

    def add(self, key: tuple[str, str], stamp_ns: int, msg: Any, clock_ns: int, now: float) -> list[Log]:
        """One image (``key`` ("image", camera)) or CameraInfo (("info", camera)) message."""
        logs: list[Log | None] = []
        if key[0] == "image":
            self.stats.image_seen(key[1], now)
        with self._lock:
            verdict, reason, detail = self.gate.check(key, stamp_ns, clock_ns, now)
            if verdict == StampGate.REFUSE:
                return [x for x in [self.stats.drop(reason, detail, now)] if x]
            if verdict == StampGate.RESET:
                logs.append(self._reset(detail, now))
            before = self.sync.dropped
            frames = self.sync.add(key, stamp_ns, msg, now)
            lost = self.sync.dropped - before
        if lost:
            detail = f"{lost} {self.sync.cameras[0]} image(s) found no image of every camera within sync_slop"
            logs.append(self.stats.drop(NO_SET, detail, now, n=lost))
        for f in frames:
            logs.append(self.stats.frame_synced(now, self.frames.put(f)))
        return [x for x in logs if x]

    def set_max_ahead(self, max_ahead_s: float) -> None:
        """A new ``max_stamp_ahead`` (a live parameter), for the next message."""
        with self._lock:
            self.gate.max_ahead_ns = int(max_ahead_s * 1e9)

    def clock_jumped(self, delta_ns: int, now: float, clock_ns: int | None = None) -> list[Log]:
        """The ROS clock jumped back by ``-delta_ns`` (rclpy's jump callback) to ``clock_ns``. When the
        stamps have already started the new timeline (its first images came before the /clock message),
        nothing is reset again: that would discard the new timeline's first frames."""
        with self._lock:
            newest = self.gate.newest_ns
            if (
                clock_ns is not None
                and self.gate.stamps_jumped_within(now)
                and newest is not None
                and newest <= clock_ns + self.gate.jump_ns
            ):
                return []
            self.gate.forget(now)
            log = self._reset(f"the ROS clock jumped back {-delta_ns / 1e9:.3f} s", now)
        return [log] if log else []

    def _reset(self, detail: str, now: float) -> Log | None:
        pending = self.sync.reset()
        queued = self.frames.clear() + (self.on_jump() or 0)
        lost = f"{queued} frames and {pending} messages discarded"
        return self.stats.drop(
            TIME_JUMP, f"{detail}: synchroniser, frame queue and transforms reset ({lost})", now
        )


class Transforms:
    """The tf tree where tf2_ros is not installed: /tf_static, and /tf for sensors that move (a dynamic
    camera mount, or converters that repeat every extrinsic on /tf). Thread-safe."""

    def __init__(self, tolerance_ns: int = 50_000_000) -> None:
        self._tree = TransformTree()
        self._lock = threading.Lock()
        self.tolerance_ns = int(tolerance_ns)

    def add(self, parent: str, child: str, transform: Transform) -> None:
        """A static transform; raises ValueError for one the tree cannot take."""
        with self._lock:
            self._tree.add_static(parent, child, transform)

    def clear(self) -> None:
        """Forget the dynamic transforms (a time jump); the static ones stay, as in tf2."""
        with self._lock:
            self._tree.clear()

    def add_dynamic(self, parent: str, child: str, transform: Transform, stamp_ns: int) -> None:
        """A /tf sample; raises ValueError for one the tree cannot take."""
        with self._lock:
            self._tree.add(parent, child, transform, stamp_ns)

    def lookup(self, base: str, frame_id: str, stamp_ns: int) -> np.ndarray:
        """(4, 4) ``frame_id`` -> ``base``; LookupError when the tree does not connect them (yet)."""
        with self._lock:
            return self._tree.lookup(base, frame_id, stamp_ns, self.tolerance_ns).matrix()


StaticTransforms = Transforms  # the name the node used before /tf was read too


class TfWaitQueue:
    """Frames whose transforms have not arrived yet (a /tf_static published after the first images):
    kept, oldest first, and retried when more transforms arrive, instead of being dropped. Bounded: when
    full the oldest frame is dropped (and counted). Thread-safe."""

    def __init__(self, maxsize: int = 16) -> None:
        self.maxsize = int(maxsize)
        self._items: deque[Any] = deque()
        self._lock = threading.Lock()
        self.dropped = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def put(self, item: Any) -> None:
        with self._lock:
            if len(self._items) >= self.maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)

    def take_all(self) -> list[Any]:
        """Every waiting frame, oldest first; the queue is then empty."""
        with self._lock:
            items, self._items = list(self._items), deque()
            return items


def add_tf_message(
    transforms: Transforms, msg: Any, static: bool, stamp_of: Callable[[Any], int]
) -> list[str]:
    """Add a tf2_msgs/TFMessage to ``transforms``; the problems of the transforms it could not take."""
    problems = []
    for t in msg.transforms:
        try:
            transform = transform_from_msg(t.transform)
            if static:
                transforms.add(t.header.frame_id, t.child_frame_id, transform)
            else:
                transforms.add_dynamic(
                    t.header.frame_id, t.child_frame_id, transform, stamp_of(t.header.stamp)
                )
        except ValueError as err:
            problems.append(str(err))
    return problems


class LivePipeline:
    """The node's per-message logic without ROS, for a recorded bag or a test: camera sync, transforms
    (fallback tf), the wait for late transforms, decoding and the detector. Messages go in through
    :meth:`on_message` in arrival order; results come out of it (and of :meth:`finish`)."""

    def __init__(
        self,
        core: Any,
        cameras: list[str],
        compressed: list[bool],
        base_frame: str = "base_link",
        slop_s: float = 0.06,
        queue_size: int = 10,
        tf_wait: int = 16,
    ) -> None:
        self.core, self.cameras, self.compressed, self.base_frame = (
            core,
            list(cameras),
            compressed,
            base_frame,
        )
        self.sync = CameraSync(self.cameras, slop_s, queue_size)
        self.transforms = Transforms()
        self.waiting = TfWaitQueue(tf_wait)
        self.failed: list[str] = []

    def on_message(self, kind: str, camera: str | None, msg: Any, stamp_of: Callable[[Any], int]) -> list:
        """``kind``: image, info, tf or tf_static. Returns the (stamp_ns, FrameResult) now done."""
        if kind in ("tf", "tf_static"):
            add_tf_message(self.transforms, msg, kind == "tf_static", stamp_of)
            return self.retry(stamp_of)
        frames = self.sync.add((kind, camera), stamp_of(msg.header.stamp), msg, time.monotonic())
        out = []
        for frame in frames:
            out += self.retry(stamp_of) + self.process(frame, stamp_of)
        return out

    def process(self, f: SyncedFrame, stamp_of: Callable[[Any], int]) -> list:
        """Detect on one synchronised frame; a frame whose transforms are missing waits."""
        try:
            decoded = [decode_image(n, m, c) for n, m, c in zip(self.cameras, f.images, self.compressed)]
            lookup = lambda frame_id, stamp: self.transforms.lookup(self.base_frame, frame_id, stamp)  # noqa: E731
            cams = camera_frames(self.cameras, f.images, f.infos, decoded, lookup, stamp_of)
        except LookupError:
            self.waiting.put(f)
            return []
        except FrameInputError as err:
            self.failed.append(str(err))
            return []
        return [(f.stamp_ns, self.core.detect(cams, f.stamp_ns))]

    def retry(self, stamp_of: Callable[[Any], int]) -> list:
        """The waiting frames whose transforms are now known (the others wait on)."""
        out = []
        for f in self.waiting.take_all():
            out += self.process(f, stamp_of)
        return out


_RETRY = object()  # queued to make the worker retry the frames waiting for transforms


class LiveDetector:
    """What ``detector_node`` runs, without ROS: messages -> :class:`LiveInput` (stamp checks,
    synchroniser) -> :class:`FrameQueue` -> :class:`Worker` thread -> decoding, transforms (a frame whose
    transforms have not arrived waits in a :class:`TfWaitQueue`), the detector -> ``publish``. Every drop
    is counted in ``stats``; lines to log go to ``log(level, text)``, throttled. The node passes its ROS
    parts in: the synchroniser, ``lookup(frame_id, stamp_ns)`` -> (4, 4) into the base frame (LookupError
    when unknown), ``clear_tf`` for a time jump, and ``publish(frame, cameras, result, started)``, called on
    the worker thread."""

    def __init__(
        self,
        core: DetectorCore,
        params: DetectorParams,
        sync: Any,
        lookup: Callable[[str, int], np.ndarray],
        publish: Callable[[SyncedFrame, list[CameraFrame], FrameResult, float], None],
        log: Callable[[int, str], None],
        clear_tf: Callable[[], None] = lambda: None,
        tf_wait: int = TF_WAIT_FRAMES,
    ) -> None:
        self.core, self.params, self.lookup, self.publish, self._log = core, params, lookup, publish, log
        self._clear_tf = clear_tf
        self.stats = PipelineStats(params.camera_names)
        self.frames = FrameQueue(params.frame_queue_size)
        self.tf_wait = TfWaitQueue(tf_wait)
        self.input = LiveInput(sync, self.frames, self.stats, params.max_stamp_ahead, self._time_jumped)
        self.decode = ImageDecoder(len(params.camera_names), params.compressed, self._camera_input)
        self._infos: dict[str, Any] = {}  # the latest CameraInfo of each camera
        self.debug_throttle = Throttle(params.debug_image_rate)
        self._silent_logged: dict[str, str] = {}  # camera -> the cause of its silence last logged
        # Lines that name no drop reason (a frame waits for tf, an exception): one per LOG_THROTTLE_S at most
        self._wait_log, self._fail_log, self._picture_log = (Throttle(1 / LOG_THROTTLE_S) for _ in range(3))
        self.worker = Worker(self.frames, self._process, self.stats, self._failed)

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> str:
        """Stop the worker and the decoders; the summary line of the run."""
        self.worker.stop()
        self.decode.close()
        return self.stats.summary()

    # executor thread --------------------------------------------------------------------------------------
    def add(self, key: tuple[str, str], stamp_ns: int, msg: Any, clock_ns: int) -> None:
        """One camera message (``key`` = ("image" or "info", camera)), the node's clock at ``clock_ns``."""
        if key[0] == "info":
            self._infos[key[1]] = msg
            if (note := distortion_assumed(msg)) is not None:
                topic = self.params.camera_info_topics[self.params.camera_names.index(key[1])]
                if (line := self.stats.assume(topic, note)) is not None:
                    self._log(WARN, line)
        elif key[0] == "image":
            self.decode.submit(key[1], msg, self._infos.get(key[1]))
        self._emit(self.input.add(key, stamp_ns, msg, clock_ns, time.monotonic()))

    def clock_jumped(self, delta_ns: int, clock_ns: int | None = None) -> None:
        """The ROS clock jumped back by ``-delta_ns`` to ``clock_ns`` (rclpy's jump callback)."""
        self._emit(self.input.clock_jumped(delta_ns, time.monotonic(), clock_ns))

    def retry_waiting(self) -> None:
        """Frames that wait for transforms get another try on the worker (when it has nothing else)."""
        if len(self.tf_wait) and not len(self.frames):
            self.frames.put(_RETRY)

    def set_live(self, values: dict[str, Any]) -> None:
        """Apply live parameters (already accepted by ``parameters.check_live``)."""
        self.params = replace(self.params, **values)  # one swap: the worker sees the old or the new
        if "score_threshold" in values:
            self.core.score_threshold = float(values["score_threshold"])
        if "max_detections" in values:
            self.core.max_detections = int(values["max_detections"])
        if "max_stamp_ahead" in values:
            self.input.set_max_ahead(float(values["max_stamp_ahead"]))
        if "frame_queue_size" in values:
            n = self.frames.resize(int(values["frame_queue_size"]))
            detail = (
                f"frame_queue_size set to {values['frame_queue_size']}: the oldest waiting frames dropped"
            )
            self._emit([self.stats.frames_dropped(n, detail, time.monotonic())])
        if "debug_image_rate" in values:
            self.debug_throttle.rate = float(values["debug_image_rate"])

    def silent_cameras(self) -> dict[str, float | None]:
        """Cameras without an image for ``camera_timeout``: name -> seconds since the last (None: never)."""
        return self.stats.stale_cameras(time.monotonic(), self.params.camera_timeout)

    def diagnostics(
        self, publishers: dict[str, list[PublisherQos]] | None = None, message_type: str = ""
    ) -> tuple[int, str, dict[str, str]]:
        """The /diagnostics status. ``publishers``: camera -> the publishers of its image topic (and their
        QoS), for the silent cameras: each one's likely cause is named, and logged once (again when the
        cause changes, or after its images came back) where the topic has publishers (a topic nothing
        publishes is only a stale camera, as at start-up before discovery)."""
        now = time.monotonic()
        p = self.params
        silent = self.stats.stale_cameras(now, p.camera_timeout)
        why, causes = {}, {}
        for camera, found in (publishers or {}).items():
            if camera not in silent:
                continue
            topic = p.image_topics[p.camera_names.index(camera)]
            reason = partial(silent_camera_reason, camera, topic, found, p.camera_qos_reliability)
            why[camera] = reason(silent[camera], message_type)
            causes[camera] = reason(None, message_type)  # the same line whatever the silence's length
        for camera in list(self._silent_logged):
            if camera not in silent:
                del self._silent_logged[camera]  # its images arrive again: a new silence is told again
        for camera, cause in causes.items():
            if publishers[camera] and self._silent_logged.get(camera) != cause:
                self._silent_logged[camera] = cause
                self._log(WARN, why[camera])
        model = f"{p.model} ({self.core.model_type}, {self.core.device})"
        return self.stats.diagnostics(now, p.camera_timeout, model, why)

    def _camera_input(self, rgb: np.ndarray, info: Any) -> CameraTensor:
        """A decoded image's model input, made with its camera's latest CameraInfo (decoder threads)."""
        k = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
        affine = self.core.camera_affine(rgb.shape[:2], k, (int(info.height), int(info.width)))
        return self.core.camera_tensor(rgb, affine)

    def _time_jumped(self) -> int:
        """Transforms and the frames waiting for them belong to the old timeline; how many frames went."""
        self._clear_tf()
        return len(self.tf_wait.take_all())

    def _emit(self, lines: list[tuple[int, str] | None]) -> None:
        for line in lines:
            if line:
                self._log(*line)

    # worker thread ----------------------------------------------------------------------------------------
    def _process(self, item: SyncedFrame | object) -> None:
        # Frames that waited for transforms go first (oldest first); one still unknown to tf waits on.
        for waiting in self.tf_wait.take_all():
            self._process_frame(waiting, retry=True)
        if item is not _RETRY:
            self._process_frame(item)

    def _process_frame(self, f: SyncedFrame, retry: bool = False) -> None:
        started = time.monotonic()
        names = self.params.camera_names
        try:
            decoded = self.decode(names, f.images)
            rgb = [image for image, _ in decoded]
            cameras = camera_frames(names, f.images, f.infos, rgb, self.lookup, stamp_to_ns)
        except LookupError as err:  # transforms not (yet) known, e.g. a late /tf_static: the frame waits
            dropped = self.tf_wait.dropped
            self.tf_wait.put(f)
            if self.tf_wait.dropped > dropped:
                detail = f"waited too long for transforms: {err}"
                self._emit([self.stats.frame_failed(detail, time.monotonic(), NO_TF)])
            elif not retry and self._wait_log.ready(time.monotonic()):
                self._log(WARN, f"missing transform, frame waits ({len(self.tf_wait)} waiting): {err}")
            return
        except FrameInputError as err:  # bad input: skip the frame
            return self._emit([self.stats.frame_failed(str(err), time.monotonic(), BAD_INPUT)])
        ahead = [made for _, made in decoded]
        self.publish(f, cameras, self.core.detect(cameras, f.stamp_ns, ahead), started)

    def debug_picture(
        self, cameras: list[CameraFrame], boxes: list[Box3D], wanted: bool
    ) -> np.ndarray | None:
        """The ``~/debug/image`` picture when ``wanted`` (a subscriber) and ``debug_image_rate`` allows; its
        failure is no failure of the frame (the detections are out already): logged, None."""
        if not wanted or not self.debug_throttle.ready(time.monotonic()):
            return None
        try:
            return debug_picture(cameras, boxes)
        except Exception as err:  # noqa: BLE001 - PIL and the camera model raise their own types
            if self._picture_log.ready(time.monotonic()):
                self._log(WARN, f"no ~/debug/image for this frame: {type(err).__name__}: {err}")
            return None

    def _failed(self, item: Any, err: BaseException) -> None:
        """An exception from one frame (already counted by the worker): logged, throttled."""
        if self._fail_log.ready(time.monotonic()):
            stamp = getattr(item, "stamp_ns", "?")
            self._log(ERROR, f"frame at {stamp} ns failed: {type(err).__name__}: {err}")
