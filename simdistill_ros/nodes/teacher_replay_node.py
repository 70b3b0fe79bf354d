"""`teacher_replay_node`: the offline teacher replay as a ROS 2 executable.

Reads the bags itself (every message, deterministic; no live topics, no dropped messages), runs the teacher,
writes the target store (see :mod:`simdistill_ros.replay`) and publishes each frame's teacher boxes as
vision_msgs/Detection3DArray on ``~/teacher_detections``. It exits when the bags are done.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from simdistill_ros.errors import UserError
from simdistill_ros.frames.sensors import SensorConfig
from simdistill_ros.geometry import boxes_from_array
from simdistill_ros.nodes.stop_signal import StopSignal
from simdistill_ros.nodes.usage import replay_usage, wants_help
from simdistill_ros.outputs import VISION_MSGS
from simdistill_ros.outputs.ros import message_class, output_messages
from simdistill_ros.replay.core import TeacherReplayer, parse_shard
from simdistill_ros.replay.parameters import PARAMETERS


class TeacherReplayNode(Node):
    """Declares the parameters and the publisher; :meth:`run` does the replay."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("teacher_replay_node", **kwargs)
        for name, param in PARAMETERS.items():  # all read-only: the replay reads them once
            desc = ParameterDescriptor(
                description=param.description, read_only=True, dynamic_typing=name == "bags"
            )
            self.declare_parameter(name, param.default, desc)
        qos = QoSProfile(
            depth=100, history=QoSHistoryPolicy.KEEP_LAST, reliability=QoSReliabilityPolicy.RELIABLE
        )
        self.publisher = self.create_publisher(message_class(VISION_MSGS), "~/teacher_detections", qos)

    def param(self, name: str) -> object:
        return self.get_parameter(name).value

    def bags(self) -> list[str]:
        value = self.param("bags")
        bags = [value] if isinstance(value, str) else list(value or [])
        return [b for b in bags if b]

    def wait_for_subscribers(self) -> None:
        wanted = int(self.param("wait_for_subscribers"))
        deadline = time.monotonic() + float(self.param("wait_timeout_s"))
        while self.publisher.get_subscription_count() < wanted and time.monotonic() < deadline:
            time.sleep(0.05)
        have = self.publisher.get_subscription_count()
        if have < wanted:
            self.get_logger().warning(f"only {have} of {wanted} subscribers after the wait; replaying anyway")

    def run(self) -> int:
        bags, store = self.bags(), str(self.param("output_store"))
        if not bags or not store:
            self.get_logger().error("set the parameters 'bags' (rosbag2 paths) and 'output_store'")
            return 2
        sensors = SensorConfig.from_parameters({name: self.param(name) for name in PARAMETERS})
        replayer = TeacherReplayer(
            str(self.param("teacher")),
            store,
            device=str(self.param("device")),
            shard=parse_shard(str(self.param("shard"))),
            data=str(self.param("data")) or None,
            sensors=sensors,
            frames_per_shard=int(self.param("frames_per_shard")),
            score_threshold=float(self.param("score_threshold")),
        )
        frame_id = str(self.param("base_frame"))

        def publish(frame: object, stored: object) -> None:
            boxes = boxes_from_array(stored.det_boxes, stored.det_labels, stored.det_scores)
            self.publisher.publish(
                output_messages(boxes, stored.stamp_ns, frame_id, [VISION_MSGS])[VISION_MSGS]
            )

        self.wait_for_subscribers()
        self.get_logger().info(f"replaying {len(bags)} bags into {store} on {replayer.device}")
        try:
            summary = replayer.replay(bags, on_frame=publish)
        finally:
            replayer.close()
        for line in str(summary).splitlines():
            self.get_logger().info(line)
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Replay, then exit (0 done, 2 bad parameters, 130 interrupted). ``--help`` prints the parameters.
    SIGINT/SIGTERM interrupt the replay with the rclpy context still valid, so the last lines are logged."""
    if wants_help(argv):
        print(replay_usage())
        return 0
    rclpy.init(
        args=list(argv) if argv is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO
    )
    with StopSignal(interrupt=True):
        node = TeacherReplayNode()
        try:
            code = node.run()
            time.sleep(0.5)  # let reliable publications reach late subscribers before the process ends
        except (UserError, FileNotFoundError) as err:
            node.get_logger().error(str(err))
            code = 2
        except KeyboardInterrupt:
            node.get_logger().info("interrupted: the frames stored so far are kept (a re-run skips them)")
            code = 130
        finally:
            node.destroy_node()
            rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
