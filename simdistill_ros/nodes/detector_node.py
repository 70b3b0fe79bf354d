"""detector_node: live camera-only 3D detection (SimDistill student), the ROS wiring only.

N cameras (image + camera_info) are synchronised by message_filters when installed, else by
:class:`ApproximateTimeSync`; extrinsics come from tf2_ros when installed, else from /tf_static. Each set
goes to the ROS-free pipeline of :mod:`simdistill_ros.detection.live` (frame queue, worker, statistics)
and :class:`~simdistill_ros.detection.DetectorCore`; parameters are declared in
:mod:`simdistill_ros.detection.parameters`. A bad message is logged (throttled) and its frame skipped.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Float64
from tf2_msgs.msg import TFMessage
from vision_msgs.msg import Detection3DArray
from visualization_msgs.msg import MarkerArray

from simdistill_ros.detection import FrameInputError, live
from simdistill_ros.detection.messages import detection_array_fields, marker_fields
from simdistill_ros.detection.parameters import (
    PARAMETERS,
    DetectorParams,
    StartupError,
    check_live,
    detector_params,
    with_cameras,
)
from simdistill_ros.detection.ros_messages import detection_array_msg, image_msg, marker_array_msg
from simdistill_ros.frames.messages import stamp_to_ns, transform_from_msg
from simdistill_ros.nodes.process import StopSignal, detector_usage, wants_help

NODE_NAME = "simdistill_detector"
LOG_THROTTLE_S = 5.0
TF_WAIT_FRAMES = 16  # frames kept while their transforms have not arrived (a late /tf_static)
RETRY = object()  # queued to make the worker retry the frames waiting for transforms
STATIC_QOS = QoSProfile(
    depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


class DetectorNode(Node):
    """See the module docstring. Construction loads the model (raises :class:`StartupError`)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        p = detector_params(self._declared_values())
        self._core = live.load_core(p, self.get_logger().warning)
        self.params = p = with_cameras(p, self._core.trained_cameras)
        self._stats = live.PipelineStats(p.camera_names)
        self._frames = live.FrameQueue(p.frame_queue_size)
        self._tf_wait = live.TfWaitQueue(TF_WAIT_FRAMES)
        self._worker = live.Worker(self._frames, self._process, self._stats, self._log_failure)
        self._det_pub = self.create_publisher(Detection3DArray, p.detections_topic, 10)
        self._marker_pub = self.create_publisher(MarkerArray, p.markers_topic, 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._proc_pub = self.create_publisher(Float64, "~/debug/processing_time_ms", 10)
        self._lat_pub = self.create_publisher(Float64, "~/debug/pipeline_latency_ms", 10)
        self._debug_pub = self.create_publisher(Image, "~/debug/image", 1)
        self._debug_throttle = live.Throttle(p.debug_image_rate)
        self._setup_tf()
        self._setup_sync(p)
        self._decode = live.ImageDecoder(len(p.camera_names), p.compressed)
        self._worker.start()
        self._diag_timer = self.create_timer(p.diagnostics_period, self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(
            f"detecting with {p.model} ({self._core.model_type}, {self._core.device}) on "
            f"{len(p.camera_names)} cameras {p.camera_names}; images {p.image_topics}; "
            f"sync: {self._sync_kind}, tf: {'tf2_ros' if self._tf_buffer else '/tf_static'}"
        )

    # set-up ---------------------------------------------------------------------------------------------
    def _declared_values(self) -> dict[str, Any]:
        """Declare every parameter with a value (an optional list as ``UNSET``: `ros2 param dump` needs
        them all set), read-only unless it is live."""
        values: dict[str, Any] = {}
        for name, param in PARAMETERS.items():
            desc = ParameterDescriptor(description=param.description, read_only=not param.live)
            values[name] = self.declare_parameter(name, param.ros_default, desc).value
        return values

    def _on_set_parameters(self, changed: list[Parameter]) -> SetParametersResult:
        """Check every live parameter in the request, then apply them all (or none, with the reason).
        rclpy has already refused read-only parameters and wrong types."""
        values = {p.name: p.value for p in changed if p.name in PARAMETERS}
        reasons = [r for name, value in values.items() if (r := check_live(name, value))]
        if reasons:
            return SetParametersResult(successful=False, reason="; ".join(reasons))
        if values:
            self._apply(values)
        return SetParametersResult(successful=True)

    def _apply(self, values: dict[str, Any]) -> None:
        self.params = dataclasses.replace(self.params, **values)  # one swap: the worker sees old or new
        if "score_threshold" in values:
            self._core.score_threshold = float(values["score_threshold"])
        if "max_detections" in values:
            self._core.max_detections = int(values["max_detections"])
        if "frame_queue_size" in values:
            self._stats.frames_dropped(self._frames.resize(int(values["frame_queue_size"])))
        if "diagnostics_period" in values:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = self.create_timer(
                float(values["diagnostics_period"]), self._publish_diagnostics
            )
        if "debug_image_rate" in values:
            self._debug_throttle.rate = float(values["debug_image_rate"])
        self.get_logger().info("set " + ", ".join(f"{k} = {v}" for k, v in values.items()))

    def _setup_tf(self) -> None:
        self._tree, self._tf_buffer = None, None
        tf2_ros = live.optional_module("tf2_ros")
        if tf2_ros is not None:
            self._tf_buffer = tf2_ros.Buffer()
            self._tf_listener = tf2_ros.TransformListener(self._tf_buffer, self)
            return
        self._tree = live.Transforms()
        self._tf_static = self.create_subscription(TFMessage, "/tf_static", self._on_tf_static, STATIC_QOS)
        # Moving sensors (or converters that put every extrinsic on /tf) need the dynamic tree too.
        self._tf_dynamic = self.create_subscription(TFMessage, "/tf", self._on_tf, 100)

    def _setup_sync(self, p: DetectorParams) -> None:
        image_type = CompressedImage if p.compressed else Image
        qos = qos_profile_sensor_data
        self._sync = None
        mf = live.optional_module("message_filters")
        if mf is not None:
            subs = [mf.Subscriber(self, image_type, t, qos_profile=qos) for t in p.image_topics]
            subs += [mf.Subscriber(self, CameraInfo, t, qos_profile=qos) for t in p.camera_info_topics]
            self._mf_subs = subs
            self._mf_sync = mf.ApproximateTimeSynchronizer(subs, p.sync_queue_size, p.sync_slop)
            self._mf_sync.registerCallback(self._on_mf_set)
            self._sync_kind = "message_filters"
            # message_filters hides the per-image arrival: stale-camera checks tap each image filter
            for name, sub in zip(p.camera_names, subs):
                sub.registerCallback(lambda _m, n=name: self._stats.image_seen(n, time.monotonic()))
            return
        self._sync = live.CameraSync(p.camera_names, p.sync_slop, p.sync_queue_size)
        self._sync_kind = "ApproximateTimeSync"
        topics = [(("image", n), image_type, t) for n, t in zip(p.camera_names, p.image_topics)]
        topics += [(("info", n), CameraInfo, t) for n, t in zip(p.camera_names, p.camera_info_topics)]
        self._subs = [
            self.create_subscription(kind, topic, lambda m, k=key: self._on_msg(k, m), qos)
            for key, kind, topic in topics
        ]

    # callbacks (executor thread) ------------------------------------------------------------------------
    def _on_tf_static(self, msg: Any) -> None:
        for problem in live.add_tf_message(self._tree, msg, True, stamp_to_ns):
            self._warn(f"ignoring a /tf_static transform: {problem}")
        self._retry_waiting()

    def _on_tf(self, msg: Any) -> None:
        for problem in live.add_tf_message(self._tree, msg, False, stamp_to_ns):
            self._warn(f"ignoring a /tf transform: {problem}")
        self._retry_waiting()

    def _retry_waiting(self) -> None:
        """Frames that wait for transforms get another try on the worker (when it has nothing else)."""
        if len(self._tf_wait) and not len(self._frames):
            self._frames.put(RETRY)

    def _on_msg(self, key: tuple[str, str], msg: Any) -> None:
        now = time.monotonic()
        if key[0] == "image":
            self._stats.image_seen(key[1], now)
        for frame in self._sync.add(key, stamp_to_ns(msg.header.stamp), msg, now):
            self._enqueue(frame)

    def _on_mf_set(self, *msgs: Any) -> None:
        n = len(self.params.camera_names)
        images, infos = list(msgs[:n]), list(msgs[n:])
        self._enqueue(live.SyncedFrame(stamp_to_ns(images[0].header.stamp), images, infos, time.monotonic()))

    def _enqueue(self, frame: live.SyncedFrame) -> None:
        self._stats.frame_synced(time.monotonic(), self._frames.put(frame))

    # worker thread ----------------------------------------------------------------------------------------
    def _process(self, item: live.SyncedFrame | object) -> None:
        # Frames that waited for transforms go first (oldest first); one still unknown to tf waits on.
        for waiting in self._tf_wait.take_all():
            self._process_frame(waiting, retry=True)
        if item is not RETRY:
            self._process_frame(item)

    def _process_frame(self, f: live.SyncedFrame, retry: bool = False) -> None:
        t0 = time.monotonic()
        names = self.params.camera_names
        try:
            decoded = self._decode(names, f.images)
            cameras = live.camera_frames(names, f.images, f.infos, decoded, self._lookup, stamp_to_ns)
        except LookupError as err:  # transforms not (yet) known, e.g. a late /tf_static: the frame waits
            dropped = self._tf_wait.dropped
            self._tf_wait.put(f)
            if self._tf_wait.dropped > dropped:
                self._stats.frame_failed(f"waited too long for transforms: {err}", tf=True)
            if not retry:
                self._warn(f"missing transform, frame waits ({len(self._tf_wait)} waiting): {err}")
            return
        except FrameInputError as err:  # bad input: skip the frame
            self._stats.frame_failed(str(err))
            return self.get_logger().warning(
                f"bad input, frame skipped: {err}", throttle_duration_sec=LOG_THROTTLE_S
            )
        result = self._core.detect(cameras, f.stamp_ns)
        base = self.params.base_frame
        self._det_pub.publish(detection_array_msg(detection_array_fields(result.boxes, f.stamp_ns, base)))
        published = time.monotonic()
        # Markers after the detections: building ~26 points per box costs more than the detections
        # themselves, and nothing downstream but RViz waits for them.
        self._marker_pub.publish(marker_array_msg(marker_fields(result.boxes), f.stamp_ns, base))
        processing_ms, latency_ms = (time.monotonic() - t0) * 1e3, (published - f.received) * 1e3
        self._proc_pub.publish(Float64(data=processing_ms))
        self._lat_pub.publish(Float64(data=latency_ms))
        self._stats.frame_published(processing_ms, latency_ms)
        # A picture costs 0.1-0.4 s on a busy CPU: drawn only for a subscriber, at most debug_image_rate
        # per second, and its failure is no failure of the frame (the detections are out already).
        if self._debug_pub.get_subscription_count() > 0 and self._debug_throttle.ready(time.monotonic()):
            try:
                picture = live.debug_picture(cameras, result.boxes)
            except Exception as err:  # noqa: BLE001 - PIL and the camera model raise their own types
                return self._warn(f"no ~/debug/image for this frame: {type(err).__name__}: {err}")
            frame_id = f.images[0].header.frame_id or names[0]
            self._debug_pub.publish(image_msg(picture, f.stamp_ns, frame_id))

    def _lookup(self, frame_id: str, stamp_ns: int) -> np.ndarray:
        """(4, 4) camera frame -> base frame; LookupError when tf does not know it."""
        base = self.params.base_frame
        if self._tf_buffer is not None:
            try:
                t = self._tf_buffer.lookup_transform(base, frame_id, Time(nanoseconds=stamp_ns))
            except Exception as err:  # tf2's Lookup/Extrapolation/Connectivity exceptions
                raise LookupError(f"{base} <- {frame_id}: {err}") from None
            return transform_from_msg(t.transform).matrix()
        return self._tree.lookup(base, frame_id, stamp_ns)

    def _log_failure(self, frame: live.SyncedFrame, err: BaseException) -> None:
        msg = f"frame at {frame.stamp_ns} ns failed: {type(err).__name__}: {err}"
        self.get_logger().error(msg, throttle_duration_sec=LOG_THROTTLE_S)

    def _warn(self, text: str) -> None:
        self.get_logger().warning(text, throttle_duration_sec=LOG_THROTTLE_S)

    # diagnostics -------------------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        self._retry_waiting()  # with tf2_ros no callback tells of new transforms: retry on this timer
        model = f"{self.params.model} ({self._core.model_type}, {self._core.device})"
        level, message, values = self._stats.diagnostics(
            time.monotonic(), self.params.camera_timeout, (self._sync.dropped if self._sync else 0), model
        )
        status = DiagnosticStatus(
            level=(DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR)[level],
            name=f"{self.get_name()}: pipeline",
            message=message,
            hardware_id=",".join(self.params.camera_names),
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)

    def stop(self) -> None:
        """Stop the worker thread and log the summary (before ``destroy_node``, while the context is
        valid, so that the line reaches /rosout)."""
        self._worker.stop()
        self._decode.close()
        self.get_logger().info(f"stopped: {self._stats.summary(self._sync.dropped if self._sync else 0)}")

    @property
    def stats(self) -> live.PipelineStats:
        return self._stats


def main(argv: Sequence[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM; exit 1 on a start-up problem. ``--help`` prints the parameters.

    rclpy's own signal handler would shut the context down before the node logs its summary; ours only
    ends the spin, and the context is shut down after the node is destroyed."""
    if wants_help(argv):
        print(detector_usage())
        return 0
    rclpy.init(
        args=list(argv) if argv is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO
    )
    node = None
    with StopSignal() as stop:
        try:
            node = DetectorNode()
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            while not stop.event.is_set():
                executor.spin_once(timeout_sec=0.1)  # returns to Python, where the signal is seen
        except StartupError as err:
            print(f"{NODE_NAME}: error: {err}", file=sys.stderr)
            return 1
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            if node is not None:
                node.stop()
                node.destroy_node()
            rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
