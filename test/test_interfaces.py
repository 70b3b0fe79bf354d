"""vision_msgs and autoware_perception_msgs in the rosbags typestore interoperate with rclpy messages built
from the same files; the autoware_perception_msgs files are upstream's text."""

import json
from pathlib import Path

import numpy as np
import pytest
from ros_isolation import isolate_ros
from rosbags.typesys import get_types_from_msg

from simdistill_ros.interfaces import MSGS_DIRS, typestore

REPO = Path(__file__).resolve().parents[1]
# autoware_perception_msgs as read from autowarefoundation/autoware_msgs (commit per file in the JSON)
UPSTREAM = json.loads((Path(__file__).parent / "upstream" / "autoware_perception_msgs.json").read_text())


@pytest.mark.parametrize("package", sorted(MSGS_DIRS))
def test_runtime_definitions_match_the_built_package(package: str):
    built = sorted((REPO / "msgs" / package / "msg").glob("*.msg"))
    runtime = sorted(MSGS_DIRS[package].glob("*.msg"))
    assert built and [p.name for p in built] == [p.name for p in runtime]
    for a, b in zip(built, runtime):
        assert a.read_text() == b.read_text(), a.name


def _fields(text: str, name: str) -> list[tuple]:
    """(field or constant name, type, constant value) of a .msg text, parsed by rosbags, in order."""
    (msgtype, (consts, fields)), *_ = get_types_from_msg(text, name).items()
    return [(c[0], c[1], c[2]) for c in consts] + [(f[0], repr(f[1])) for f in fields]


def test_autoware_definitions_are_upstreams_text_field_for_field():
    ours = REPO / "msgs" / "autoware_perception_msgs" / "msg"
    assert sorted(p.name for p in ours.glob("*.msg")) == sorted(UPSTREAM["files"])
    for name, entry in UPSTREAM["files"].items():
        text = (ours / name).read_text()
        assert text == entry["text"], f"{name} differs from upstream {entry['commit']}"
        full = f"autoware_perception_msgs/msg/{name[:-4]}"
        assert _fields(text, full) == _fields(entry["text"], full)
    kinematics = _fields(UPSTREAM["files"]["DetectedObjectKinematics.msg"]["text"], "a/msg/K")
    assert [f[0] for f in kinematics] == [
        "UNAVAILABLE", "SIGN_UNKNOWN", "AVAILABLE", "pose_with_covariance", "has_position_covariance",
        "orientation_availability", "twist_with_covariance", "has_twist", "has_twist_covariance",
    ]  # fmt: skip


def test_built_autoware_package_has_upstreams_fields_and_constants():
    """The rclpy classes generated from msgs/ carry upstream's fields (names, order) and constants."""
    pytest.importorskip("rclpy")
    aw = pytest.importorskip("autoware_perception_msgs.msg")
    for name, entry in UPSTREAM["files"].items():
        cls = getattr(aw, name[:-4])
        (_, (consts, fields)), *_ = get_types_from_msg(
            entry["text"], f"autoware_perception_msgs/msg/{name[:-4]}"
        ).items()
        assert list(cls.get_fields_and_field_types()) == [f[0] for f in fields], name
        for const, _, value in consts:
            assert getattr(cls, const) == value, (name, const)


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


def test_generated_types_go_over_dds_with_rclpy():
    rclpy = pytest.importorskip("rclpy")
    vision_msgs = pytest.importorskip("vision_msgs.msg")
    tf2_msgs = pytest.importorskip("tf2_msgs.msg")
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=isolate_ros())
    try:
        node = rclpy.create_node("test_interfaces", context=ctx)
        # transient local: a message published before the subscription matched is still delivered
        qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        got: dict[str, object] = {}
        node.create_subscription(vision_msgs.Detection3DArray, "detections", lambda m: got.update(det=m), qos)
        node.create_subscription(tf2_msgs.TFMessage, "tf", lambda m: got.update(tf=m), qos)
        det = vision_msgs.Detection3DArray()
        det.header.frame_id = "base_link"
        det.detections = [vision_msgs.Detection3D(id="7")]
        det.detections[0].bbox.size.x = 4.0
        node.create_publisher(vision_msgs.Detection3DArray, "detections", qos).publish(det)
        tf = tf2_msgs.TFMessage()
        tf.transforms = [_transform("base_link", "cam")]
        node.create_publisher(tf2_msgs.TFMessage, "tf", qos).publish(tf)
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(node)
        # wait on message arrival (the executor blocks until a callback is ready), 10 s at most
        for _ in range(100):
            if len(got) == 2:
                break
            executor.spin_once(timeout_sec=0.1)
        assert got["det"].header.frame_id == "base_link" and got["det"].detections[0].id == "7"
        assert got["det"].detections[0].bbox.size.x == 4.0
        assert got["tf"].transforms[0].child_frame_id == "cam"
        assert tf2_msgs.TF2Error.NO_ERROR == 0 and tf2_msgs.TF2Error.TRANSFORM_ERROR == 6
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


def _transform(parent: str, child: str):
    from geometry_msgs.msg import TransformStamped

    t = TransformStamped()
    t.header.frame_id, t.child_frame_id = parent, child
    t.transform.rotation.w = 1.0
    return t
