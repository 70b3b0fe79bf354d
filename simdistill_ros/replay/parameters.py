"""The parameters of ``teacher_replay_node``, declared once (name, default, description). All are read-only:
the node reads them once and replays. No ROS, no torch: ``teacher_replay_node --help`` reads this."""

from __future__ import annotations

from simdistill_ros.defaults import DEFAULT_TEACHER, REPLAY_SCORE_THRESHOLD
from simdistill_ros.detection.parameters import Param

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
    # The sensor configuration (frames.sensors.SensorConfig, as detector_node's): '' / [''] is unset,
    # i.e. recognised from each bag's layout, the cameras in the teacher's order (its meta.json).
    "camera_names": ([""], "cameras in model order ([''] : the teacher's cameras)"),
    "image_topic": ("", "image topic template with {camera} ('': recognised from the bag)"),
    "camera_info_topic": ("", "camera_info topic template with {camera} ('': recognised)"),
    "image_topics": ([""], "explicit image topics, one per camera_names entry"),
    "camera_info_topics": ([""], "explicit camera_info topics, one per camera_names entry"),
    "image_rectification": (
        "auto",
        "auto | rectified | raw: rectified images use CameraInfo's P, raw ones K (auto: from the topic name)",
    ),
    "lidar_topic": ("", "LiDAR PointCloud2 topic in the bags ('': /LIDAR_TOP or the only point cloud)"),
    "tf_topic": ("/tf", "dynamic tf topic in the bags"),
    "tf_static_topic": ("/tf_static", "static tf topic in the bags"),
    "base_frame": ("base_link", "frame of the published boxes (the bags' vehicle frame)"),
    "wait_for_subscribers": (0, "wait until this many subscribers listen before replaying"),
    "wait_timeout_s": (10.0, "give up waiting for subscribers after this long (then replay anyway)"),
}
PARAMETERS: dict[str, Param] = {name: Param(*entry) for name, entry in _DECLARED.items()}
