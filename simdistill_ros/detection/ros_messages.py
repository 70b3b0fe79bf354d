"""Copy the ROS-free fields (:mod:`simdistill_ros.detection.messages`) into real ROS 2 message classes.

Imported only where rclpy's message packages exist (the node, ``simdistill detect``); the imports are
inside the functions so that importing this module costs nothing.
"""

from __future__ import annotations

from typing import Any

from simdistill_ros.detection.messages import DetectionArrayFields, MarkerFields


def time_msg(stamp_ns: int) -> Any:
    """builtin_interfaces/Time of integer nanoseconds."""
    from builtin_interfaces.msg import Time

    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


def header_msg(stamp_ns: int, frame_id: str) -> Any:
    from std_msgs.msg import Header

    return Header(stamp=time_msg(stamp_ns), frame_id=frame_id)


def _pose(position: tuple, orientation_xyzw: tuple) -> Any:
    from geometry_msgs.msg import Point, Pose, Quaternion

    x, y, z = position
    qx, qy, qz, qw = orientation_xyzw
    return Pose(position=Point(x=x, y=y, z=z), orientation=Quaternion(x=qx, y=qy, z=qz, w=qw))


def detection_array_msg(fields: DetectionArrayFields) -> Any:
    """vision_msgs/Detection3DArray; every Detection3D carries the array's header too."""
    from geometry_msgs.msg import PoseWithCovariance, Vector3
    from vision_msgs.msg import (
        BoundingBox3D,
        Detection3D,
        Detection3DArray,
        ObjectHypothesis,
        ObjectHypothesisWithPose,
    )

    header = header_msg(fields.stamp_ns, fields.frame_id)
    out = Detection3DArray(header=header)
    for d in fields.detections:
        pose = _pose(d.position, d.orientation_xyzw)
        hyp = ObjectHypothesisWithPose(
            hypothesis=ObjectHypothesis(class_id=d.class_id, score=d.score),
            pose=PoseWithCovariance(pose=pose),
        )
        sx, sy, sz = d.size
        bbox = BoundingBox3D(center=pose, size=Vector3(x=sx, y=sy, z=sz))
        out.detections.append(Detection3D(header=header, results=[hyp], bbox=bbox, id=d.id))
    return out


def marker_array_msg(markers: list[MarkerFields], stamp_ns: int, frame_id: str) -> Any:
    """visualization_msgs/MarkerArray of marker fields, all with the frame's header."""
    from geometry_msgs.msg import Point, Vector3
    from std_msgs.msg import ColorRGBA
    from visualization_msgs.msg import Marker, MarkerArray

    header = header_msg(stamp_ns, frame_id)
    out = MarkerArray()
    for mk in markers:
        r, g, b, a = mk.color_rgba
        sx, sy, sz = mk.scale
        out.markers.append(
            Marker(
                header=header,
                ns=mk.ns,
                id=mk.id,
                type=mk.type,
                action=mk.action,
                pose=_pose(mk.position, mk.orientation_xyzw),
                scale=Vector3(x=sx, y=sy, z=sz),
                color=ColorRGBA(r=r, g=g, b=b, a=a),
                points=[Point(x=x, y=y, z=z) for x, y, z in mk.points],
                text=mk.text,
            )
        )
    return out


def image_msg(rgb: Any, stamp_ns: int, frame_id: str) -> Any:
    """sensor_msgs/Image (rgb8) of an (H, W, 3) uint8 array."""
    from sensor_msgs.msg import Image

    h, w = rgb.shape[:2]
    data = rgb.tobytes() if rgb.flags.c_contiguous else rgb.copy().tobytes()
    return Image(
        header=header_msg(stamp_ns, frame_id), height=h, width=w, encoding="rgb8", step=w * 3, data=data
    )


def diagnostic_array_msg(
    level: int, name: str, message: str, hardware_id: str, values: dict[str, str], stamp_ns: int
) -> Any:
    """diagnostic_msgs/DiagnosticArray with one status; ``level`` 0 OK, 1 WARN, 2 ERROR."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus(
        level=(DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR)[level],
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in values.items()],
    )
    return DiagnosticArray(header=header_msg(stamp_ns, ""), status=[status])
