"""The output adapter (simdistill_ros.outputs): which box field goes where in Detection3DArray and
DetectedObjects, the nuScenes -> Autoware labels, the velocity in the object's frame, the velocity arrows,
and the way back (rosbags messages without ROS; rclpy messages where the packages are built)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simdistill_ros.classes import NUSCENES_CLASSES
from simdistill_ros.geometry import Box3D
from simdistill_ros.outputs import OutputsError, parse_outputs
from simdistill_ros.outputs.autoware import (
    AUTOWARE_LABEL,
    BICYCLE,
    BUS,
    CAR,
    MOTORCYCLE,
    ORIENTATION,
    PEDESTRIAN,
    TRAILER,
    TRUCK,
    UNKNOWN,
    boxes_from_detected_objects,
    detected_objects_fields,
    to_object_frame,
    with_published_velocity,
)
from simdistill_ros.outputs.markers import MARKER_ARROW, marker_fields
from simdistill_ros.outputs.records import box_from_record, box_record
from simdistill_ros.outputs.vision import boxes_from_detection_array, detection_array_fields

STAMP = 1_700_000_000_123_456_789


def boxes() -> list[Box3D]:
    return [
        # heading 90 degrees left, driving forward at 5 m/s: +y in the base frame, +x in its own
        Box3D([10.0, -2.0, 0.8], [4.5, 1.9, 1.6], math.pi / 2, "car", [0.0, 5.0], score=0.9),
        Box3D([5.0, 3.0, 0.9], [0.6, 0.7, 1.8], -2.0, "pedestrian", [0.05, 0.0], score=0.4),
        Box3D([20.0, 1.0, 0.5], [0.4, 0.4, 1.0], 0.3, "traffic_cone", score=0.3),
    ]


def test_outputs_are_parsed_in_a_fixed_order_and_bad_names_named():
    assert parse_outputs(["autoware", "vision_msgs", "autoware"]) == ("vision_msgs", "autoware")
    assert parse_outputs("autoware") == ("autoware",)
    with pytest.raises(OutputsError, match="unknown output detection2d"):
        parse_outputs(["vision_msgs", "detection2d"])
    with pytest.raises(OutputsError, match="at least one"):
        parse_outputs([""])


def test_labels_follow_autoware_bevdet():
    assert set(AUTOWARE_LABEL) == set(NUSCENES_CLASSES)
    named = {"car": CAR, "truck": TRUCK, "bus": BUS, "trailer": TRAILER, "motorcycle": MOTORCYCLE,
             "bicycle": BICYCLE, "pedestrian": PEDESTRIAN}  # fmt: skip
    for name, label in AUTOWARE_LABEL.items():
        assert label == named.get(name, UNKNOWN), name


def test_detected_objects_carry_the_box_score_and_velocity_in_the_object_frame():
    fields = detected_objects_fields(boxes(), STAMP, "base_link")
    car, ped, cone = fields.objects
    assert (fields.stamp_ns, fields.frame_id) == (STAMP, "base_link")
    assert car.label == CAR and ped.label == PEDESTRIAN and cone.label == UNKNOWN
    assert car.existence_probability == 0.9 and car.classification_probability == 1.0
    assert car.dimensions == (4.5, 1.9, 1.6)  # x = length, y = width, z = height
    np.testing.assert_allclose(car.linear_velocity, (5.0, 0.0, 0.0), atol=1e-12)  # forward along its heading
    # the pedestrian faces -2 rad; world (0.05, 0) is (cos 2, sin 2) * 0.05 in its frame
    np.testing.assert_allclose(
        ped.linear_velocity[:2], (0.05 * math.cos(2.0), 0.05 * math.sin(2.0)), atol=1e-12
    )
    assert all(o.has_twist for o in fields.objects)
    assert car.orientation_availability == ORIENTATION["sign_unknown"]
    assert detected_objects_fields(boxes(), 0, "b", "available").objects[0].orientation_availability == 2
    with pytest.raises(OutputsError, match="orientation availability"):
        detected_objects_fields(boxes(), 0, "b", "front")
    # the same boxes, in the same order, as the Detection3DArray of the frame
    dets = detection_array_fields(boxes(), STAMP, "base_link").detections
    for d, o in zip(dets, fields.objects):
        assert (
            d.position == o.position and d.orientation_xyzw == o.orientation_xyzw and d.size == o.dimensions
        )


def test_object_frame_velocity_inverts_for_any_heading():
    rng = np.random.default_rng(0)
    from simdistill_ros.outputs.autoware import to_base_frame

    for yaw, v in zip(rng.uniform(-4, 4, 20), rng.normal(size=(20, 2))):
        np.testing.assert_allclose(to_base_frame(to_object_frame(v, yaw), yaw), v, atol=1e-12)
        assert math.isclose(np.hypot(*to_object_frame(v, yaw)), np.hypot(*v))


def _rosbags_messages(bx: list[Box3D]):
    """The frame's DetectedObjects and Detection3DArray as rosbags messages, through CDR and back."""
    from simdistill_ros.interfaces import typestore

    ts = typestore()
    t = ts.types

    def header():
        return t["std_msgs/msg/Header"](
            stamp=t["builtin_interfaces/msg/Time"](sec=1, nanosec=2), frame_id="b"
        )

    def pose(position, q):
        return t["geometry_msgs/msg/Pose"](
            position=t["geometry_msgs/msg/Point"](x=position[0], y=position[1], z=position[2]),
            orientation=t["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3]),
        )

    def vec(x, y, z):
        return t["geometry_msgs/msg/Vector3"](x=x, y=y, z=z)

    objects = []
    for o in detected_objects_fields(bx, 0, "b").objects:
        kin = t["autoware_perception_msgs/msg/DetectedObjectKinematics"](
            pose_with_covariance=t["geometry_msgs/msg/PoseWithCovariance"](
                pose=pose(o.position, o.orientation_xyzw), covariance=np.zeros(36)
            ),
            has_position_covariance=False,
            orientation_availability=o.orientation_availability,
            twist_with_covariance=t["geometry_msgs/msg/TwistWithCovariance"](
                twist=t["geometry_msgs/msg/Twist"](linear=vec(*o.linear_velocity), angular=vec(0, 0, 0)),
                covariance=np.zeros(36),
            ),
            has_twist=o.has_twist,
            has_twist_covariance=False,
        )
        objects.append(
            t["autoware_perception_msgs/msg/DetectedObject"](
                existence_probability=o.existence_probability,
                classification=[
                    t["autoware_perception_msgs/msg/ObjectClassification"](label=o.label, probability=1.0)
                ],
                kinematics=kin,
                shape=t["autoware_perception_msgs/msg/Shape"](
                    type=0, footprint=t["geometry_msgs/msg/Polygon"](points=[]), dimensions=vec(*o.dimensions)
                ),
            )
        )
    msg = t["autoware_perception_msgs/msg/DetectedObjects"](header=header(), objects=objects)
    name = "autoware_perception_msgs/msg/DetectedObjects"
    return ts.deserialize_cdr(ts.serialize_cdr(msg, name), name)


def test_reading_back_gives_the_boxes_with_their_velocity():
    msg = _rosbags_messages(boxes())
    back, unknown = boxes_from_detected_objects(msg)
    assert unknown == 1 and [b.label for b in back] == ["car", "pedestrian"]  # the cone is UNKNOWN
    for a, b in zip(boxes(), back):
        np.testing.assert_allclose(a.to_array(), b.to_array(), atol=1e-6)
        assert math.isclose(a.score, b.score, rel_tol=1e-6)
    vision = [Box3D(b.center, b.size, b.yaw, b.label, score=b.score) for b in boxes()]  # no velocity
    merged = with_published_velocity(vision, msg)
    assert [b.label for b in merged] == ["car", "pedestrian", "traffic_cone"]
    np.testing.assert_allclose([b.velocity for b in merged], [b.velocity for b in boxes()], atol=1e-9)
    with pytest.raises(OutputsError, match="2 objects, Detection3DArray 3"):
        with_published_velocity(vision, _rosbags_messages(boxes()[:2]))
    moved = [Box3D(b.center + 1.0, b.size, b.yaw, b.label) for b in vision]
    with pytest.raises(OutputsError, match="object 0 lies at"):
        with_published_velocity(moved, msg)


def test_velocity_arrows_for_moving_boxes_only():
    markers = marker_fields(boxes())
    arrows = [m for m in markers if m.type == MARKER_ARROW and m.ns == "velocity"]
    assert [m.id for m in arrows] == [0]  # the car; the pedestrian (0.05 m/s) and the cone stand still
    start, end = np.array(arrows[0].points)
    np.testing.assert_allclose(end - start, [0.0, 5.0, 0.0])  # one second of travel
    np.testing.assert_allclose(start, [10.0, -2.0, 0.8 + 0.8])  # the top centre


def test_records_keep_the_velocity():
    b = boxes()[0]
    back = box_from_record(box_record(b))
    np.testing.assert_allclose(back.to_array(), b.to_array())
    old = {k: v for k, v in box_record(b).items() if k != "velocity"}  # recordings made before
    assert box_from_record(old).velocity.tolist() == [0.0, 0.0]


def test_rclpy_messages_hold_the_same_fields():
    pytest.importorskip("rclpy")
    pytest.importorskip("autoware_perception_msgs.msg")
    pytest.importorskip("vision_msgs.msg")
    from rclpy.serialization import deserialize_message, serialize_message

    from simdistill_ros.interfaces import typestore
    from simdistill_ros.outputs.ros import output_messages

    msgs = output_messages(boxes(), STAMP, "base_link", ["vision_msgs", "autoware"])
    objects = msgs["autoware"]
    assert (objects.header.stamp.sec, objects.header.stamp.nanosec) == (1_700_000_000, 123_456_789)
    car = objects.objects[0]
    assert car.kinematics.has_twist and not car.kinematics.has_twist_covariance
    assert car.shape.type == car.shape.BOUNDING_BOX and car.classification[0].label == CAR
    assert math.isclose(car.kinematics.twist_with_covariance.twist.linear.x, 5.0)
    # rclpy CDR reads back in the rosbags typestore (what bags hold) and in rclpy itself
    name = "autoware_perception_msgs/msg/DetectedObjects"
    back = typestore().deserialize_cdr(serialize_message(objects), name)
    got, _ = boxes_from_detected_objects(back)
    np.testing.assert_allclose(got[0].velocity, [0.0, 5.0], atol=1e-6)
    again = deserialize_message(serialize_message(objects), type(objects))
    assert again.objects[1].classification[0].label == PEDESTRIAN
    vision = boxes_from_detection_array(msgs["vision_msgs"])
    merged = with_published_velocity(vision, objects)
    np.testing.assert_allclose([b.velocity for b in merged], [b.velocity for b in boxes()], atol=1e-6)


def test_a_missing_autoware_package_is_one_clear_line(monkeypatch, tmp_path, capsys):
    """Where autoware_perception_msgs is not installed (simulated: the import fails), the autoware output
    is refused with what to do, before any model loads."""
    import sys

    from simdistill_ros.cli import main as cli
    from simdistill_ros.outputs.ros import message_class

    monkeypatch.setitem(sys.modules, "autoware_perception_msgs", None)
    monkeypatch.setitem(sys.modules, "autoware_perception_msgs.msg", None)
    with pytest.raises(OutputsError, match="needs autoware_perception_msgs: source an Autoware workspace"):
        message_class("autoware")
    pytest.importorskip("rclpy")
    bag = tmp_path / "in"
    bag.mkdir()
    args = ["detect", "--model", str(tmp_path / "none"), "--bag", str(bag), "--out", str(tmp_path / "out")]
    assert cli([*args, "--outputs", "vision_msgs", "autoware"]) != 0
    err = capsys.readouterr().err
    assert "needs autoware_perception_msgs" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
