"""teacher_replay_node as a real process over a bag, a listener process receiving its Detection3DArray;
the launch file and the parameters yaml agree with the node's declared parameters."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from replay_helpers import REPO, bags, env, replay_world
from ros_isolation import isolate_ros

LISTENER = """
import sys, time, rclpy
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from vision_msgs.msg import Detection3DArray
rclpy.init()
node = rclpy.create_node("replay_listener")
got = []
qos = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE)
node.create_subscription(Detection3DArray, sys.argv[1], got.append, qos)
want, deadline = int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while len(got) < want and time.monotonic() < deadline:
    rclpy.spin_once(node, timeout_sec=0.1)
for m in got:
    print("MSG", m.header.frame_id, m.header.stamp.sec, m.header.stamp.nanosec, len(m.detections),
          m.detections[0].results[0].hypothesis.class_id if m.detections else "-", flush=True)
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return replay_world(tmp_path_factory)


def test_node_replays_a_bag_and_a_listener_receives_the_teacher_detections(root: Path, tmp_path: Path):
    from simdistill_ros.targets.store import TargetStore

    domain = {"ROS_DOMAIN_ID": str(isolate_ros())}
    bag = next(b for b in bags(root) if "0022" in b)  # the sqlite3 bag
    listener = subprocess.Popen(
        [sys.executable, "-c", LISTENER, "/teacher_replay_node/teacher_detections", "3", "280"],
        env=env(**domain),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = tmp_path / "store"
    node = subprocess.run(
        [
            sys.executable,
            "-m",
            "simdistill_ros.nodes.teacher_replay_node",
            "--ros-args",
            "-p",
            f"bags:=[{bag}]",
            "-p",
            f"teacher:={root / 'teacher'}",
            "-p",
            f"output_store:={out}",
            "-p",
            "wait_for_subscribers:=1",
            "-p",
            "wait_timeout_s:=30.0",
        ],
        env=env(**domain),
        capture_output=True,
        text=True,
        timeout=300,  # generous: two suites side by side on 2 loaded cores took over 120 s
    )
    stdout, stderr = listener.communicate(timeout=300)
    assert node.returncode == 0, node.stderr[-3000:]
    assert "3 frames stored" in node.stderr + node.stdout
    lines = [line.split() for line in stdout.splitlines() if line.startswith("MSG")]
    assert len(lines) == 3, (stdout, stderr[-2000:])
    store = TargetStore(out, verify="full")
    assert len(store) == 3
    for (_, frame_id, sec, nsec, n, _cls), frame in zip(lines, (store[i] for i in range(3))):
        assert frame_id == "base_link" and int(sec) * 10**9 + int(nsec) == frame.stamp_ns
        assert int(n) == len(frame.det_boxes)


def _launch_arguments(path: Path) -> dict[str, str | None]:
    """DeclareLaunchArgument names and literal defaults, read without importing launch (absent here)."""
    found = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument":
            name = node.args[0].value
            default = next((k.value for k in node.keywords if k.arg == "default_value"), None)
            found[name] = default.value if isinstance(default, ast.Constant) else default and "expr"
    return found


def test_launch_file_and_yaml_match_the_node_parameters():
    import rclpy

    from simdistill_ros.nodes.teacher_replay_node import TeacherReplayNode

    args = _launch_arguments(REPO / "launch" / "teacher_replay.launch.py")
    assert set(args) == {"params_file", "bags", "teacher", "out", "device"}
    assert args["bags"] is None and args["out"] is None  # required: nothing sensible to default to
    params = yaml.safe_load((REPO / "config" / "teacher_replay.yaml").read_text())["/**"]["ros__parameters"]
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=isolate_ros())
    try:
        node = TeacherReplayNode(context=context)
        builtin = {"use_sim_time", "start_type_description_service"}
        declared = {name: p.value for name, p in node._parameters.items() if name not in builtin}
        assert set(params) == set(declared)
        for name, value in params.items():
            assert declared[name] == value, name  # the yaml's values are the node's defaults
            descriptor = node.describe_parameter(name)
            assert descriptor.description, name
        assert args["teacher"] == params["teacher"] and args["device"] == params["device"]
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
