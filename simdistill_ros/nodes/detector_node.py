"""detector_node: live camera-only 3D detection (SimDistill student) as a thin rclpy node.

Subscribes N cameras (image + camera_info, sensor-data QoS), synchronises them (message_filters'
ApproximateTimeSynchronizer when installed, else the project's :class:`ApproximateTimeSync`), takes the
camera extrinsics from tf (tf2_ros when installed, else /tf_static composed by :class:`TransformTree`),
runs :class:`simdistill_ros.detection.DetectorCore` on a worker thread and publishes
vision_msgs/Detection3DArray, visualization_msgs/MarkerArray, /diagnostics and debug timings.
A bad message is logged (throttled) and its frame skipped; the node never dies on input.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

NODE_NAME = "simdistill_detector"
LOG_THROTTLE_S = 5.0


class StartupError(Exception):
    """The node cannot start (model, parameters): one line to stderr, non-zero exit."""


@dataclass
class DetectorParams:
    """The node's parameters (see ``PARAMETERS`` for types, defaults and descriptions)."""

    camera_names: list[str]
    image_topics: list[str]
    camera_info_topics: list[str]
    compressed: bool
    base_frame: str
    model: str
    device: str
    backend: str
    fp16: bool
    score_threshold: float
    max_detections: int
    sync_slop: float
    sync_queue_size: int
    frame_queue_size: int
    detections_topic: str
    markers_topic: str
    camera_timeout: float
    diagnostics_period: float


# name -> (default, description). Defaults match config/detector.yaml; None: optional (no value).
PARAMETERS: dict[str, tuple[Any, str]] = {
    "camera_names": (
        ["CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_RIGHT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_FRONT_LEFT"],
        "Cameras in the order the model sees them (any number >= 1); the first is the sync reference.",
    ),
    "image_topic": ("/{camera}/image_rect_compressed", "Image topic template; {camera} is each camera name."),
    "camera_info_topic": (
        "/{camera}/camera_info",
        "CameraInfo topic template; {camera} is each camera name.",
    ),
    "image_topics": (None, "Optional explicit image topics, one per camera (override image_topic)."),
    "camera_info_topics": (
        None,
        "Optional explicit CameraInfo topics, one per camera (override the template).",
    ),
    "compressed": (True, "true: sensor_msgs/CompressedImage (jpeg/png); false: sensor_msgs/Image."),
    "base_frame": ("base_link", "Frame of the detections; camera extrinsics are looked up into it."),
    "model": ("student_tiny", "Checkpoint directory or shipped model name (student_tiny, baseline_tiny)."),
    "device": ("auto", "auto | cuda | cpu; cuda without CUDA falls back to the CPU with a warning."),
    "backend": (
        "torch",
        "torch | onnxruntime (the model's ONNX export, made on first use and cached; or an .onnx model).",
    ),
    "fp16": (False, "Half-precision inference (CUDA only; ignored with a warning on the CPU)."),
    "score_threshold": (0.2, "Minimum detection score published (0.2 suits the shipped student)."),
    "max_detections": (100, "At most this many detections per frame (highest scores)."),
    "sync_slop": (0.06, "Seconds: every image of a frame lies within this of the reference camera's."),
    "sync_queue_size": (10, "Messages kept per topic while waiting for a synchronised set."),
    "frame_queue_size": (2, "Synchronised frames waiting for the model; the oldest is dropped when full."),
    "detections_topic": ("~/detections", "vision_msgs/Detection3DArray output topic."),
    "markers_topic": ("~/markers", "visualization_msgs/MarkerArray output topic (RViz)."),
    "camera_timeout": (1.0, "Seconds without images before a camera is reported stale in /diagnostics."),
    "diagnostics_period": (1.0, "Seconds between /diagnostics messages."),
}


def _import_optional(module: str) -> Any | None:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        return None


def expand_topics(template: str, names: list[str]) -> list[str]:
    """Per-camera topics from a ``{camera}`` template."""
    return [template.format(camera=n) for n in names]


class _Stats:
    """Counters shared by the executor thread and the worker (guarded by one lock)."""

    def __init__(self, cameras: list[str]) -> None:
        self.lock = threading.Lock()
        self.synced = 0
        self.published = 0
        self.failed = 0
        self.dropped_busy = 0
        self.sync_times: deque[float] = deque(maxlen=50)
        self.last_image: dict[str, float] = {c: 0.0 for c in cameras}
        self.processing_ms: deque[float] = deque(maxlen=50)
        self.latency_ms: deque[float] = deque(maxlen=50)
        self.tf_error = ""
        self.last_error = ""


def main(argv: list[str] | None = None) -> int:
    """Console script ``detector_node``: parse ROS args, run until Ctrl-C; exit 1 on a start-up problem."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    rclpy.init(args=argv if argv is not None else sys.argv)
    node = None
    try:
        node = DetectorNode()
        rclpy.spin(node)
    except StartupError as err:
        print(f"{NODE_NAME}: error: {err}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return 0


def _node_base() -> type:
    from rclpy.node import Node

    return Node


class DetectorNode(_node_base()):  # type: ignore[misc]
    """See the module docstring. Construction loads the model (raises :class:`StartupError`)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.params = self._declare_parameters()
        p = self.params
        self._core = self._load_core(p)
        self._stats = _Stats(p.camera_names)
        self._frames: deque = deque()
        self._frames_cv = threading.Condition()
        self._running = True
        self._tree = None
        self._tf_buffer = None
        self._setup_publishers(p)
        self._setup_tf()
        self._setup_sync(p)
        # OpenCV releases the GIL while decoding: the cameras of a frame decode side by side.
        self._decoders = ThreadPoolExecutor(
            max_workers=max(1, min(len(p.camera_names), os.cpu_count() or 1)), thread_name_prefix="decode"
        )
        self._worker = threading.Thread(target=self._work, name="detector", daemon=True)
        self._worker.start()
        self._diag_timer = self.create_timer(p.diagnostics_period, self._publish_diagnostics)
        self.get_logger().info(
            f"detecting with {p.model} ({self._core.model_type}, {self._core.device}) on "
            f"{len(p.camera_names)} cameras {p.camera_names}; images {p.image_topics}; "
            f"sync: {self._sync_kind}, tf: {'tf2_ros' if self._tf_buffer else '/tf_static'}"
        )

    # set-up ---------------------------------------------------------------------------------------------
    def _declare_parameters(self) -> DetectorParams:
        from rcl_interfaces.msg import ParameterDescriptor
        from rclpy.exceptions import ParameterUninitializedException
        from rclpy.parameter import Parameter

        values: dict[str, Any] = {}
        for name, (default, text) in PARAMETERS.items():
            desc = ParameterDescriptor(description=text)
            if default is None:  # optional: typed but without a value unless the user gives one
                self.declare_parameter(name, Parameter.Type.STRING_ARRAY, desc)
                try:
                    values[name] = list(self.get_parameter(name).value or [])
                except ParameterUninitializedException:
                    values[name] = []
            else:
                values[name] = self.declare_parameter(name, default, desc).value
        names = [str(n) for n in values["camera_names"]]
        if not names or any(not n for n in names):
            raise StartupError(f"camera_names must list at least one camera, got {names}")
        if len(set(names)) != len(names):
            raise StartupError(f"camera_names must be unique, got {names}")
        for key, template in (("image_topics", "image_topic"), ("camera_info_topics", "camera_info_topic")):
            if not values[key]:
                if "{camera}" not in values[template]:
                    raise StartupError(f"{template} must contain {{camera}}, got {values[template]!r}")
                values[key] = expand_topics(values[template], names)
            elif len(values[key]) != len(names):
                raise StartupError(f"{key} has {len(values[key])} topics for {len(names)} cameras {names}")
        for key in ("sync_queue_size", "frame_queue_size", "max_detections"):
            if int(values[key]) < 1:
                raise StartupError(f"{key} must be >= 1, got {values[key]}")
        if values["backend"] not in ("torch", "onnxruntime"):
            raise StartupError(f"backend must be torch or onnxruntime, got {values['backend']!r}")
        if values["device"] not in ("auto", "cpu") and not str(values["device"]).startswith("cuda"):
            raise StartupError(f"device must be auto, cpu or cuda[:N], got {values['device']!r}")
        return DetectorParams(
            camera_names=names,
            image_topics=[str(t) for t in values["image_topics"]],
            camera_info_topics=[str(t) for t in values["camera_info_topics"]],
            compressed=bool(values["compressed"]),
            base_frame=str(values["base_frame"]),
            model=str(values["model"]),
            device=str(values["device"]),
            backend=str(values["backend"]),
            fp16=bool(values["fp16"]),
            score_threshold=float(values["score_threshold"]),
            max_detections=int(values["max_detections"]),
            sync_slop=float(values["sync_slop"]),
            sync_queue_size=int(values["sync_queue_size"]),
            frame_queue_size=int(values["frame_queue_size"]),
            detections_topic=str(values["detections_topic"]),
            markers_topic=str(values["markers_topic"]),
            camera_timeout=float(values["camera_timeout"]),
            diagnostics_period=float(values["diagnostics_period"]),
        )

    def _load_core(self, p: DetectorParams) -> Any:
        import torch

        from simdistill_ros.detection import DetectorCore

        if p.device.startswith("cuda") and not torch.cuda.is_available():
            self.get_logger().warning(
                f"device {p.device!r} asked for but CUDA is not available: using the CPU"
            )
            device = "cpu"
        else:
            device = p.device
        try:
            core = DetectorCore.from_checkpoint(
                p.model,
                device,
                p.backend,
                fp16=p.fp16,
                score_threshold=p.score_threshold,
                max_detections=p.max_detections,
                camera_names=p.camera_names,
            )
        except Exception as err:  # any failure to load is a start-up problem, told in one line
            raise StartupError(f"cannot load model {p.model!r}: {err}") from None
        for note in core.notes:
            self.get_logger().warning(note)
        return core

    def _setup_publishers(self, p: DetectorParams) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from std_msgs.msg import Float64
        from vision_msgs.msg import Detection3DArray
        from visualization_msgs.msg import MarkerArray

        self._det_pub = self.create_publisher(Detection3DArray, p.detections_topic, 10)
        self._marker_pub = self.create_publisher(MarkerArray, p.markers_topic, 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._proc_pub = self.create_publisher(Float64, "~/debug/processing_time_ms", 10)
        self._lat_pub = self.create_publisher(Float64, "~/debug/pipeline_latency_ms", 10)

    def _setup_tf(self) -> None:
        tf2_ros = _import_optional("tf2_ros")
        if tf2_ros is not None:
            self._tf_buffer = tf2_ros.Buffer()
            self._tf_listener = tf2_ros.TransformListener(self._tf_buffer, self)
            return
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        from tf2_msgs.msg import TFMessage

        from simdistill_ros.frames.tf_tree import TransformTree

        self._tree = TransformTree()
        self._tree_lock = threading.Lock()
        static_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=100,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self._tf_static_sub = self.create_subscription(
            TFMessage, "/tf_static", self._on_tf_static, static_qos
        )

    def _setup_sync(self, p: DetectorParams) -> None:
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image

        image_type = CompressedImage if p.compressed else Image
        mf = _import_optional("message_filters")
        if mf is not None:
            subs = [
                mf.Subscriber(self, image_type, t, qos_profile=qos_profile_sensor_data)
                for t in p.image_topics
            ]
            subs += [
                mf.Subscriber(self, CameraInfo, t, qos_profile=qos_profile_sensor_data)
                for t in p.camera_info_topics
            ]
            self._mf_subs = subs
            self._mf_sync = mf.ApproximateTimeSynchronizer(subs, p.sync_queue_size, p.sync_slop)
            self._mf_sync.registerCallback(self._on_mf_set)
            self._sync_kind = "message_filters"
            # message_filters hides the per-image arrival: stale-camera checks tap each image filter
            for name, sub in zip(p.camera_names, subs):
                sub.registerCallback(lambda _m, n=name: self._touch(n))
            return
        from simdistill_ros.frames.sync import ApproximateTimeSync

        keys = [("image", n) for n in p.camera_names] + [("info", n) for n in p.camera_names]
        self._sync = ApproximateTimeSync(keys, int(p.sync_slop * 1e9), p.sync_queue_size)
        self._sync_lock = threading.Lock()
        self._sync_kind = "ApproximateTimeSync"
        self._subs = []
        for name, topic in zip(p.camera_names, p.image_topics):
            self._subs.append(
                self.create_subscription(
                    image_type,
                    topic,
                    lambda m, n=name: self._on_msg(("image", n), m),
                    qos_profile_sensor_data,
                )
            )
        for name, topic in zip(p.camera_names, p.camera_info_topics):
            self._subs.append(
                self.create_subscription(
                    CameraInfo, topic, lambda m, n=name: self._on_msg(("info", n), m), qos_profile_sensor_data
                )
            )

    # callbacks (executor thread) ------------------------------------------------------------------------
    def _touch(self, camera: str) -> None:
        with self._stats.lock:
            self._stats.last_image[camera] = time.monotonic()

    def _on_tf_static(self, msg: Any) -> None:
        from simdistill_ros.frames.messages import transform_from_msg

        with self._tree_lock:
            for t in msg.transforms:
                try:
                    self._tree.add_static(
                        t.header.frame_id, t.child_frame_id, transform_from_msg(t.transform)
                    )
                except ValueError as err:
                    self.get_logger().warning(
                        f"ignoring a /tf_static transform: {err}", throttle_duration_sec=LOG_THROTTLE_S
                    )

    def _on_msg(self, key: tuple[str, str], msg: Any) -> None:
        from simdistill_ros.frames.messages import stamp_to_ns

        now = time.monotonic()
        if key[0] == "image":
            self._touch(key[1])
        with self._sync_lock:
            sets = self._sync.add(key, stamp_to_ns(msg.header.stamp), (msg, now))
        for s in sets:
            names = self.params.camera_names
            images = [s.item(("image", n))[0] for n in names]
            infos = [s.item(("info", n))[0] for n in names]
            received = max(s.item(k)[1] for k in s.messages)
            self._enqueue(s.stamp_ns, images, infos, received)

    def _on_mf_set(self, *msgs: Any) -> None:
        from simdistill_ros.frames.messages import stamp_to_ns

        n = len(self.params.camera_names)
        images, infos = list(msgs[:n]), list(msgs[n:])
        self._enqueue(stamp_to_ns(images[0].header.stamp), images, infos, time.monotonic())

    def _enqueue(self, stamp_ns: int, images: list, infos: list, received: float) -> None:
        with self._stats.lock:
            self._stats.synced += 1
            self._stats.sync_times.append(time.monotonic())
        with self._frames_cv:
            if len(self._frames) >= self.params.frame_queue_size:
                self._frames.popleft()  # real time: a newer frame is worth more than an old one
                with self._stats.lock:
                    self._stats.dropped_busy += 1
            self._frames.append((stamp_ns, images, infos, received))
            self._frames_cv.notify()

    # worker thread ----------------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._frames_cv:
                while self._running and not self._frames:
                    self._frames_cv.wait(0.5)
                if not self._running:
                    return
                item = self._frames.popleft()
            try:
                self._process(*item)
            except Exception as err:  # noqa: BLE001 - one frame must never take the node down
                with self._stats.lock:
                    self._stats.failed += 1
                    self._stats.last_error = f"{type(err).__name__}: {err}"
                self.get_logger().error(
                    f"frame at {item[0]} ns failed: {type(err).__name__}: {err}",
                    throttle_duration_sec=LOG_THROTTLE_S,
                )

    def _process(self, stamp_ns: int, images: list, infos: list, received: float) -> None:
        from simdistill_ros.detection import FrameInputError
        from simdistill_ros.detection.messages import detection_array_fields, marker_fields
        from simdistill_ros.detection.ros_messages import detection_array_msg, marker_array_msg

        t0 = time.monotonic()
        try:
            cameras = self._camera_frames(images, infos)
            result = self._core.detect(cameras, stamp_ns)
        except LookupError as err:
            with self._stats.lock:
                self._stats.failed += 1
                self._stats.tf_error = str(err)
            self.get_logger().error(
                f"missing transform, frame skipped: {err}", throttle_duration_sec=LOG_THROTTLE_S
            )
            return
        except FrameInputError as err:
            with self._stats.lock:
                self._stats.failed += 1
                self._stats.last_error = str(err)
            self.get_logger().warning(
                f"bad input, frame skipped: {err}", throttle_duration_sec=LOG_THROTTLE_S
            )
            return
        base = self.params.base_frame
        self._det_pub.publish(detection_array_msg(detection_array_fields(result.boxes, stamp_ns, base)))
        published = time.monotonic()
        # Markers after the detections: building ~26 points per box costs more than the detections
        # themselves, and nothing downstream but RViz waits for them.
        self._marker_pub.publish(marker_array_msg(marker_fields(result.boxes), stamp_ns, base))
        done = time.monotonic()
        self._publish_timing((done - t0) * 1e3, (published - received) * 1e3)
        with self._stats.lock:
            self._stats.published += 1
            self._stats.tf_error = ""

    def _publish_timing(self, processing_ms: float, latency_ms: float) -> None:
        from std_msgs.msg import Float64

        self._proc_pub.publish(Float64(data=processing_ms))
        self._lat_pub.publish(Float64(data=latency_ms))
        with self._stats.lock:
            self._stats.processing_ms.append(processing_ms)
            self._stats.latency_ms.append(latency_ms)

    def _camera_frames(self, images: list, infos: list) -> list:
        from simdistill_ros.detection import CameraFrame, FrameInputError
        from simdistill_ros.frames.messages import stamp_to_ns

        out = []
        names = self.params.camera_names
        decoded = list(self._decoders.map(self._decode, names, images))  # re-raises the first error
        for name, img, info, rgb in zip(names, images, infos, decoded):
            k = np.asarray(info.k, dtype=np.float64)
            if k.size != 9:
                raise FrameInputError(f"camera {name!r}: CameraInfo K has {k.size} values, expected 9")
            frame_id = img.header.frame_id or info.header.frame_id or name
            stamp = stamp_to_ns(img.header.stamp)
            out.append(
                CameraFrame(
                    name,
                    rgb,
                    k.reshape(3, 3),
                    self._lookup(frame_id, stamp),
                    (info.height, info.width),
                    stamp,
                )
            )
        return out

    def _decode(self, name: str, msg: Any) -> np.ndarray:
        from simdistill_ros.detection import FrameInputError
        from simdistill_ros.frames.images import decode_compressed

        try:
            if self.params.compressed:
                return decode_compressed(msg.format, msg.data)
            bridge = _cv_bridge()
            if bridge is not None:
                return np.ascontiguousarray(bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
            from simdistill_ros.frames.images import image_to_rgb

            return image_to_rgb(msg)
        except Exception as err:  # cv_bridge, OpenCV and our decoder all raise their own types
            enc = getattr(msg, "encoding", None) or getattr(msg, "format", "")
            raise FrameInputError(
                f"camera {name!r}: cannot decode image ({enc}, {getattr(msg, 'width', '?')}x"
                f"{getattr(msg, 'height', '?')}): {err}"
            ) from None

    def _lookup(self, frame_id: str, stamp_ns: int) -> np.ndarray:
        """(4, 4) camera frame -> base frame; LookupError when tf does not know it."""
        base = self.params.base_frame
        if self._tf_buffer is not None:
            from rclpy.time import Time

            from simdistill_ros.frames.messages import transform_from_msg

            try:
                t = self._tf_buffer.lookup_transform(base, frame_id, Time(nanoseconds=stamp_ns))
            except Exception as err:  # tf2's Lookup/Extrapolation/Connectivity exceptions
                raise LookupError(f"{base} <- {frame_id}: {err}") from None
            return transform_from_msg(t.transform).matrix()
        with self._tree_lock:
            return self._tree.lookup(base, frame_id, stamp_ns).matrix()

    # diagnostics -------------------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

        s, now = self._stats, time.monotonic()
        with s.lock:
            rate = 0.0
            recent = [t for t in s.sync_times if now - t < 5.0]
            if len(recent) >= 2 and recent[-1] > recent[0]:
                rate = (len(recent) - 1) / (recent[-1] - recent[0])
            stale = [c for c, t in s.last_image.items() if now - t > self.params.camera_timeout]
            dropped_sync = self._sync_dropped()
            values = {
                "frames synced": s.synced,
                "frames published": s.published,
                "frames failed": s.failed,
                "frames dropped (sync)": dropped_sync,
                "frames dropped (busy)": s.dropped_busy,
                "input rate (Hz)": f"{rate:.2f}",
                "processing time (ms)": f"{np.mean(s.processing_ms):.1f}" if s.processing_ms else "n/a",
                "pipeline latency (ms)": f"{np.mean(s.latency_ms):.1f}" if s.latency_ms else "n/a",
                "stale cameras": ", ".join(stale) or "none",
                "model": f"{self.params.model} ({self._core.model_type}, {self._core.device})",
                "last error": s.last_error or "none",
            }
            tf_error = s.tf_error
        if tf_error:
            level, message = DiagnosticStatus.ERROR, f"missing transform: {tf_error}"
        elif stale:
            level, message = DiagnosticStatus.WARN, f"stale cameras: {', '.join(stale)}"
        else:
            level, message = DiagnosticStatus.OK, "ok"
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_name()}: pipeline",
            message=message,
            hardware_id=",".join(self.params.camera_names),
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
        )
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)

    def _sync_dropped(self) -> int:
        sync = getattr(self, "_sync", None)
        return 0 if sync is None else int(sync.dropped[("image", self.params.camera_names[0])])

    def stop(self) -> None:
        """Stop the worker thread (before ``destroy_node``)."""
        self._running = False
        with self._frames_cv:
            self._frames_cv.notify_all()
        self._worker.join(timeout=5.0)
        self._decoders.shutdown(wait=False, cancel_futures=True)
        s = self._stats
        self.get_logger().info(
            f"stopped: {s.synced} frames synced, {s.published} published, {s.failed} failed, "
            f"{s.dropped_busy} dropped while busy, {self._sync_dropped()} reference images without a set"
        )

    @property
    def stats(self) -> _Stats:
        return self._stats


_BRIDGE: Any = None


def _cv_bridge() -> Any | None:
    """One CvBridge (None where cv_bridge is not installed)."""
    global _BRIDGE
    if _BRIDGE is None:
        mod = _import_optional("cv_bridge")
        _BRIDGE = mod.CvBridge() if mod is not None else False
    return _BRIDGE or None


if __name__ == "__main__":
    sys.exit(main())
