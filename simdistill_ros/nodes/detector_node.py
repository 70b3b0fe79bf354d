"""detector_node: live camera-only 3D detection (SimDistill student), the ROS wiring only.

N cameras (image + camera_info) are synchronised by message_filters when installed, else by
:class:`ApproximateTimeSync`; extrinsics come from tf2_ros when installed, else from /tf_static. Each set
goes to the ROS-free pipeline of :mod:`simdistill_ros.detection.live` (frame queue, worker, statistics)
and :class:`~simdistill_ros.detection.DetectorCore`; parameters are declared in
:mod:`simdistill_ros.detection.parameters`. A bad message is logged (throttled) and its frame skipped; a
backwards jump of the ROS clock (rclpy jump callback) resets the pipeline and the tf buffer.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.clock import JumpThreshold
from rclpy.duration import Duration
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
        self._input = live.LiveInput(self._sync, self._frames, self._stats, p.max_stamp_ahead, self._clear_tf)
        # Like tf2_ros' buffer: any backwards jump of the ROS clock (sim time restarted) starts afresh.
        back = JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-1), on_clock_change=False)
        self._jump = self.get_clock().create_jump_callback(back, post_callback=self._on_clock_jump)
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
        mf = live.optional_module("message_filters")
        if mf is not None:  # fed through the stamp checks, not by message_filters' own subscribers
            self._sync = live.MessageFiltersSync(mf, p.camera_names, p.sync_slop, p.sync_queue_size)
        else:
            self._sync = live.CameraSync(p.camera_names, p.sync_slop, p.sync_queue_size)
        self._sync_kind = "message_filters" if mf is not None else "ApproximateTimeSync"
        topics = [(("image", n), image_type, t) for n, t in zip(p.camera_names, p.image_topics)]
        topics += [(("info", n), CameraInfo, t) for n, t in zip(p.camera_names, p.camera_info_topics)]
        self._subs = [
            self.create_subscription(
                kind, topic, lambda m, k=key: self._on_msg(k, m), qos_profile_sensor_data
            )
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
        clock_ns = self.get_clock().now().nanoseconds
        self._log(self._input.add(key, stamp_to_ns(msg.header.stamp), msg, clock_ns, time.monotonic()))

    def _on_clock_jump(self, jump: Any) -> None:
        self._log(self._input.clock_jumped(jump.delta.nanoseconds, time.monotonic()))

    def _clear_tf(self) -> None:
        (self._tf_buffer if self._tf_buffer is not None else self._tree).clear()

    def _log(self, lines: list[tuple[int, str]]) -> None:
        """Lines from the pipeline, already throttled per reason."""
        for level, text in lines:
            (self.get_logger().error if level == live.ERROR else self.get_logger().warning)(text)

    # worker thread ----------------------------------------------------------------------------------------
    def _process(self, f: live.SyncedFrame) -> None:
        t0 = time.monotonic()
        names = self.params.camera_names
        try:
            decoded = self._decode(names, f.images)
            cameras = live.camera_frames(names, f.images, f.infos, decoded, self._lookup, stamp_to_ns)
            result = self._core.detect(cameras, f.stamp_ns)
        except (LookupError, FrameInputError) as err:  # a missing transform or bad input: skip the frame
            reason = live.NO_TF if isinstance(err, LookupError) else live.BAD_INPUT
            return self._log([x for x in [self._stats.frame_failed(str(err), time.monotonic(), reason)] if x])
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
        level, message, values = self._stats.diagnostics(time.monotonic(), self.params.camera_timeout, model)
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
        self.get_logger().info(f"stopped: {self._stats.summary()}")

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
