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

from simdistill_ros.defaults import DEFAULT_TEACHER, REPLAY_SCORE_THRESHOLD
from simdistill_ros.detection.messages import detection_array_fields
from simdistill_ros.detection.ros_messages import detection_array_msg
from simdistill_ros.errors import UserError
from simdistill_ros.frames.sensors import SensorConfig
from simdistill_ros.geometry import boxes_from_array
from simdistill_ros.replay.core import TeacherReplayer, parse_shard

# name -> (default, description). The yaml in config/teacher_replay.yaml lists exactly these.
PARAMETERS: dict[str, tuple[object, str]] = {
    "bags": ([""], "rosbag2 paths (mcap or sqlite3) to replay; a single string is one bag"),
    "teacher": (DEFAULT_TEACHER, "teacher checkpoint directory or shipped model name"),
    "output_store": ("", "target store directory (created; re-runs skip frames already stored)"),
    "device": ("auto", "auto, cpu or cuda"),
    "shard": ("0/1", "I/N: replay every N-th bag (sorted by path) starting at I"),
    "data": ("", "nuScenes-format dataset root whose ground truth is stored with the targets ('' for none)"),
    "frames_per_shard": (16, "frames per shard file of the store"),
    "score_threshold": (
        REPLAY_SCORE_THRESHOLD,
        "teacher boxes below this score are neither stored nor published",
    ),
    # The sensor configuration (frames.sensors.SensorConfig, as detector_node's): '' / [''] is unset,
    # i.e. recognised from each bag's layout, the cameras in the teacher's order (its meta.json).
    "camera_names": ([""], "cameras in model order ([''] : the teacher's cameras)"),
    "image_topic": ("", "image topic template with {camera} ('': recognised from the bag)"),
    "camera_info_topic": ("", "camera_info topic template with {camera} ('': recognised)"),
    "image_topics": ([""], "explicit image topics, one per camera_names entry"),
    "camera_info_topics": ([""], "explicit camera_info topics, one per camera_names entry"),
    "lidar_topic": ("", "LiDAR PointCloud2 topic in the bags ('': /LIDAR_TOP or the only point cloud)"),
    "tf_topic": ("/tf", "dynamic tf topic in the bags"),
    "tf_static_topic": ("/tf_static", "static tf topic in the bags"),
    "base_frame": ("base_link", "frame of the published boxes (the bags' vehicle frame)"),
    "wait_for_subscribers": (0, "wait until this many subscribers listen before replaying"),
    "wait_timeout_s": (10.0, "give up waiting for subscribers after this long (then replay anyway)"),
}


class TeacherReplayNode(Node):
    """Declares the parameters and the publisher; :meth:`run` does the replay."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("teacher_replay_node", **kwargs)
        for name, (default, description) in PARAMETERS.items():
            self.declare_parameter(
                name, default, ParameterDescriptor(description=description, dynamic_typing=name == "bags")
            )
        qos = QoSProfile(
            depth=100, history=QoSHistoryPolicy.KEEP_LAST, reliability=QoSReliabilityPolicy.RELIABLE
        )
        from vision_msgs.msg import Detection3DArray

        self.publisher = self.create_publisher(Detection3DArray, "~/teacher_detections", qos)

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
                detection_array_msg(detection_array_fields(boxes, stored.stamp_ns, frame_id))
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
    rclpy.init(args=list(argv) if argv is not None else sys.argv)
    node = TeacherReplayNode()
    try:
        code = node.run()
        time.sleep(0.5)  # let reliable publications reach late subscribers before the process ends
    except (UserError, FileNotFoundError) as err:
        node.get_logger().error(str(err))
        code = 2
    except KeyboardInterrupt:
        code = 130
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
