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


def _p_matrix(info: Any) -> np.ndarray | None:
    """P (3, 4) of a CameraInfo; None where it is unset (all zero, as some drivers leave it)."""
    p = getattr(info, "p", None)
    p = np.asarray(p if p is not None else [], dtype=np.float64).reshape(-1)
    if p.size != 12 or not np.any(p != 0):
        return None
    return p.reshape(3, 4)


def image_intrinsics(info: Any, rectified: bool) -> np.ndarray:
    """The camera matrix (3, 3) of the images a CameraInfo goes with. ROS defines K as the raw (distorted)
    image's and P's left 3x3 as the rectified image's; image_proc publishes rectified images beside the
    raw camera's CameraInfo, so rectified images take P (K where P is unset), raw ones K.
    ``ValueError`` names a K without 9 values."""
    k = np.asarray(info.k, dtype=np.float64).reshape(-1)
    if k.size != 9:
        raise ValueError(f"K has {k.size} values, expected 9")
    p = _p_matrix(info) if rectified else None
    return (p[:, :3] if p is not None else k.reshape(3, 3)).copy()


def distortion_assumed(info: Any, rectified: bool) -> str | None:
    """What is assumed of a CameraInfo whose distortion model has a non-zero coefficient, or None where
    nothing is. Rectified images with a P need nothing: the coefficients describe the raw image they were
    made from. Raw images of a distorting lens (and rectified ones without P) are used as if rectified,
    with K alone, which places boxes off."""
    d = getattr(info, "d", None)
    d = np.asarray(d if d is not None else [], dtype=np.float64).reshape(-1)
    if not np.any(d != 0) or (rectified and _p_matrix(info) is not None):
        return None
    model = str(getattr(info, "distortion_model", "") or "unnamed")
    coefficients = ", ".join(f"{v:.4g}" for v in d[:5]) + (", ..." if d.size > 5 else "")
    if rectified:
        return (
            f"distortion model {model!r} with non-zero coefficients [{coefficients}] and no P: its "
            "rectified images are used with K, the raw image's camera matrix; publish the CameraInfo "
            "with P (image_proc's camera_info does)"
        )
    return (
        f"distortion model {model!r} with non-zero coefficients [{coefficients}]: its raw images are used "
        "as if rectified (K only), so a distorting lens places boxes off; subscribe to rectified images "
        "(image_proc's image_rect) or set image_rectification if these are rectified"
    )
