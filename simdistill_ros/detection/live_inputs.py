"""The camera inputs of the live pipeline: image decoding (on arrival, on a thread pool), the camera frames
the model reads, and the two synchronisers (message_filters' ApproximateTimeSynchronizer where it is
installed, else :class:`CameraSync` on the package's own ``ApproximateTimeSync``).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from simdistill_ros.detection.core import (
    CameraFrame,
    CameraTensor,
    FrameInputError,
)
from simdistill_ros.detection.frame_queue import SyncedFrame
from simdistill_ros.frames.images import decode_compressed, image_to_rgb
from simdistill_ros.frames.messages import image_intrinsics
from simdistill_ros.frames.sync import ApproximateTimeSync


def camera_frames(
    names: list[str],
    images: list[Any],
    infos: list[Any],
    decoded: list[np.ndarray],
    lookup: Callable[[str, int], np.ndarray],
    stamp_of: Callable[[Any], int],
    rectified: Sequence[bool] | None = None,
) -> list[CameraFrame]:
    """The :class:`CameraFrame` s of one synchronised set: decoded images, the camera matrix of each
    CameraInfo (P for a camera whose images are ``rectified``, the default; K for raw ones) and the
    camera-to-base transform from ``lookup(frame_id, stamp_ns)``. Messages are read by attribute only."""
    out = []
    rectified = [True] * len(names) if rectified is None else rectified
    for name, img, info, rgb, rect in zip(names, images, infos, decoded, rectified):
        try:
            k = image_intrinsics(info, rect)
        except ValueError as err:
            raise FrameInputError(f"camera {name!r}: CameraInfo {err}") from None
        frame_id = img.header.frame_id or info.header.frame_id or name
        stamp = stamp_of(img.header.stamp)
        cam_to_base = lookup(frame_id, stamp)
        out.append(CameraFrame(name, rgb, k, cam_to_base, (info.height, info.width), stamp))
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

    ``prepare(name, rgb, info)``: the model input of camera ``name``'s decoded image (None: decode only);
    ``keep``: results held per camera (images that never join a frame are evicted oldest first).
    """

    def __init__(
        self,
        cameras: int,
        compressed: bool,
        prepare: Callable[[str, np.ndarray, Any], CameraTensor] | None = None,
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
            return rgb, self.prepare(name, rgb, info)
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
