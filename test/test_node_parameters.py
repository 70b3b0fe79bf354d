"""The detector node's parameters as a ROS user meets them, against a real node process: the
get_parameters service answers every declared parameter (`ros2 param dump`), a live parameter set at run
time changes what the node publishes, a read-only one and a bad value are refused with a reason; the
annotated ~/debug/image is published to a subscriber; the shutdown summary reaches /rosout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _detector_helpers import synth_world, tiny_student_checkpoint
from ros_isolation import isolate_ros

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("vision_msgs.msg")

from rcl_interfaces.msg import Log  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter, parameter_value_to_python  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from vision_msgs.msg import Detection3DArray  # noqa: E402

from simdistill_ros.detection.parameters import PARAMETERS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NODE = "simdistill_detector"
THRESHOLD = 0.09  # random heads score about sigmoid(-2.19) = 0.1: nearly every box passes
GIVEN = {"device": "cpu", "score_threshold": THRESHOLD, "frame_queue_size": 10}  # besides the model


class Client:
    """A node in this test process, spun on a thread: a parameter client of the detector and
    subscriptions that collect what it publishes."""

    def __init__(self, domain: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("test_client", context=self.context)
        self.params = AsyncParameterClient(self.node, NODE)
        self.detections: list[Detection3DArray] = []
        self.images: list[Image] = []
        self.rosout: list[Log] = []
        self.node.create_subscription(Detection3DArray, f"/{NODE}/detections", self.detections.append, 10)
        rosout_qos = QoSProfile(
            depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        self.node.create_subscription(Log, "/rosout", self.rosout.append, rosout_qos)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def subscribe_images(self) -> None:
        self.node.create_subscription(Image, f"/{NODE}/debug/image", self.images.append, 1)

    def call(self, send: Callable[[], object], timeout: float = 60.0, resend: float = 10.0):
        """The answer to the request ``send()`` makes (it returns an rclpy Future). The request is sent
        again when ``resend`` seconds pass without an answer: a reply sent before the server's reply writer
        has matched this client's reader is lost in DDS, even after ``wait_for_services``. Every request
        of these tests is idempotent, so a second copy changes nothing."""
        deadline = time.monotonic() + timeout
        futures = [send()]
        sent = time.monotonic()
        while not any(f.done() for f in futures):
            assert time.monotonic() < deadline, "no answer from the node's parameter services"
            if time.monotonic() - sent > resend:
                futures.append(send())
                sent = time.monotonic()
            time.sleep(0.05)
        return next(f for f in futures if f.done()).result()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen, log: Path
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, "the node died:\n" + log.read_text()
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n" + log.read_text()
        time.sleep(0.1)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """(client, node process, node log, bags, env) with the node running on the tiny checkpoint."""
    tmp = tmp_path_factory.mktemp("node_params")
    ckpt = tiny_student_checkpoint(tmp / "student")
    # two scenes, the second stamped later (the node's pip-only sync takes no step back in time)
    bags = [synth_world(tmp / f"world{seed}", frames=2, seed=seed) for seed in (5, 6)]
    domain = isolate_ros()  # this test process's own domain, this host only
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    log = tmp / "node.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simdistill_ros.nodes.detector_node", "--ros-args", "-p", f"model:={ckpt}",
         *[a for k, v in GIVEN.items() for a in ("-p", f"{k}:={v}")]],
        env=env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    client = Client(domain)
    try:
        wait_for(lambda: "detecting with" in log.read_text(), 90, "the node to start", proc, log)
        assert client.params.wait_for_services(timeout_sec=30), log.read_text()
        yield client, proc, log, bags, env
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def play(bag: Path, env: dict) -> None:
    player = subprocess.run(
        [sys.executable, "-m", "simdistill_ros.nodes.bag_player", str(bag), "--rate", "0.5",
         "--wait-subscribers", "30"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert player.returncode == 0, player.stdout + player.stderr


def test_get_parameters_returns_every_declared_parameter(live):
    client, *_ = live
    values = client.call(lambda: client.params.get_parameters(list(PARAMETERS))).values
    assert len(values) == len(PARAMETERS)  # rclpy answers [] when any asked-for parameter is unset
    got = dict(zip(PARAMETERS, map(parameter_value_to_python, values)))
    assert got["image_topics"] == got["camera_info_topics"] == [""]  # optional lists: UNSET, typed
    for name, param in PARAMETERS.items():
        if name != "model":  # the test's checkpoint
            assert got[name] == GIVEN.get(name, param.ros_default), name


def test_read_only_parameters_and_bad_values_are_refused_with_a_reason(live):
    client, _, log, _, _ = live
    (model,) = client.call(
        lambda: client.params.set_parameters([Parameter("model", value="baseline_tiny")])
    ).results
    assert not model.successful and "read-only" in model.reason
    (bad,) = client.call(
        lambda: client.params.set_parameters([Parameter("score_threshold", value=1.5)])
    ).results
    assert not bad.successful and "score_threshold must be between 0 and 1, got 1.5" in bad.reason
    (queue,) = client.call(
        lambda: client.params.set_parameters([Parameter("frame_queue_size", value=0)])
    ).results
    assert not queue.successful and "frame_queue_size must be >= 1" in queue.reason
    values = client.call(lambda: client.params.get_parameters(["score_threshold", "frame_queue_size"])).values
    assert [values[0].double_value, values[1].integer_value] == [THRESHOLD, 10]  # nothing changed


def test_score_threshold_set_at_run_time_changes_the_published_detections(live):
    client, proc, log, bags, env = live
    client.subscribe_images()
    play(bags[0], env)
    wait_for(lambda: len(client.detections) >= 2, 60, "2 detection arrays", proc, log)
    before = [len(m.detections) for m in client.detections]
    assert all(n > 0 for n in before), before  # random heads: scores around 0.1 pass 0.09
    # the debug image: the cameras with the boxes, drawn because this client subscribes
    wait_for(lambda: len(client.images) >= 1, 30, "a debug image", proc, log)
    image = client.images[-1]
    assert image.encoding == "rgb8" and image.width > 0 and len(image.data) == image.step * image.height

    (result,) = client.call(
        lambda: client.params.set_parameters([Parameter("score_threshold", value=0.9)])
    ).results
    assert result.successful, result.reason
    client.detections.clear()
    play(bags[1], env)
    wait_for(lambda: len(client.detections) >= 2, 60, "2 more detection arrays", proc, log)
    after = [len(m.detections) for m in client.detections]
    assert after == [0] * len(after), after
    assert "set score_threshold = 0.9" in log.read_text()


def test_the_stop_summary_reaches_rosout_without_a_context_error(live):
    client, proc, log, _, _ = live
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0, log.read_text()
    text = log.read_text()
    assert "stopped:" in text
    assert "Failed to publish log message to rosout" not in text, text
    deadline = time.monotonic() + 10
    while not any(m.msg.startswith("stopped:") for m in client.rosout) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any(m.msg.startswith("stopped:") and m.name == NODE for m in client.rosout), [
        m.msg for m in client.rosout
    ]
