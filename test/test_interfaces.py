"""vision_msgs in the rosbags typestore interoperates with rclpy messages built from the same files."""

import random
from pathlib import Path

import numpy as np
import pytest

from simdistill_ros.interfaces import VISION_MSGS_DIR, typestore

REPO = Path(__file__).resolve().parents[1]


def test_runtime_definitions_match_the_built_package():
    built = sorted((REPO / "msgs" / "vision_msgs" / "msg").glob("*.msg"))
    runtime = sorted(VISION_MSGS_DIR.glob("*.msg"))
    assert [p.name for p in built] == [p.name for p in runtime]
    for a, b in zip(built, runtime):
        assert a.read_text() == b.read_text(), a.name


def test_detection_array_round_trips_between_rosbags_and_rclpy():
    pytest.importorskip("rclpy")
    vision_msgs = pytest.importorskip("vision_msgs.msg")
    from rclpy.serialization import deserialize_message, serialize_message

    ts = typestore()
    t = ts.types
    header = t["std_msgs/msg/Header"](
        stamp=t["builtin_interfaces/msg/Time"](sec=12, nanosec=34), frame_id="base_link"
    )
    pose = t["geometry_msgs/msg/Pose"](
        position=t["geometry_msgs/msg/Point"](x=1.0, y=2.0, z=3.0),
        orientation=t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.6, w=0.8),
    )
    hyp = t["vision_msgs/msg/ObjectHypothesisWithPose"](
        hypothesis=t["vision_msgs/msg/ObjectHypothesis"](class_id="car", score=0.75),
        pose=t["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36)),
    )
    det = t["vision_msgs/msg/Detection3D"](
        header=header,
        results=[hyp],
        bbox=t["vision_msgs/msg/BoundingBox3D"](
            center=pose, size=t["geometry_msgs/msg/Vector3"](x=4.0, y=2.0, z=1.5)
        ),
        id="7",
    )
    msg = t["vision_msgs/msg/Detection3DArray"](header=header, detections=[det])
    raw = ts.serialize_cdr(msg, "vision_msgs/msg/Detection3DArray")

    ros = deserialize_message(bytes(raw), vision_msgs.Detection3DArray)
    assert ros.header.frame_id == "base_link" and ros.header.stamp.sec == 12
    d = ros.detections[0]
    assert d.id == "7" and d.results[0].hypothesis.class_id == "car"
    assert d.results[0].hypothesis.score == 0.75
    assert (d.bbox.size.x, d.bbox.size.y, d.bbox.size.z) == (4.0, 2.0, 1.5)
    assert d.bbox.center.orientation.w == 0.8

    back = ts.deserialize_cdr(serialize_message(ros), "vision_msgs/msg/Detection3DArray")
    assert back.detections[0].bbox.center.position.y == 2.0


def test_generated_types_publish_with_rclpy():
    rclpy = pytest.importorskip("rclpy")
    vision_msgs = pytest.importorskip("vision_msgs.msg")
    tf2_msgs = pytest.importorskip("tf2_msgs.msg")
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=random.randint(1, 101))
    try:
        node = rclpy.create_node("test_interfaces_publisher", context=ctx)
        pub = node.create_publisher(vision_msgs.Detection3DArray, "detections", 1)
        pub.publish(vision_msgs.Detection3DArray())
        node.create_publisher(tf2_msgs.TFMessage, "tf", 1).publish(tf2_msgs.TFMessage())
        assert tf2_msgs.TF2Error.NO_ERROR == 0 and tf2_msgs.TF2Error.TRANSFORM_ERROR == 6
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
