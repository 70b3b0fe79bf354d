"""The live detection pipeline without ROS, composed by :class:`LiveDetector`: the stamp checks
(``stamp_gate``), the synchroniser and the image decoder (``live_inputs``), the frame queue and its worker
(``frame_queue``), the wait for late transforms (``live_tf``), the statistics behind /diagnostics
(``live_stats``) and the live parameters. ``detector_node`` only wires ROS to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
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
from simdistill_ros.detection.frame_queue import FrameQueue, SyncedFrame, Worker
from simdistill_ros.detection.live_inputs import CameraSync, ImageDecoder, camera_frames, decode_image
from simdistill_ros.detection.live_stats import BAD_INPUT, ERROR, LOG_THROTTLE_S, NO_TF, WARN, PipelineStats
from simdistill_ros.detection.live_tf import TF_WAIT_FRAMES, TfWaitQueue, Transforms, add_tf_message
from simdistill_ros.detection.parameters import NUSCENES_CAMERAS, DetectorParams, StartupError
from simdistill_ros.detection.pictures import frame_picture
from simdistill_ros.detection.stamp_gate import LiveInput
from simdistill_ros.detection.transport import PublisherQos, silent_camera_reason
from simdistill_ros.frames.messages import distortion_assumed, image_intrinsics, stamp_to_ns
from simdistill_ros.geometry import Box3D, PinholeCamera, Transform


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
        rectified: list[bool] | None = None,
    ) -> None:
        self.core, self.cameras, self.compressed, self.base_frame = (
            core,
            list(cameras),
            compressed,
            base_frame,
        )
        self.rectified = rectified  # per camera: P (rectified images, the default) or K (raw)
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
            cams = camera_frames(self.cameras, f.images, f.infos, decoded, lookup, stamp_of, self.rectified)
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
        # per camera: its images are rectified (camera matrix P) or raw (K)
        self.rectified = [params.sensors.rectified(t) for t in params.image_topics]
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
            index = self.params.camera_names.index(key[1])
            if (note := distortion_assumed(msg, self.rectified[index])) is not None:
                topic = self.params.camera_info_topics[index]
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
            ours = p.camera_qos_reliability
            why[camera] = silent_camera_reason(camera, topic, found, ours, silent[camera], message_type)
            # the cause, not its wording: the same whatever the silence's length, and whether or not the
            # graph has resolved the publishers' node names yet (discovery reports them a moment later)
            anonymous = [replace(q, node="") for q in found]
            causes[camera] = silent_camera_reason(camera, topic, anonymous, ours, None, message_type)
        for camera in list(self._silent_logged):
            if camera not in silent:
                del self._silent_logged[camera]  # its images arrive again: a new silence is told again
        for camera, cause in causes.items():
            if publishers[camera] and self._silent_logged.get(camera) != cause:
                self._silent_logged[camera] = cause
                self._log(WARN, why[camera])
        model = f"{p.model} ({self.core.model_type}, {self.core.device})"
        return self.stats.diagnostics(now, p.camera_timeout, model, why)

    def _camera_input(self, name: str, rgb: np.ndarray, info: Any) -> CameraTensor:
        """Camera ``name``'s decoded image's model input, made with its latest CameraInfo (decoder
        threads)."""
        k = image_intrinsics(info, self.rectified[self.params.camera_names.index(name)])
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
            cameras = camera_frames(names, f.images, f.infos, rgb, self.lookup, stamp_to_ns, self.rectified)
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
