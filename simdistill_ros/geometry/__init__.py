"""Geometry core: transforms, cameras, rigs and boxes. Imports neither ROS nor torch."""

from simdistill_ros.geometry.boxes import BOX_FIELDS, Box3D, boxes_from_array, boxes_to_array, points_in_boxes
from simdistill_ros.geometry.camera import (
    CalibrationError,
    CameraRig,
    PinholeCamera,
    camera_mount,
    intrinsics_problem,
    nuscenes_like_rig,
)
from simdistill_ros.geometry.transforms import (
    Transform,
    matrix_to_quat,
    quat_to_matrix,
    quat_to_yaw,
    quat_wxyz_to_xyzw,
    quat_xyzw_to_wxyz,
    yaw_to_quat,
)

__all__ = [
    "BOX_FIELDS",
    "Box3D",
    "CalibrationError",
    "CameraRig",
    "PinholeCamera",
    "Transform",
    "boxes_from_array",
    "boxes_to_array",
    "camera_mount",
    "intrinsics_problem",
    "matrix_to_quat",
    "nuscenes_like_rig",
    "points_in_boxes",
    "quat_to_matrix",
    "quat_to_yaw",
    "quat_wxyz_to_xyzw",
    "quat_xyzw_to_wxyz",
    "yaw_to_quat",
]
