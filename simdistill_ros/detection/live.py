"""The live detection pipeline without ROS: a frame queue that drops the oldest frame, the worker thread
that runs it, and the timing and diagnostic statistics. ``detector_node`` only wires ROS to it.

Real time: when the model is busy, a newer frame is worth more than an old one, so a full queue drops its
oldest frame. One failing frame is counted and reported, never fatal: the worker keeps serving.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simdistill_ros.detection.core import CameraFrame, FrameInputError
from simdistill_ros.frames.images import decode_compressed, image_to_rgb
from simdistill_ros.frames.sync import ApproximateTimeSync
from simdistill_ros.frames.tf_tree import TransformTree
from simdistill_ros.geometry import Transform

# Diagnostic levels (diagnostic_msgs/DiagnosticStatus: OK, WARN, ERROR)
OK, WARN, ERROR = 0, 1, 2


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

    def close(self) -> None:
        """Wake every waiting ``get`` (which then returns None)."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()


@dataclass
class PipelineStats:
    """Counters shared by the callbacks and the worker (guarded by ``lock``)."""

    cameras: list[str]
    window: int = 50
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    synced: int = 0
    published: int = 0
    failed: int = 0
    dropped_busy: int = 0
    tf_error: str = ""
    last_error: str = ""

    def __post_init__(self) -> None:
        self.sync_times: deque[float] = deque(maxlen=self.window)
        self.processing_ms: deque[float] = deque(maxlen=self.window)
        self.latency_ms: deque[float] = deque(maxlen=self.window)
        self.last_image: dict[str, float] = {c: 0.0 for c in self.cameras}

    def image_seen(self, camera: str, now: float) -> None:
        with self.lock:
            self.last_image[camera] = now

    def frame_synced(self, now: float, dropped: bool) -> None:
        with self.lock:
            self.synced += 1
            self.sync_times.append(now)
            self.dropped_busy += int(dropped)

    def frame_published(self, processing_ms: float, latency_ms: float) -> None:
        with self.lock:
            self.published += 1
            self.tf_error = ""
            self.processing_ms.append(processing_ms)
            self.latency_ms.append(latency_ms)

    def frame_failed(self, error: str, tf: bool = False) -> None:
        with self.lock:
            self.failed += 1
            if tf:
                self.tf_error = error
            else:
                self.last_error = error

    def summary(self, dropped_sync: int) -> str:
        """One line of counts, for the log when the node stops."""
        with self.lock:
            return (
                f"{self.synced} frames synced, {self.published} published, {self.failed} failed, "
                f"{self.dropped_busy} dropped while busy, {dropped_sync} reference images without a set"
            )

    def diagnostics(
        self, now: float, camera_timeout: float, dropped_sync: int, model: str
    ) -> tuple[int, str, dict[str, str]]:
        """(level, message, key-value pairs) of the pipeline's state for /diagnostics."""
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
                "frames dropped (sync)": dropped_sync,
                "frames dropped (busy)": self.dropped_busy,
                "input rate (Hz)": f"{rate:.2f}",
                "processing time (ms)": f"{np.mean(self.processing_ms):.1f}" if self.processing_ms else "n/a",
                "pipeline latency (ms)": f"{np.mean(self.latency_ms):.1f}" if self.latency_ms else "n/a",
                "stale cameras": ", ".join(stale) or "none",
                "model": model,
                "last error": self.last_error or "none",
            }
            tf_error = self.tf_error
        if tf_error:
            level, message = ERROR, f"missing transform: {tf_error}"
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
                self.stats.frame_failed(f"{type(err).__name__}: {err}")
                self.on_error(item, err)

    def stop(self, timeout: float = 5.0) -> None:
        self.frames.close()
        self._thread.join(timeout=timeout)


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


class ImageDecoder:
    """Decodes the cameras of a frame side by side (OpenCV releases the GIL while decoding)."""

    def __init__(self, cameras: int, compressed: bool) -> None:
        self.compressed = compressed
        workers = max(1, min(cameras, os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")

    def __call__(self, names: list[str], msgs: list[Any]) -> list[np.ndarray]:
        """RGB images of ``msgs``; raises the first camera's :class:`FrameInputError`."""
        decode = lambda n, m: decode_image(n, m, self.compressed)  # noqa: E731
        return list(self._pool.map(decode, names, msgs))

    def close(self) -> None:
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

    @property
    def dropped(self) -> int:
        """Reference-camera images that never completed a set."""
        return int(self._sync.dropped[("image", self.cameras[0])])


class StaticTransforms:
    """The /tf_static tree (where tf2_ros is not installed): camera frame -> base frame. Thread-safe."""

    def __init__(self) -> None:
        self._tree = TransformTree()
        self._lock = threading.Lock()

    def add(self, parent: str, child: str, transform: Transform) -> None:
        """Raises ValueError for a transform the tree cannot take."""
        with self._lock:
            self._tree.add_static(parent, child, transform)

    def lookup(self, base: str, frame_id: str, stamp_ns: int) -> np.ndarray:
        """(4, 4) ``frame_id`` -> ``base``; LookupError when the tree does not connect them."""
        with self._lock:
            return self._tree.lookup(base, frame_id, stamp_ns).matrix()
