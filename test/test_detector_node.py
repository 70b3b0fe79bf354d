"""The live node as users run it: bag_player -> detector_node -> detection_recorder, three real processes
over Fast DDS (this host only, in a domain this test process holds: ros_isolation.py), compared with
`simdistill detect` on the same bag."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _detector_helpers import copy_bag_with_bad_images, synth_world, tiny_student_checkpoint
from ros_isolation import isolate_ros

pytest.importorskip("rclpy")
pytest.importorskip("vision_msgs.msg")

ROOT = Path(__file__).resolve().parents[1]
TOPIC = "/simdistill_detector/detections"
THRESHOLD = "0.09"  # random heads score about sigmoid(-2.19) = 0.1


def ros_env() -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(isolate_ros())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start(module: str, *args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=env,
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def offline_detect(ckpt: Path, bag: Path, out: Path) -> list[list[dict]]:
    """`simdistill detect` on the bag, read back from its output bag: per frame, the box records."""
    from simdistill_ros.cli import main as cli
    from simdistill_ros.frames import BagReader
    from simdistill_ros.outputs.records import box_record
    from simdistill_ros.outputs.vision import boxes_from_detection_array

    assert cli(["detect", "--model", str(ckpt), "--bag", str(bag), "--out", str(out), "--device", "cpu",
                "--score-threshold", THRESHOLD]) == 0  # fmt: skip
    with BagReader(out) as reader:
        msgs = [m for _, _, m in reader.messages([TOPIC])]
    return [[box_record(b) for b in boxes_from_detection_array(m)] for m in msgs]


def run_live(
    tmp: Path,
    ckpt: Path,
    bag: Path,
    expect: int,
    node_args: list,
    player_args: list,
    recorder_args: list = (),
) -> tuple:
    """(recorded frames, node log text, node exit code)."""
    env = ros_env()
    node = start(
        "simdistill_ros.nodes.detector_node", "--ros-args", "-p", f"model:={ckpt}", "-p", "device:=cpu",
        "-p", f"score_threshold:={THRESHOLD}", "-p", "frame_queue_size:=10", *node_args,
        env=env, log=tmp / "node.log",
    )  # fmt: skip
    rec = subprocess.Popen(
        [sys.executable, "-m", "simdistill_ros.nodes.detection_recorder", "--out", str(tmp / "rec.json"),
         "--count", str(expect), "--timeout", "60", "--idle", "8", *recorder_args],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        # the recorder must be matched with the node's publisher before any input starts: block on the
        # line it prints from that DDS match (no sleep loop); its timeout ends the wait if it never comes
        for line in rec.stdout:
            if "publisher matched" in line:
                break
        else:
            raise AssertionError("the recorder never matched the node:\n" + (tmp / "node.log").read_text())
        assert node.poll() is None, "the node died:\n" + (tmp / "node.log").read_text()
        player = subprocess.run(
            [sys.executable, "-m", "simdistill_ros.nodes.bag_player", str(bag), "--rate", "0.5",
             "--wait-subscribers", "30", *player_args],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        assert player.returncode == 0, player.stdout + player.stderr
        rest, _ = rec.communicate(timeout=70)
        (tmp / "rec.log").write_text(rest)
        assert node.poll() is None, "the node died:\n" + (tmp / "node.log").read_text()
        node.send_signal(signal.SIGINT)
        code = node.wait(timeout=20)
    finally:
        for p in (node, rec):
            if p.poll() is None:
                p.kill()
                p.wait()
    frames = json.loads((tmp / "rec.json").read_text())["frames"]
    return frames, (tmp / "node.log").read_text(), code


def assert_same_boxes(live: list[dict], offline: list[dict]) -> None:
    assert len(live) == len(offline) > 0
    for a, b in zip(live, offline):
        assert a["label"] == b["label"] and a["id"] == b["id"]
        np.testing.assert_allclose(a["center"] + a["size"] + [a["yaw"]], b["center"] + b["size"] + [b["yaw"]],
                                   atol=1e-4)  # fmt: skip
        assert abs(a["score"] - b["score"]) < 1e-5


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_student_checkpoint(tmp_path_factory.mktemp("ckpt") / "student")


def test_live_node_matches_offline_detect_on_every_frame(tmp_path: Path, ckpt: Path):
    bag = synth_world(tmp_path / "world", frames=3)
    offline = offline_detect(ckpt, bag, tmp_path / "detect_out")
    assert len(offline) == 3
    frames, log, code = run_live(tmp_path, ckpt, bag, 3, [], [])
    assert code == 0, log
    assert len(frames) == 3, log  # exactly one message per synthesized frame
    assert len({f["stamp_ns"] for f in frames}) == 3
    for live, off in zip(sorted(frames, key=lambda f: f["stamp_ns"]), offline):
        assert live["frame_id"] == "base_link"
        assert_same_boxes(live["boxes"], off)


def test_two_raw_cameras_on_other_topics_survive_malformed_images(tmp_path: Path, ckpt: Path):
    """2 cameras, sensor_msgs/Image on renamed topics, sim time; frame 1 has an image with an unsupported
    encoding and frame 2 one with too little data: both are skipped, the node keeps serving."""
    bag = synth_world(tmp_path / "world", frames=4, cameras=2, raw=True)
    offline = offline_detect(ckpt, bag, tmp_path / "detect_out")
    assert len(offline) == 4
    bad = tmp_path / "bad_bag"
    copy_bag_with_bad_images(bag, bad, "/CAM_FRONT_RIGHT/image_rect", {1: "encoding", 2: "size"})
    remaps = [f"/{c}/{k}=/rig/{c.lower()}/{k}" for c in ("CAM_FRONT", "CAM_FRONT_RIGHT")
              for k in ("image_rect", "camera_info")]  # fmt: skip
    node_args = [
        "-p", "camera_names:=[CAM_FRONT, CAM_FRONT_RIGHT]", "-p", "compressed:=false",
        "-p", "image_topics:=[/rig/cam_front/image_rect, /rig/cam_front_right/image_rect]",
        "-p", "camera_info_topic:=/rig/{camera}/camera_info",  # upper-case names: overridden below
        "-p", "camera_info_topics:=[/rig/cam_front/camera_info, /rig/cam_front_right/camera_info]",
        "-p", "use_sim_time:=true",
    ]  # fmt: skip
    frames, log, code = run_live(tmp_path, ckpt, bad, 2, node_args, ["--clock", "--remap", *remaps])
    assert code == 0, log
    assert "bad input: camera 'CAM_FRONT_RIGHT'" in log and "dropped: 2 bad input" in log, log
    assert len(frames) == 2, log
    live = sorted(frames, key=lambda f: f["stamp_ns"])
    assert_same_boxes(live[0]["boxes"], offline[0])
    assert_same_boxes(live[1]["boxes"], offline[3])


def test_unloadable_model_fails_at_start_up_with_one_clear_line(tmp_path: Path):
    env = ros_env()
    proc = subprocess.run(
        [sys.executable, "-m", "simdistill_ros.nodes.detector_node", "--ros-args", "-p",
         f"model:={tmp_path / 'no_such_model'}"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "cannot load model" in proc.stderr and "no_such_model" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def _copy_with_late_tf_static(src: Path, dst: Path, delay_ns: int) -> None:
    """Copy a bag with /tf_static recorded ``delay_ns`` after the first image (a late static publisher)."""
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import StoragePlugin, Writer

    from simdistill_ros.frames.messages import typestore

    store = typestore()
    with AnyReader([src], default_typestore=store) as reader:
        rows = [(c.topic, c.msgtype, t, raw) for c, t, raw in reader.messages()]
    first = min(t for topic, ty, t, _ in rows if "Image" in ty)
    rows = [(topic, ty, first + delay_ns if topic == "/tf_static" else t, raw) for topic, ty, t, raw in rows]
    writer = Writer(dst, version=8, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conns = {
        topic: writer.add_connection(topic, ty, typestore=store)
        for topic, ty in sorted({r[:2] for r in rows})
    }
    for topic, _, t, raw in sorted(rows, key=lambda r: r[2]):
        writer.write(conns[topic], t, raw)
    writer.close()


def test_frames_before_a_late_tf_static_wait_for_it_instead_of_being_dropped(tmp_path: Path, ckpt: Path):
    bag = synth_world(tmp_path / "world", frames=6)
    offline = offline_detect(ckpt, bag, tmp_path / "detect_out")
    late = tmp_path / "late_tf"
    _copy_with_late_tf_static(bag, late, 300_000_000)  # the first 4 frames come before the transforms
    frames, log, code = run_live(tmp_path, ckpt, late, 6, [], [])
    assert code == 0, log
    assert "frame waits" in log, log
    assert len(frames) == 6, log
    for live, off in zip(sorted(frames, key=lambda f: f["stamp_ns"]), offline):
        assert_same_boxes(live["boxes"], off)


def test_autoware_objects_carry_the_heads_velocity_beside_the_same_boxes(tmp_path: Path, ckpt: Path):
    """outputs [vision_msgs, autoware]: `simdistill detect` bags both for every frame, every object with
    has_twist; live, the recorder (another process) receives DetectedObjects whose boxes are the
    Detection3DArray's of the same frame and whose twist is the head's velocity, as offline."""
    pytest.importorskip("autoware_perception_msgs.msg")
    from simdistill_ros.cli import main as cli
    from simdistill_ros.frames import BagReader
    from simdistill_ros.outputs import MARKERS_TOPIC, OBJECTS_TOPIC
    from simdistill_ros.outputs.autoware import with_published_velocity
    from simdistill_ros.outputs.markers import MARKER_ARROW, MIN_ARROW_SPEED
    from simdistill_ros.outputs.records import box_record
    from simdistill_ros.outputs.vision import boxes_from_detection_array

    bag = synth_world(tmp_path / "world", frames=3)
    out = tmp_path / "detect_out"
    assert cli(["detect", "--model", str(ckpt), "--bag", str(bag), "--out", str(out), "--device", "cpu",
                "--score-threshold", THRESHOLD, "--outputs", "vision_msgs", "autoware"]) == 0  # fmt: skip
    with BagReader(out) as reader:
        msgs = list(reader.messages([TOPIC, OBJECTS_TOPIC, MARKERS_TOPIC]))
    vision = [m for topic, _, m in msgs if topic == TOPIC]
    objects = [m for topic, _, m in msgs if topic == OBJECTS_TOPIC]
    markers = [m for topic, _, m in msgs if topic == MARKERS_TOPIC]
    assert len(vision) == len(objects) == len(markers) == 3
    offline = []
    for v, o, mk in zip(vision, objects, markers):
        assert (v.header.stamp, v.header.frame_id) == (o.header.stamp, o.header.frame_id)
        assert o.objects and all(obj.kinematics.has_twist for obj in o.objects)
        boxes = with_published_velocity(boxes_from_detection_array(v), o)
        offline.append([box_record(b) for b in boxes])
        # one velocity arrow per box moving at MIN_ARROW_SPEED or more, two points a second of travel apart
        arrows = {m.id: m for m in mk.markers if m.ns == "velocity" and m.type == MARKER_ARROW}
        moving = [i for i, b in enumerate(boxes) if np.hypot(*b.velocity) >= MIN_ARROW_SPEED]
        assert sorted(arrows) == moving
        for i in moving:
            a, b = arrows[i].points
            np.testing.assert_allclose([b.x - a.x, b.y - a.y], boxes[i].velocity, atol=1e-5)

    node_args = ["-p", "outputs:=[vision_msgs, autoware]"]
    frames, log, code = run_live(tmp_path, ckpt, bag, 3, node_args, [], ["--objects-topic", OBJECTS_TOPIC])
    assert code == 0, log
    assert "outputs vision_msgs, autoware" in log, log
    assert len(frames) == 3 and all(f["has_velocity"] for f in frames), log
    for live, off in zip(sorted(frames, key=lambda f: f["stamp_ns"]), offline):
        assert_same_boxes(live["boxes"], off)
        np.testing.assert_allclose(
            [b["velocity"] for b in live["boxes"]], [b["velocity"] for b in off], atol=1e-4
        )
    speeds = [np.hypot(*b["velocity"]) for f in frames for b in f["boxes"]]
    assert max(speeds) > MIN_ARROW_SPEED, speeds  # the head's velocities left the process, arrows drawn


def test_autoware_topic_names_and_raw_cameras_from_the_autoware_parameters(tmp_path: Path, ckpt: Path):
    """config/autoware.yaml as launch/autoware.launch.py loads it: raw images on /sensing/camera/cameraN,
    DetectedObjects on Autoware's detection topic in base_link (vision_msgs added here for the recorder)."""
    pytest.importorskip("autoware_perception_msgs.msg")
    bag = synth_world(tmp_path / "world", frames=2, raw=True)
    cams = ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_RIGHT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_FRONT_LEFT")
    remaps = [f"/{c}/image_rect=/sensing/camera/camera{i}/image_rect_color" for i, c in enumerate(cams)]
    remaps += [f"/{c}/camera_info=/sensing/camera/camera{i}/camera_info" for i, c in enumerate(cams)]
    objects = "/perception/object_recognition/detection/camera_bev/objects"
    node_args = [
        "--params-file", str(ROOT / "config" / "detector.yaml"),
        "--params-file", str(ROOT / "config" / "autoware.yaml"),
        "-p", "outputs:=[vision_msgs, autoware]", "-p", f"objects_topic:={objects}",
    ]  # fmt: skip
    frames, log, code = run_live(
        tmp_path, ckpt, bag, 2, node_args, ["--remap", *remaps], ["--objects-topic", objects]
    )
    assert code == 0, log
    assert "/sensing/camera/camera0/image_rect_color" in log, log
    assert len(frames) == 2 and all(f["has_velocity"] and f["frame_id"] == "base_link" for f in frames), log
