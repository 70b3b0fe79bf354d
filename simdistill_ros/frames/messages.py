"""Message types and the small conversions at the message edge (stamps, headers, transforms).

Messages are built with the project's rosbags typestore (``simdistill_ros.interfaces.typestore()``, the
ROS 2 messages plus vision_msgs). Readers only use attribute
access, so rosbags and rclpy message objects both work with the ``*_from_msg`` helpers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simdistill_ros.geometry import Transform, quat_wxyz_to_xyzw, quat_xyzw_to_wxyz
from simdistill_ros.interfaces import typestore as project_typestore

COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POINT_CLOUD2 = "sensor_msgs/msg/PointCloud2"
POINT_FIELD = "sensor_msgs/msg/PointField"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
IMAGE_TYPES = (COMPRESSED_IMAGE, IMAGE)


def typestore() -> Any:
    """The typestore used to build and serialise messages (cached)."""
    return project_typestore()


def normalize_msgtype(msgtype: str) -> str:
    """``sensor_msgs/msg/Image`` for both ``sensor_msgs/msg/Image`` and ROS 1 style ``sensor_msgs/Image``."""
    parts = msgtype.split("/")
    return f"{parts[0]}/msg/{parts[1]}" if len(parts) == 2 else msgtype


def stamp_to_ns(stamp: Any) -> int:
    """Integer nanoseconds of a builtin_interfaces/Time (``sec``/``nanosec``)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def time_msg(stamp_ns: int, store=None):
    store = store or typestore()
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)  # floor division keeps nanosec in [0, 1e9)
    return store.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)


def header_msg(stamp_ns: int, frame_id: str, store=None):
    store = store or typestore()
    return store.types["std_msgs/msg/Header"](stamp=time_msg(stamp_ns, store), frame_id=frame_id)


def transform_msg(t: Transform, store=None):
    """geometry_msgs/Transform of ``t`` (quaternion reordered to ROS's x, y, z, w)."""
    store = store or typestore()
    x, y, z = (float(v) for v in t.translation)
    qx, qy, qz, qw = (float(v) for v in quat_wxyz_to_xyzw(t.quat_wxyz))
    return store.types["geometry_msgs/msg/Transform"](
        translation=store.types["geometry_msgs/msg/Vector3"](x=x, y=y, z=z),
        rotation=store.types["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=qw),
    )


def transform_from_msg(msg: Any) -> Transform:
    """Transform of a geometry_msgs/Transform."""
    tr, q = msg.translation, msg.rotation
    return Transform.from_quat(
        np.array([tr.x, tr.y, tr.z], dtype=np.float64),
        quat_xyzw_to_wxyz(np.array([q.x, q.y, q.z, q.w], dtype=np.float64)),
    )


def distortion_assumed(info: Any) -> str | None:
    """What is assumed of a CameraInfo whose distortion model has a non-zero coefficient (a raw image of a
    distorting lens, or a rectified image published with its raw camera's D): the images are used as if
    rectified, with K alone. None for a CameraInfo without distortion."""
    d = getattr(info, "d", None)
    d = np.asarray(d if d is not None else [], dtype=np.float64).reshape(-1)
    if not np.any(d != 0):
        return None
    model = str(getattr(info, "distortion_model", "") or "unnamed")
    coefficients = ", ".join(f"{v:.4g}" for v in d[:5]) + (", ..." if d.size > 5 else "")
    return (
        f"distortion model {model!r} with non-zero coefficients [{coefficients}]: its images are used as "
        "if rectified (K only; D, R and P ignored), so raw images of a distorting lens place boxes off; "
        "subscribe to rectified images (image_proc) with an undistorted CameraInfo"
    )
