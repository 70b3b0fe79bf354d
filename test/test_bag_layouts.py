"""Real bag layouts, written by an independent rosbag2 writer (the ``rosbags`` library, not the project's
writer): the nuScenes layouts ``detect``/``replay`` recognise without configuration, a bag whose topics
were created in alphabetical order with /tf_static recorded 300 ms after the first images, and a layout
only a ``--params`` YAML describes. Each must give the same frames, the same ground-truth matches and the
same boxes as the synthetic world's own (nuscenes2bag) bag; the live pipeline must agree with ``detect``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _detector_helpers import tiny_student_checkpoint

FRAMES = 3
SIZE = (64, 112)
TF_STATIC_DELAY_NS = 300_000_000
POSITION = {  # driver-style camera positions (rear = back)
    "CAM_FRONT": "front",
    "CAM_FRONT_RIGHT": "front_right",
    "CAM_BACK_RIGHT": "rear_right",
    "CAM_BACK": "rear",
    "CAM_BACK_LEFT": "rear_left",
    "CAM_FRONT_LEFT": "front_left",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """One scene of a synthetic world (6 cameras, LiDAR, ground truth) and a tiny student that knows the
    nuScenes camera order from its meta.json."""
    from simdistill_ros.frames.sensors import NUSCENES_CAMERAS
    from simdistill_ros.synth.export import synthesize

    root = tmp_path_factory.mktemp("layouts")
    synthesize(root / "world", 1, FRAMES, seed=3, image_size=SIZE, val_fraction=0.0, progress=False)
    ckpt = tiny_student_checkpoint(root / "student")
    meta = json.loads((ckpt / "meta.json").read_text())
    (ckpt / "meta.json").write_text(json.dumps({**meta, "cameras": NUSCENES_CAMERAS}))
    bag = next((root / "world" / "bags").iterdir())
    return {"root": root, "data": root / "world", "bag": bag, "ckpt": ckpt}


def _messages(src: Path) -> tuple[list, dict]:
    """(topic, msgtype, bag time, message) of a bag in bag order, and the typestore."""
    from rosbags.highlevel import AnyReader

    from simdistill_ros.frames.messages import typestore

    store = typestore()
    with AnyReader([src], default_typestore=store) as reader:
        out = [(c.topic, c.msgtype, t, reader.deserialize(raw, c.msgtype)) for c, t, raw in reader.messages()]
    return out, store


def write_layout(src: Path, dst: Path, layout: str) -> Path:
    """Rewrite the synthetic bag ``src`` in ``layout`` with rosbags' Writer; topics are created in
    alphabetical order and /tf_static is recorded 300 ms after the first image (as a late static
    publisher would be). Images keep their pixels (raw layouts get the decoded jpeg)."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from simdistill_ros.frames.images import image_to_rgb

    msgs, store = _messages(src)
    Image = store.types["sensor_msgs/msg/Image"]
    first_image = min(t for topic, ty, t, _ in msgs if ty.endswith("CompressedImage"))

    def rename_frame(frame_id: str) -> str:
        if layout == "driver" and frame_id in POSITION:
            return f"camera_{POSITION[frame_id]}_optical_frame"
        if layout == "driver" and frame_id == "LIDAR_TOP":
            return "lidar"
        return frame_id

    def convert(topic: str, msgtype: str, msg):
        cam = topic.strip("/").split("/")[0]
        if layout == "driver":
            for t in getattr(msg, "transforms", []):
                t.child_frame_id = rename_frame(t.child_frame_id)
            if hasattr(msg, "header"):
                msg.header.frame_id = rename_frame(msg.header.frame_id)
        if cam in POSITION:
            leaf = topic.rsplit("/", 1)[1]
            if layout == "bridge":
                if leaf == "image_rect_compressed":
                    rgb = image_to_rgb(msg)
                    h, w = rgb.shape[:2]
                    msg = Image(msg.header, h, w, "rgb8", 0, 3 * w, rgb.reshape(-1).copy())
                    return f"/nuscenes/{cam}/image", "sensor_msgs/msg/Image", msg
                return f"/nuscenes/{cam}/{leaf}", msgtype, msg
            if layout == "driver":
                where = f"/camera/{POSITION[cam]}"
                if leaf == "image_rect_compressed":
                    return f"{where}/image_raw/compressed", msgtype, msg
                return f"{where}/camera_info", msgtype, msg
        if topic == "/LIDAR_TOP" and layout in ("bridge", "driver"):
            return ("/nuscenes/LIDAR_TOP" if layout == "bridge" else "/points"), msgtype, msg
        return topic, msgtype, msg

    converted = [(*convert(topic, ty, msg), t) for topic, ty, t, msg in msgs]
    converted = [(topic, ty, first_image + TF_STATIC_DELAY_NS if topic == "/tf_static" else t, msg)
                 for topic, ty, msg, t in converted]  # fmt: skip
    converted.sort(key=lambda row: row[2])
    writer = Writer(dst, version=8, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conns = {}
    for topic, ty in sorted({(row[0], row[1]) for row in converted}):  # alphabetical creation order
        conns[topic] = writer.add_connection(topic, ty, typestore=store)
    for topic, ty, t, msg in converted:
        writer.write(conns[topic], t, store.serialize_cdr(msg, ty))
    writer.close()
    return dst


def detect(world: dict, bag: Path, out: Path, capsys, *flags: str) -> tuple[dict, str, int]:
    """Run ``simdistill detect``; (stamp -> (boxes, scores)), stdout, exit code."""
    from simdistill_ros.cli import main

    args = ["--model", str(world["ckpt"]), "--bag", str(bag), "--out", str(out), "--data", str(world["data"])]
    code = main(["detect", *args, "--device", "cpu", "--score-threshold", "0.0", *flags])
    text = capsys.readouterr().out
    return read_detections(out), text, code


def read_detections(out: Path) -> dict:
    from simdistill_ros.detection.command import DETECTIONS_TOPIC

    msgs, _ = _messages(out)
    result = {}
    for topic, _, _, msg in msgs:
        if topic != DETECTIONS_TOPIC:
            continue
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        boxes = [(d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.size.x) for d in msg.detections]
        scores = [d.results[0].hypothesis.score for d in msg.detections]
        result[stamp] = (np.array(boxes).reshape(-1, 3), np.array(scores))
    return result


def assert_same_detections(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for stamp in want:
        np.testing.assert_allclose(got[stamp][1], want[stamp][1], atol=1e-4)
        np.testing.assert_allclose(got[stamp][0], want[stamp][0], atol=1e-3)


@pytest.fixture(scope="module")
def reference(world, tmp_path_factory) -> dict:
    """``detect`` on the synthetic world's own bag (nuscenes2bag layout, written by the project)."""
    out = tmp_path_factory.mktemp("ref") / "out"
    from simdistill_ros.cli import main

    assert main(["detect", "--model", str(world["ckpt"]), "--bag", str(world["bag"]), "--out", str(out),
                 "--device", "cpu", "--score-threshold", "0.0"]) == 0  # fmt: skip
    return read_detections(out)


@pytest.mark.parametrize(
    ("layout", "recognised", "front_topic"),
    [
        ("alphabetical", "nuscenes2bag", "/CAM_FRONT/image_rect_compressed"),
        ("bridge", "ros2_dataset_bridge", "/nuscenes/CAM_FRONT/image"),
        ("driver", "driver-style topics", "/camera/front/image_raw/compressed"),
    ],
)
def test_each_layout_gives_the_reference_frames_and_boxes(
    world, reference, tmp_path, capsys, layout, recognised, front_topic
):
    bag = write_layout(world["bag"], tmp_path / layout, layout)
    got, text, code = detect(world, bag, tmp_path / "out", capsys, "--strict")
    assert code == 0, text
    assert f"bag layout: {recognised}" in text, text
    assert f"CAM_FRONT: {front_topic}" in text, text
    # the first camera of the model's order is the sync reference: frames keep the ground truth's stamps
    assert f"detect summary: {FRAMES} frames done, 0 skipped, {FRAMES} of {FRAMES} with ground truth" in text
    assert_same_detections(got, reference)


def test_a_layout_named_in_one_params_yaml(world, reference, tmp_path, capsys):
    """Numbered cameras (``/rig/cam<i>/jpeg`` + ``/rig/cam<i>/calib``) name no camera: the bag is refused
    with a message saying how to configure it, and one ``--params`` YAML makes it read right."""
    from simdistill_ros.cli import main
    from simdistill_ros.frames.sensors import NUSCENES_CAMERAS

    bag = write_layout(world["bag"], tmp_path / "plain", "alphabetical")
    odd = tmp_path / "odd"
    number = {c: i for i, c in enumerate(NUSCENES_CAMERAS)}

    def rename(topic: str) -> str:
        cam, _, leaf = topic.strip("/").partition("/")
        if cam not in number:
            return topic
        return f"/rig/cam{number[cam]}/" + {"image_rect_compressed": "jpeg", "camera_info": "calib"}[leaf]

    _rename_topics(bag, odd, rename)
    args = ["detect", "--model", str(world["ckpt"]), "--bag", str(odd), "--out", str(tmp_path / "fail")]
    assert main([*args, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "no camera topics recognised" in err and "--params" in err and "/rig/cam0/jpeg" in err, err
    params = tmp_path / "sensors.yaml"
    cams = ", ".join(NUSCENES_CAMERAS)
    images = ", ".join(f"/rig/cam{i}/jpeg" for i in range(6))
    infos = ", ".join(f"/rig/cam{i}/calib" for i in range(6))
    params.write_text(
        "/**:\n  ros__parameters:\n"
        f"    camera_names: [{cams}]\n    image_topics: [{images}]\n    camera_info_topics: [{infos}]\n"
    )
    got, text, code = detect(world, odd, tmp_path / "out", capsys, "--params", str(params), "--strict")
    assert code == 0, text
    assert "bag layout: configured (explicit topics)" in text and "CAM_BACK: /rig/cam3/jpeg" in text, text
    assert_same_detections(got, reference)


def _rename_topics(src: Path, dst: Path, rename) -> None:
    from rosbags.rosbag2 import StoragePlugin, Writer

    msgs, store = _messages(src)
    writer = Writer(dst, version=8, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conns = {}
    for topic, ty, t, msg in msgs:
        if topic not in conns:
            conns[topic] = writer.add_connection(rename(topic), ty, typestore=store)
        writer.write(conns[topic], t, store.serialize_cdr(msg, ty))
    writer.close()


def test_camera_mismatch_is_named_and_fewer_cameras_are_allowed(world, tmp_path, capsys):
    bag = write_layout(world["bag"], tmp_path / "plain", "alphabetical")
    two = tmp_path / "two"
    _drop_topics(bag, two, lambda t: t.startswith("/CAM_BACK"))
    got, text, code = detect(world, two, tmp_path / "out", capsys)
    assert code == 0, text
    assert "missing: CAM_BACK_RIGHT, CAM_BACK, CAM_BACK_LEFT" in text, text
    assert len(got) == FRAMES
    from simdistill_ros.cli import main

    args = ["detect", "--model", str(world["ckpt"]), "--bag", str(bag), "--out", str(tmp_path / "out2")]
    assert main([*args, "--cameras", "CAM_LEFT_WING,CAM_FRONT_LEFT_2"]) == 2
    err = capsys.readouterr().err
    assert "none of the cameras ['CAM_LEFT_WING', 'CAM_FRONT_LEFT_2'] is in the bag" in err, err
    assert "'CAM_FRONT'" in err  # and it says which cameras the bag has


def _drop_topics(src: Path, dst: Path, drop) -> None:
    from rosbags.rosbag2 import StoragePlugin, Writer

    msgs, store = _messages(src)
    writer = Writer(dst, version=8, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conns = {}
    for topic, ty, t, msg in msgs:
        if drop(topic):
            continue
        if topic not in conns:
            conns[topic] = writer.add_connection(topic, ty, typestore=store)
        writer.write(conns[topic], t, store.serialize_cdr(msg, ty))
    writer.close()


def test_strict_exits_non_zero_and_names_the_reason_of_skipped_frames(world, tmp_path, capsys):
    bag = write_layout(world["bag"], tmp_path / "plain", "alphabetical")
    gap = tmp_path / "gap"
    seen = []

    def second_back_image(topic: str) -> bool:  # drop the 2nd image of CAM_BACK
        seen.append(topic)
        return topic == "/CAM_BACK/image_rect_compressed" and seen.count(topic) == 2

    _drop_topics(bag, gap, second_back_image)
    _, text, code = detect(world, gap, tmp_path / "out", capsys)
    assert code == 0, text
    _, text, code = detect(world, gap, tmp_path / "out_strict", capsys, "--strict")
    assert code == 1, text
    assert f"detect summary: {FRAMES - 1} frames done, 1 skipped (camera missing: 1)" in text, text


def test_live_pipeline_fed_from_the_bag_gives_the_offline_boxes(world, reference, tmp_path):
    """The node's ROS-free pipeline (detection/live.py), fed the late-/tf_static bag message by message in
    recording order: frames that arrive before the static transforms wait for them, none is dropped, and
    every frame's boxes equal ``detect``'s."""
    from simdistill_ros.detection.core import DetectorCore
    from simdistill_ros.detection.live import LivePipeline
    from simdistill_ros.frames import BagReader
    from simdistill_ros.frames.messages import stamp_to_ns

    bag = write_layout(world["bag"], tmp_path / "late_tf", "alphabetical")
    core = DetectorCore.from_checkpoint(world["ckpt"], "cpu", score_threshold=0.0)
    with BagReader(bag) as reader:
        sensors = reader.sensors(None, core.trained_cameras)
        kind = {c.image_topic: ("image", c.name) for c in sensors.cameras}
        kind |= {c.info_topic: ("info", c.name) for c in sensors.cameras}
        kind |= {sensors.tf_topic: ("tf", None), sensors.tf_static_topic: ("tf_static", None)}
        cams = [c.name for c in sensors.cameras]
        core.camera_names = cams
        pipeline = LivePipeline(core, cams, [c.compressed for c in sensors.cameras])
        results = []
        waited = 0
        for topic, _, msg in reader.messages(kind):
            results += pipeline.on_message(*kind[topic], msg, stamp_to_ns)
            waited = max(waited, len(pipeline.waiting))
    assert waited >= 1  # frames did arrive before /tf_static
    assert not pipeline.failed and len(pipeline.waiting) == 0
    live = {}
    for stamp, result in results:
        boxes = np.array([(b.center[0], b.center[1], b.size[0]) for b in result.boxes]).reshape(-1, 3)
        live[stamp] = (boxes, np.array([b.score for b in result.boxes]))
    assert_same_detections(live, reference)


def test_replay_stores_every_frame_with_its_ground_truth(world, tmp_path):
    """Alphabetical topics and a late /tf_static: every frame is stored, in the teacher's camera order,
    each with its ground truth."""
    import torch

    from simdistill_ros.cli import main
    from simdistill_ros.frames.sensors import NUSCENES_CAMERAS
    from simdistill_ros.models import TeacherModel, save_checkpoint, tiny
    from simdistill_ros.targets.store import TargetStore

    torch.manual_seed(0)
    cfg = tiny()
    teacher = save_checkpoint(
        tmp_path / "teacher", TeacherModel(cfg), cfg, {"model_type": "teacher", "cameras": NUSCENES_CAMERAS}
    )
    bag = write_layout(world["bag"], tmp_path / "late_tf", "alphabetical")
    store_dir = tmp_path / "store"
    code = main(["replay", "--teacher", str(teacher), "--bags", str(bag), "--out", str(store_dir),
                 "--data", str(world["data"]), "--device", "cpu", "--strict"])  # fmt: skip
    assert code == 0
    store = TargetStore(store_dir)
    assert len(store) == FRAMES
    for i in range(len(store)):
        frame = store[i]
        assert frame.has_gt and frame.sample_token
        assert frame.cameras == NUSCENES_CAMERAS


def write_nuscenes2mcap(src: Path, dst: Path) -> Path:
    """The synthetic bag as Foxglove's nuscenes2mcap writes it: lowercase topics and frames, protobuf
    foxglove schemas, every transform on /tf (sensor extrinsics repeated at each sensor message)."""
    from foxglove_schemas_protobuf.CameraCalibration_pb2 import CameraCalibration
    from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
    from foxglove_schemas_protobuf.FrameTransform_pb2 import FrameTransform
    from foxglove_schemas_protobuf.PackedElementField_pb2 import PackedElementField
    from foxglove_schemas_protobuf.PointCloud_pb2 import PointCloud
    from google.protobuf.timestamp_pb2 import Timestamp
    from mcap_protobuf.writer import Writer

    msgs, _ = _messages(src)
    statics = {}
    for topic, _, _, msg in msgs:
        if topic == "/tf_static":
            statics |= {t.child_frame_id.lower(): t.transform for t in msg.transforms}

    def ts(stamp) -> Timestamp:
        return Timestamp(seconds=stamp.sec, nanos=stamp.nanosec)

    def frame_transform(stamp, parent: str, child: str, t) -> FrameTransform:
        f = FrameTransform(timestamp=ts(stamp), parent_frame_id=parent, child_frame_id=child)
        f.translation.x, f.translation.y, f.translation.z = t.translation.x, t.translation.y, t.translation.z
        q = t.rotation
        f.rotation.x, f.rotation.y, f.rotation.z, f.rotation.w = q.x, q.y, q.z, q.w
        return f

    with open(dst, "wb") as out:
        writer = Writer(out)
        for topic, _, t, msg in msgs:
            cam = topic.strip("/").split("/")[0]
            if topic == "/tf":
                for tr in msg.transforms:
                    f = frame_transform(tr.header.stamp, tr.header.frame_id, tr.child_frame_id, tr.transform)
                    writer.write_message("/tf", f, log_time=t, publish_time=t)
            elif cam in POSITION:
                frame = cam.lower()
                leaf = topic.rsplit("/", 1)[1]
                stamp = msg.header.stamp
                if leaf == "image_rect_compressed":
                    mount = frame_transform(stamp, "base_link", frame, statics[frame])
                    writer.write_message("/tf", mount, log_time=t, publish_time=t)
                    image = CompressedImage(
                        timestamp=ts(stamp), frame_id=frame, data=bytes(msg.data), format="jpeg"
                    )
                    writer.write_message(f"/{frame}/image_rect_compressed", image, log_time=t, publish_time=t)
                else:
                    calib = CameraCalibration(
                        timestamp=ts(stamp), frame_id=frame, width=msg.width, height=msg.height,
                        distortion_model="plumb_bob", D=list(msg.d), K=list(msg.k), R=list(msg.r),
                        P=list(msg.p),
                    )  # fmt: skip
                    writer.write_message(f"/{frame}/camera_info", calib, log_time=t, publish_time=t)
            elif topic == "/LIDAR_TOP":
                stamp = msg.header.stamp
                mount = frame_transform(stamp, "base_link", "lidar_top", statics["lidar_top"])
                writer.write_message("/tf", mount, log_time=t, publish_time=t)
                fields = [PackedElementField(name=f.name, offset=f.offset, type=PackedElementField.FLOAT32)
                          for f in msg.fields]  # fmt: skip
                cloud = PointCloud(timestamp=ts(stamp), frame_id="lidar_top", point_stride=msg.point_step,
                                   fields=fields, data=bytes(msg.data))  # fmt: skip
                cloud.pose.orientation.w = 1.0
                writer.write_message("/lidar_top", cloud, log_time=t, publish_time=t)
        writer.finish()
    return dst


def test_foxglove_nuscenes2mcap_is_read_without_configuration(world, reference, tmp_path, capsys):
    pytest.importorskip("mcap_protobuf")
    bag = write_nuscenes2mcap(world["bag"], tmp_path / "scene.mcap")
    got, text, code = detect(world, bag, tmp_path / "out", capsys, "--strict")
    assert code == 0, text
    assert "bag layout: nuscenes2mcap (Foxglove)" in text, text
    assert "CAM_FRONT: /cam_front/image_rect_compressed + /cam_front/camera_info" in text, text
    assert "LiDAR: /lidar_top" in text, text
    assert f"detect summary: {FRAMES} frames done, 0 skipped, {FRAMES} of {FRAMES} with ground truth" in text
    assert_same_detections(got, reference)
