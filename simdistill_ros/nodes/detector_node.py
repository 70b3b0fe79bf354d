"""detector_node: live camera-only 3D detection (SimDistill student), the ROS wiring only.

N cameras (image + camera_info) are synchronised by message_filters when installed, else by
:class:`ApproximateTimeSync`; extrinsics come from tf2_ros when installed, else from /tf_static. Each set
goes to the ROS-free pipeline of :mod:`simdistill_ros.detection.live` (frame queue, worker, statistics)
and :class:`~simdistill_ros.detection.DetectorCore`; parameters are declared in
:mod:`simdistill_ros.detection.parameters`. A bad message is logged (throttled) and its frame skipped.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
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
    detector_params,
    load_core,
)
from simdistill_ros.detection.ros_messages import detection_array_msg, marker_array_msg
from simdistill_ros.frames.messages import stamp_to_ns, transform_from_msg

NODE_NAME = "simdistill_detector"
LOG_THROTTLE_S = 5.0
STATIC_QOS = QoSProfile(
    depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


class DetectorNode(Node):
    """See the module docstring. Construction loads the model (raises :class:`StartupError`)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.params = p = detector_params(self._declared_values())
        self._core = load_core(p, self.get_logger().warning)
        self._stats = live.PipelineStats(p.camera_names)
        self._frames = live.FrameQueue(p.frame_queue_size)
        self._worker = live.Worker(self._frames, self._process, self._stats, self._log_failure)
        self._det_pub = self.create_publisher(Detection3DArray, p.detections_topic, 10)
        self._marker_pub = self.create_publisher(MarkerArray, p.markers_topic, 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._proc_pub = self.create_publisher(Float64, "~/debug/processing_time_ms", 10)
        self._lat_pub = self.create_publisher(Float64, "~/debug/pipeline_latency_ms", 10)
        self._setup_tf()
        self._setup_sync(p)
        self._decode = live.ImageDecoder(len(p.camera_names), p.compressed)
        self._worker.start()
        self._diag_timer = self.create_timer(p.diagnostics_period, self._publish_diagnostics)
        self.get_logger().info(
            f"detecting with {p.model} ({self._core.model_type}, {self._core.device}) on "
            f"{len(p.camera_names)} cameras {p.camera_names}; images {p.image_topics}; "
            f"sync: {self._sync_kind}, tf: {'tf2_ros' if self._tf_buffer else '/tf_static'}"
        )

    # set-up ---------------------------------------------------------------------------------------------
    def _declared_values(self) -> dict[str, Any]:
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
        return values

    def _setup_tf(self) -> None:
        self._tree, self._tf_buffer = None, None
        tf2_ros = live.optional_module("tf2_ros")
        if tf2_ros is not None:
            self._tf_buffer = tf2_ros.Buffer()
            self._tf_listener = tf2_ros.TransformListener(self._tf_buffer, self)
            return
        self._tree = live.StaticTransforms()
        self._tf_static = self.create_subscription(TFMessage, "/tf_static", self._on_tf_static, STATIC_QOS)

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
        for t in msg.transforms:
            try:
                self._tree.add(t.header.frame_id, t.child_frame_id, transform_from_msg(t.transform))
            except ValueError as err:
                self._warn(f"ignoring a /tf_static transform: {err}")

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
    def _process(self, f: live.SyncedFrame) -> None:
        t0 = time.monotonic()
        names = self.params.camera_names
        try:
            decoded = self._decode(names, f.images)
            cameras = live.camera_frames(names, f.images, f.infos, decoded, self._lookup, stamp_to_ns)
            result = self._core.detect(cameras, f.stamp_ns)
        except (LookupError, FrameInputError) as err:  # a missing transform or bad input: skip the frame
            tf = isinstance(err, LookupError)
            self._stats.frame_failed(str(err), tf=tf)
            log = self.get_logger().error if tf else self.get_logger().warning
            what = "missing transform" if tf else "bad input"
            return log(f"{what}, frame skipped: {err}", throttle_duration_sec=LOG_THROTTLE_S)
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
        """Stop the worker thread (before ``destroy_node``)."""
        self._worker.stop()
        self._decode.close()
        self.get_logger().info(f"stopped: {self._stats.summary(self._sync.dropped if self._sync else 0)}")

    @property
    def stats(self) -> live.PipelineStats:
        return self._stats


def main(argv: list[str] | None = None) -> int:
    """Console script ``detector_node``: parse ROS args, run until Ctrl-C; exit 1 on a start-up problem."""
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


if __name__ == "__main__":
    sys.exit(main())
