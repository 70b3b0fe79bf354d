"""Sensor bags <-> frames: rosbag2 writer and reader, PointCloud2 <-> arrays, ApproximateTimeSync, tf tree,
and the assembly of synchronised multi-camera :class:`Frame` s. Imports no ROS (rosbags only)."""

from simdistill_ros.frames.assembly import FrameReader, FrameStats, read_frames
from simdistill_ros.frames.bag_reader import BagError, BagReader
from simdistill_ros.frames.bag_writer import SensorBagWriter
from simdistill_ros.frames.frame import Frame
from simdistill_ros.frames.layouts import BagSensors, CameraTopics, resolve_sensors
from simdistill_ros.frames.pointcloud import pointcloud2_to_array, points_to_pointcloud2_fields
from simdistill_ros.frames.sensors import NUSCENES_CAMERAS, SensorConfig, load_parameters_file
from simdistill_ros.frames.sync import ApproximateTimeSync, SyncedSet
from simdistill_ros.frames.tf_tree import ExtrapolationError, TransformTree
from simdistill_ros.frames.topics import TopicNames

__all__ = [
    "ApproximateTimeSync",
    "BagSensors",
    "NUSCENES_CAMERAS",
    "SensorConfig",
    "load_parameters_file",
    "resolve_sensors",
    "BagError",
    "BagReader",
    "CameraTopics",
    "ExtrapolationError",
    "Frame",
    "FrameReader",
    "FrameStats",
    "SensorBagWriter",
    "SyncedSet",
    "TopicNames",
    "TransformTree",
    "pointcloud2_to_array",
    "points_to_pointcloud2_fields",
    "read_frames",
]
