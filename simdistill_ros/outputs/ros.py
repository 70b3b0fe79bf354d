"""The output fields copied into real ROS 2 message classes: the rclpy edge of :mod:`simdistill_ros.outputs`.

Imported only where rclpy's message packages exist (the nodes, ``simdistill detect``); the message imports
are inside the functions so that importing this module costs nothing. autoware_perception_msgs is needed
only when the ``autoware`` output is chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simdistill_ros.geometry import Box3D
from simdistill_ros.outputs import AUTOWARE, VISION_MSGS, OutputsError
from simdistill_ros.outputs.autoware import (
    DEFAULT_ORIENTATION,
    DetectedObjectsFields,
    detected_objects_fields,
)
from simdistill_ros.outputs.markers import MarkerFields, marker_fields
from simdistill_ros.outputs.vision import DetectionArrayFields, detection_array_fields


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


def message_class(output: str) -> Any:
    """The rclpy class an output publishes; :class:`OutputsError` when its package is not installed."""
    if output == VISION_MSGS:
        from vision_msgs.msg import Detection3DArray

        return Detection3DArray
    try:
        from autoware_perception_msgs.msg import DetectedObjects
    except ImportError:
        raise OutputsError(
            "the autoware output needs autoware_perception_msgs: source an Autoware workspace (or install "
            "ros-$ROS_DISTRO-autoware-perception-msgs); pip-only environments get it from tools/setup_env.sh"
        ) from None
    return DetectedObjects


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


def detected_objects_msg(fields: DetectedObjectsFields) -> Any:
    """autoware_perception_msgs/DetectedObjects."""
    from geometry_msgs.msg import PoseWithCovariance, Twist, TwistWithCovariance, Vector3

    detected_objects = message_class(AUTOWARE)  # the one clear line when the package is missing
    from autoware_perception_msgs.msg import (
        DetectedObject,
        DetectedObjectKinematics,
        ObjectClassification,
        Shape,
    )

    out = detected_objects(header=header_msg(fields.stamp_ns, fields.frame_id))
    for o in fields.objects:
        vx, vy, vz = o.linear_velocity
        lx, ly, lz = o.dimensions
        kinematics = DetectedObjectKinematics(
            pose_with_covariance=PoseWithCovariance(pose=_pose(o.position, o.orientation_xyzw)),
            has_position_covariance=False,
            orientation_availability=o.orientation_availability,
            twist_with_covariance=TwistWithCovariance(twist=Twist(linear=Vector3(x=vx, y=vy, z=vz))),
            has_twist=o.has_twist,
            has_twist_covariance=False,
        )
        out.objects.append(
            DetectedObject(
                existence_probability=o.existence_probability,
                classification=[
                    ObjectClassification(label=o.label, probability=o.classification_probability)
                ],
                kinematics=kinematics,
                shape=Shape(type=Shape.BOUNDING_BOX, dimensions=Vector3(x=lx, y=ly, z=lz)),
            )
        )
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


def output_messages(
    boxes: list[Box3D],
    stamp_ns: int,
    frame_id: str,
    outputs: Sequence[str],
    orientation: str = DEFAULT_ORIENTATION,
) -> dict[str, Any]:
    """The detection messages of one frame, by output name (``vision_msgs``, ``autoware``), in ``outputs``
    order; the same boxes in the same order in each."""
    out: dict[str, Any] = {}
    for output in outputs:
        if output == VISION_MSGS:
            out[output] = detection_array_msg(detection_array_fields(boxes, stamp_ns, frame_id))
        elif output == AUTOWARE:
            out[output] = detected_objects_msg(
                detected_objects_fields(boxes, stamp_ns, frame_id, orientation)
            )
        else:
            raise OutputsError(f"unknown output {output!r}")
    return out


def markers_msg(boxes: list[Box3D], stamp_ns: int, frame_id: str) -> Any:
    """The frame's MarkerArray (boxes, labels, velocity arrows)."""
    return marker_array_msg(marker_fields(boxes), stamp_ns, frame_id)
