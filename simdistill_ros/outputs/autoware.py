"""Box3D lists <-> the fields of autoware_perception_msgs/DetectedObjects (no ROS).

As Autoware's detectors (autoware_tensorrt_bevdet, autoware_lidar_centerpoint) fill the message, except the
twist:

- ``existence_probability`` = the detection score; one ``classification`` with the Autoware label and
  probability 1.0 (the head scores one class per box: its score is already the existence probability);
- ``kinematics.pose_with_covariance.pose``: the box centre and yaw in the header's frame (covariance
  unset: ``has_position_covariance`` false);
- ``kinematics.twist_with_covariance.twist.linear``: the head's velocity (vx, vy in the base frame) rotated
  by -yaw into the object's frame, the whole vector (``has_twist`` true, no covariance). Autoware's
  detectors write the speed into ``linear.x`` and 2 (velocity heading - yaw) into ``angular.z`` instead;
  both agree for a box moving along its heading;
- ``shape``: BOUNDING_BOX with dimensions x = length, y = width, z = height.

Labels: car, truck, bus, trailer, motorcycle, bicycle and pedestrian map to Autoware's labels of the same
names; construction_vehicle, barrier and traffic_cone to UNKNOWN, as autoware_tensorrt_bevdet maps its
nuScenes classes (its getSemanticType names only those seven).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simdistill_ros.geometry import Box3D, quat_to_yaw, quat_xyzw_to_wxyz
from simdistill_ros.outputs import OutputsError

# autoware_perception_msgs/ObjectClassification labels (constants of the message definition)
UNKNOWN, CAR, TRUCK, BUS, TRAILER, MOTORCYCLE, BICYCLE, PEDESTRIAN = range(8)
AUTOWARE_LABEL = {
    "car": CAR,
    "truck": TRUCK,
    "construction_vehicle": UNKNOWN,
    "bus": BUS,
    "trailer": TRAILER,
    "barrier": UNKNOWN,
    "motorcycle": MOTORCYCLE,
    "bicycle": BICYCLE,
    "pedestrian": PEDESTRIAN,
    "traffic_cone": UNKNOWN,
}
# The way back, for the labels that name one nuScenes class (UNKNOWN names three)
NUSCENES_CLASS = {label: name for name, label in AUTOWARE_LABEL.items() if label != UNKNOWN}
# DetectedObjectKinematics.orientation_availability
ORIENTATION = {"unavailable": 0, "sign_unknown": 1, "available": 2}
# The shipped models reverse about a third of the cars they find (README: "Orientation"): their yaw is known
# only up to the sign, which is what SIGN_UNKNOWN tells a tracker.
DEFAULT_ORIENTATION = "sign_unknown"
SHAPE_BOUNDING_BOX = 0  # Shape.BOUNDING_BOX


@dataclass
class DetectedObjectFields:
    """One autoware_perception_msgs/DetectedObject (see the module docstring for each field's meaning)."""

    existence_probability: float
    label: int
    position: tuple[float, float, float]
    orientation_xyzw: tuple[float, float, float, float]
    orientation_availability: int
    linear_velocity: tuple[float, float, float]  # in the object's frame (x along its heading), m/s
    dimensions: tuple[float, float, float]  # length, width, height
    classification_probability: float = 1.0
    has_twist: bool = True


@dataclass
class DetectedObjectsFields:
    """autoware_perception_msgs/DetectedObjects: header (the frame's stamp, the base frame) and objects."""

    stamp_ns: int
    frame_id: str
    objects: list[DetectedObjectFields] = field(default_factory=list)


def orientation_availability(name: str) -> int:
    """The DetectedObjectKinematics constant of ``unavailable``, ``sign_unknown`` or ``available``."""
    if name not in ORIENTATION:
        raise OutputsError(f"orientation availability must be one of {', '.join(ORIENTATION)}, got {name!r}")
    return ORIENTATION[name]


def to_object_frame(velocity_xy: np.ndarray, yaw: float) -> tuple[float, float]:
    """A base-frame (vx, vy) in the frame of an object with heading ``yaw`` (rotated by -yaw)."""
    c, s = np.cos(yaw), np.sin(yaw)
    vx, vy = float(velocity_xy[0]), float(velocity_xy[1])
    return c * vx + s * vy, -s * vx + c * vy


def to_base_frame(linear_xy: tuple[float, float], yaw: float) -> np.ndarray:
    """Inverse of :func:`to_object_frame`."""
    c, s = np.cos(yaw), np.sin(yaw)
    x, y = linear_xy
    return np.array([c * x - s * y, s * x + c * y])


def detected_objects_fields(
    boxes: list[Box3D], stamp_ns: int, frame_id: str, orientation: str = DEFAULT_ORIENTATION
) -> DetectedObjectsFields:
    """Fields of a DetectedObjects of base-frame ``boxes`` (in the given order; the same order as the
    Detection3DArray of the frame)."""
    availability = orientation_availability(orientation)
    objects = []
    for b in boxes:
        pos, q = b.ros_pose()
        vx, vy = to_object_frame(b.velocity, b.yaw)
        objects.append(
            DetectedObjectFields(
                existence_probability=float(b.score),
                label=AUTOWARE_LABEL[b.label],
                position=tuple(float(v) for v in pos),
                orientation_xyzw=tuple(float(v) for v in q),
                orientation_availability=availability,
                linear_velocity=(vx, vy, 0.0),
                dimensions=tuple(float(v) for v in b.size),
            )
        )
    return DetectedObjectsFields(int(stamp_ns), frame_id, objects)


def _yaw(orientation: Any) -> float:
    o = orientation
    return quat_to_yaw(quat_xyzw_to_wxyz(np.array([o.x, o.y, o.z, o.w])))


def object_velocities(msg: Any) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Per object of a DetectedObjects (rclpy or rosbags): (centre (3,), base-frame velocity (2,), None
    without ``has_twist``)."""
    out = []
    for obj in msg.objects:
        pose = obj.kinematics.pose_with_covariance.pose
        centre = np.array([pose.position.x, pose.position.y, pose.position.z])
        velocity = None
        if obj.kinematics.has_twist:
            lin = obj.kinematics.twist_with_covariance.twist.linear
            velocity = to_base_frame((lin.x, lin.y), _yaw(pose.orientation))
        out.append((centre, velocity))
    return out


def boxes_from_detected_objects(msg: Any) -> tuple[list[Box3D], int]:
    """(Box3D list with velocities, objects left out) of a DetectedObjects. Objects labelled UNKNOWN are
    left out: the label does not say which nuScenes class (construction vehicle, barrier, cone) they were."""
    boxes, unknown = [], 0
    for obj, (centre, velocity) in zip(msg.objects, object_velocities(msg)):
        label = obj.classification[0].label if obj.classification else UNKNOWN
        if label not in NUSCENES_CLASS:
            unknown += 1
            continue
        pose = obj.kinematics.pose_with_covariance.pose
        d = obj.shape.dimensions
        boxes.append(
            Box3D(
                centre,
                [d.x, d.y, d.z],
                _yaw(pose.orientation),
                NUSCENES_CLASS[label],
                velocity if velocity is not None else np.zeros(2),
                float(obj.existence_probability),
            )
        )
    return boxes, unknown


def with_published_velocity(boxes: list[Box3D], msg: Any, tolerance_m: float = 1e-3) -> list[Box3D]:
    """``boxes`` (read from the frame's Detection3DArray, which keeps the class names) with the velocity the
    frame's DetectedObjects carries. Both list a frame's boxes in the same order; raises
    :class:`OutputsError` when the two messages do not hold the same boxes."""
    objects = object_velocities(msg)
    if len(objects) != len(boxes):
        raise OutputsError(
            f"DetectedObjects holds {len(objects)} objects, Detection3DArray {len(boxes)} boxes"
        )
    out = []
    for i, (b, (centre, velocity)) in enumerate(zip(boxes, objects)):
        if np.abs(centre - b.center).max() > tolerance_m:
            raise OutputsError(
                f"object {i} lies at {centre.round(3)} but detection {i} at {b.center.round(3)}"
            )
        v = velocity if velocity is not None else np.zeros(2)
        out.append(Box3D(b.center, b.size, b.yaw, b.label, v, b.score, b.instance_id))
    return out
