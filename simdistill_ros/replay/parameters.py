"""The parameters of ``teacher_replay_node``, declared once (name, default, description). All are read-only:
the node reads them once and replays. No ROS, no torch: ``teacher_replay_node --help`` reads this."""

from __future__ import annotations

from simdistill_ros.defaults import DEFAULT_TEACHER, REPLAY_SCORE_THRESHOLD
from simdistill_ros.detection.parameters import Param
from simdistill_ros.frames.topics import TopicNames

_TOPICS = TopicNames()

# name -> (default, description). config/teacher_replay.yaml lists exactly these.
_DECLARED: dict[str, tuple] = {
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
    "image_compressed_template": (_TOPICS.image_compressed_template, "compressed image topic, {camera}"),
    "image_raw_template": (_TOPICS.image_raw_template, "raw image topic, {camera} is the camera name"),
    "camera_info_template": (_TOPICS.camera_info_template, "camera_info topic, {camera}"),
    "lidar_topic": (_TOPICS.lidar, "LiDAR sensor_msgs/PointCloud2 topic in the bags"),
    "tf_topic": (_TOPICS.tf, "dynamic tf topic in the bags"),
    "tf_static_topic": (_TOPICS.tf_static, "static tf topic in the bags"),
    "base_frame": ("base_link", "frame of the published boxes (the bags' vehicle frame)"),
    "wait_for_subscribers": (0, "wait until this many subscribers listen before replaying"),
    "wait_timeout_s": (10.0, "give up waiting for subscribers after this long (then replay anyway)"),
}
PARAMETERS: dict[str, Param] = {name: Param(*entry) for name, entry in _DECLARED.items()}
