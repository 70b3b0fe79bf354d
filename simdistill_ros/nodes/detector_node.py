"""detector_node: live camera-only 3D detection (SimDistill student), the ROS wiring only.

N cameras (image + camera_info) are synchronised by message_filters when installed, else by
:class:`ApproximateTimeSync`; extrinsics come from tf2_ros when installed, else from /tf_static and /tf.
All between subscriptions and publishers (stamp checks, synchroniser, frame queue, worker, the wait for
late transforms, statistics) is the ROS-free :class:`simdistill_ros.detection.live.LiveDetector`; the
parameters are declared in :mod:`simdistill_ros.detection.parameters`. A bad message is logged (throttled)
and its frame skipped; a backwards jump of the ROS clock (rclpy jump callback) resets the pipeline and tf.
The camera subscriptions take their QoS from ``camera_qos_reliability``/``camera_qos_depth``; for a camera
without images the diagnostics timer hands the graph's publishers of its topic (and their QoS) to
:mod:`simdistill_ros.detection.transport`, which names the likely cause.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.clock import JumpThreshold
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Float64
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from simdistill_ros.detection.core import CameraFrame, FrameResult
from simdistill_ros.detection.frame_queue import SyncedFrame
from simdistill_ros.detection.live import LiveDetector, load_core
from simdistill_ros.detection.live_inputs import camera_sync, optional_module
from simdistill_ros.detection.live_stats import ERROR, LOG_THROTTLE_S, PipelineStats
from simdistill_ros.detection.live_tf import Transforms, add_tf_message
from simdistill_ros.detection.parameters import (
    BEST_EFFORT,
    PARAMETERS,
    RELIABLE,
    DetectorParams,
    StartupError,
    check_live,
    detector_params,
    with_cameras,
)
from simdistill_ros.detection.ros_messages import diagnostic_array_msg, image_msg
from simdistill_ros.detection.transport import PublisherQos
from simdistill_ros.frames.messages import stamp_to_ns, transform_from_msg
from simdistill_ros.nodes.stop_signal import StopSignal
from simdistill_ros.nodes.usage import detector_usage, wants_help
from simdistill_ros.outputs import AUTOWARE, VISION_MSGS, OutputsError
from simdistill_ros.outputs.ros import markers_msg, message_class, output_messages

NODE_NAME = "simdistill_detector"
STATIC_QOS = QoSProfile(
    depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


class DetectorNode(Node):
    """See the module docstring. Construction loads the model (raises :class:`StartupError`)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        p = detector_params(self._declared_values())
        try:  # a missing message package is a start-up error, before the model loads
            classes = {output: message_class(output) for output in p.outputs}
        except OutputsError as err:
            raise StartupError(str(err)) from None
        core = load_core(p, self.get_logger().warning)
        p = with_cameras(p, core.trained_cameras)
        topics = {VISION_MSGS: p.detections_topic, AUTOWARE: p.objects_topic}
        self._output_pubs = {o: self.create_publisher(classes[o], topics[o], 10) for o in p.outputs}
        self._marker_pub = self.create_publisher(MarkerArray, p.markers_topic, 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._proc_pub = self.create_publisher(Float64, "~/debug/processing_time_ms", 10)
        self._lat_pub = self.create_publisher(Float64, "~/debug/pipeline_latency_ms", 10)
        self._debug_pub = self.create_publisher(Image, "~/debug/image", 1)
        self._setup_tf()
        sync, sync_kind = camera_sync(p.camera_names, p.sync_slop, p.sync_queue_size)
        self._live = LiveDetector(core, p, sync, self._lookup, self._publish, self._log, self._clear_tf)
        self._subscribe(p)
        # Like tf2_ros' buffer: any backwards jump of the ROS clock (sim time restarted) starts afresh.
        back = JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-1), on_clock_change=False)
        self._jump = self.get_clock().create_jump_callback(back, post_callback=self._on_clock_jump)
        self._live.start()
        self._diag_timer = self.create_timer(p.diagnostics_period, self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(
            f"detecting with {p.model} ({core.model_type}, {core.runs_on}, {core.device}) on "
            f"{len(p.camera_names)} cameras {p.camera_names}; images {p.image_topics} ({_rectification(p)}); "
            f"outputs {', '.join(p.outputs)}; sync: {sync_kind}, "
            f"tf: {'tf2_ros' if self._tf_buffer else '/tf_static + /tf'}"
        )

    @property
    def params(self) -> DetectorParams:
        return self._live.params

    @property
    def stats(self) -> PipelineStats:
        return self._live.stats

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
            self._live.set_live(values)
            if "diagnostics_period" in values:
                self.destroy_timer(self._diag_timer)
                self._diag_timer = self.create_timer(
                    float(values["diagnostics_period"]), self._publish_diagnostics
                )
            self.get_logger().info("set " + ", ".join(f"{k} = {v}" for k, v in values.items()))
        return SetParametersResult(successful=True)

    def _setup_tf(self) -> None:
        self._tree, self._tf_buffer = None, None
        tf2_ros = optional_module("tf2_ros")
        if tf2_ros is not None:
            self._tf_buffer = tf2_ros.Buffer()
            self._tf_listener = tf2_ros.TransformListener(self._tf_buffer, self)
            return
        self._tree = Transforms()
        self._tf_static = self.create_subscription(
            TFMessage, "/tf_static", lambda m: self._on_tf(m, True), STATIC_QOS
        )
        # Moving sensors (or converters that put every extrinsic on /tf) need the dynamic tree too.
        self._tf_dynamic = self.create_subscription(TFMessage, "/tf", lambda m: self._on_tf(m, False), 100)

    def _subscribe(self, p: DetectorParams) -> None:
        image_type = CompressedImage if p.compressed else Image
        topics = [(("image", n), image_type, t) for n, t in zip(p.camera_names, p.image_topics)]
        topics += [(("info", n), CameraInfo, t) for n, t in zip(p.camera_names, p.camera_info_topics)]
        # Sensor-data QoS by default (best effort, volatile, keep last); reliable where asked for.
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=p.camera_qos_depth,
            reliability=ReliabilityPolicy.RELIABLE
            if p.camera_qos_reliability == RELIABLE
            else ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.VOLATILE,
        )
        self._image_type = f"sensor_msgs/msg/{image_type.__name__}"
        self._subs = [
            self.create_subscription(kind, topic, lambda m, k=key: self._on_msg(k, m), qos)
            for key, kind, topic in topics
        ]

    # callbacks (executor thread) ------------------------------------------------------------------------
    def _on_tf(self, msg: Any, static: bool) -> None:
        for problem in add_tf_message(self._tree, msg, static, stamp_to_ns):
            topic = "/tf_static" if static else "/tf"
            self.get_logger().warning(
                f"ignoring a {topic} transform: {problem}", throttle_duration_sec=LOG_THROTTLE_S
            )
        self._live.retry_waiting()

    def _on_msg(self, key: tuple[str, str], msg: Any) -> None:
        self._live.add(key, stamp_to_ns(msg.header.stamp), msg, self.get_clock().now().nanoseconds)

    def _on_clock_jump(self, jump: Any) -> None:
        self._live.clock_jumped(jump.delta.nanoseconds, self.get_clock().now().nanoseconds)

    def _clear_tf(self) -> None:
        (self._tf_buffer if self._tf_buffer is not None else self._tree).clear()

    def _log(self, level: int, text: str) -> None:
        """A line of the pipeline, already throttled."""
        (self.get_logger().error if level == ERROR else self.get_logger().warning)(text)

    # worker thread ----------------------------------------------------------------------------------------
    def _publish(self, f: SyncedFrame, cameras: list[CameraFrame], result: FrameResult, t0: float) -> None:
        p = self.params
        messages = output_messages(
            result.boxes, f.stamp_ns, p.base_frame, p.outputs, p.orientation_availability
        )
        for output, msg in messages.items():
            self._output_pubs[output].publish(msg)
        published = time.monotonic()
        # Markers after the detections: building ~26 points per box costs more than the detections
        # themselves, and nothing downstream but RViz waits for them.
        self._marker_pub.publish(markers_msg(result.boxes, f.stamp_ns, p.base_frame))
        processing_ms, latency_ms = (time.monotonic() - t0) * 1e3, (published - f.received) * 1e3
        self._proc_pub.publish(Float64(data=processing_ms))
        self._lat_pub.publish(Float64(data=latency_ms))
        self._live.stats.frame_published(processing_ms, latency_ms)
        # A picture costs 0.1-0.4 s on a busy CPU: drawn only for a subscriber, at most debug_image_rate/s.
        wanted = self._debug_pub.get_subscription_count() > 0
        if (picture := self._live.debug_picture(cameras, result.boxes, wanted)) is not None:
            frame_id = f.images[0].header.frame_id or self.params.camera_names[0]
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

    # diagnostics -------------------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        self._live.retry_waiting()  # with tf2_ros no callback tells of new transforms: retry on this timer
        try:
            publishers = self._silent_publishers()
        except Exception as err:  # noqa: BLE001 - a graph query must not take the detector down
            self.get_logger().warning(
                f"cannot ask the graph who publishes the silent cameras' topics: {err}",
                throttle_duration_sec=LOG_THROTTLE_S,
            )
            publishers = {}
        level, message, values = self._live.diagnostics(publishers, self._image_type)
        name, cameras = f"{self.get_name()}: pipeline", ",".join(self.params.camera_names)
        stamp_ns = self.get_clock().now().nanoseconds
        self._diag_pub.publish(diagnostic_array_msg(level, name, message, cameras, values, stamp_ns))

    def _silent_publishers(self) -> dict[str, list[PublisherQos]]:
        """Who publishes the image topic of each camera without images, with which QoS (from the graph)."""
        p = self.params
        found = {}
        for camera in self._live.silent_cameras():
            topic = self.resolve_topic_name(p.image_topics[p.camera_names.index(camera)])
            found[camera] = [
                PublisherQos(
                    _node_name(i.node_namespace, i.node_name),
                    RELIABLE if i.qos_profile.reliability == ReliabilityPolicy.RELIABLE else BEST_EFFORT,
                    i.topic_type,
                )
                for i in self.get_publishers_info_by_topic(topic)
            ]
        return found

    def stop(self) -> None:
        """Stop the worker thread and log the summary (before ``destroy_node``, while the context is
        valid, so that the line reaches /rosout)."""
        self.get_logger().info(f"stopped: {self._live.stop()}")


def _rectification(p: DetectorParams) -> str:
    """Which camera matrix the images use, for the start-up line: "rectified: P", "raw: K" or per camera."""
    kinds = ["rectified: P" if p.sensors.rectified(t) else "raw: K" for t in p.image_topics]
    return kinds[0] if len(set(kinds)) == 1 else ", ".join(f"{n} {k}" for n, k in zip(p.camera_names, kinds))


# what rmw reports for an endpoint whose participant's node names are not discovered yet
UNKNOWN_NODE_NAME = "_NODE_NAME_UNKNOWN_"


def _node_name(namespace: str, name: str) -> str:
    """The fully qualified node name of a graph endpoint; "" while discovery has not named it."""
    return "" if name == UNKNOWN_NODE_NAME else f"{namespace.rstrip('/')}/{name}"


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
