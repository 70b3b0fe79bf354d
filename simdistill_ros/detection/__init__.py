"""The detector without ROS: one synchronised multi-camera frame in, Box3D detections out, and the fields
of the ROS messages that carry them (Detection3DArray, MarkerArray). Imports no rclpy."""

from simdistill_ros.detection.core import CameraFrame, DetectorCore, FrameInputError, FrameResult

__all__ = ["CameraFrame", "DetectorCore", "FrameInputError", "FrameResult"]
