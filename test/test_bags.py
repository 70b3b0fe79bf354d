"""Real rosbag2 files (mcap and sqlite3) written by SensorBagWriter and read back as frames.

A tiny hand-built rig (three cameras of two sizes, a LiDAR, a moving base) is written event by event the
way `simdistill synth` writes scenes; the reader must give back the same intrinsics, extrinsics, points
and stamps. The bags are also read with stock tools (rosbags' AnyReader and built-in typestore, the
`mcap` package) to show they are ordinary ROS 2 recordings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.interfaces import QosDurability
from rosbags.typesys import Stores, get_typestore

from simdistill_ros.frames import (
    BagError,
    BagReader,
    FrameReader,
    SensorBagWriter,
    TopicNames,
    read_frames,
)
from simdistill_ros.frames import messages as m
from simdistill_ros.frames.pointcloud import FLOAT32, UINT16
from simdistill_ros.geometry import CameraRig, PinholeCamera, Transform, camera_mount

MS = 1_000_000
T0 = 1_700_000_000_000_000_000
PERIOD = 83_333_333  # 12 Hz cameras
OFFSET = 8 * MS  # camera i fires i * 8 ms after the cycle start
LIDAR_PERIOD = 50 * MS  # 20 Hz LiDAR
STORAGES = ["mcap", "sqlite3"]


def k_matrix(f: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[f, 0, cx], [0, f * 1.01, cy], [0, 0, 1.0]])


def tiny_rig(names=("CAM_FRONT", "CAM_FRONT_LEFT", "CAM_BACK")) -> CameraRig:
    cams = (
        PinholeCamera(names[0], 12, 8, k_matrix(10, 6, 4), camera_mount(1.7, 0.0, 1.5, 0.0)),
        PinholeCamera(names[1], 12, 8, k_matrix(11, 6.5, 3.5), camera_mount(1.5, 0.5, 1.5, 55.0, 5.0)),
        PinholeCamera(names[2], 16, 10, k_matrix(7, 8, 5), camera_mount(0.0, 0.0, 1.6, 180.0)),
    )
    return CameraRig(cams, Transform.from_xyz_yaw(0.9, 0.05, 1.8, 0.05), lidar_frame="LIDAR_TOP")


def ego_pose(stamp_ns: int) -> Transform:
    t = (stamp_ns - T0) * 1e-9
    return Transform.from_xyz_yaw(5.0 * t, 0.5 * t, 0.0, 0.2 * t)


def image(cam_index: int, n: int, cam: PinholeCamera) -> np.ndarray:
    """Flat colours (jpeg keeps them to a level or two) that identify camera and cycle."""
    img = np.empty((cam.height, cam.width, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 40 + 60 * cam_index, 20 + 10 * n, 200 - 30 * cam_index
    return img


def sweep(k: int) -> np.ndarray:
    rng = np.random.default_rng(k)
    pts = rng.uniform(-20, 20, size=(25, 4)).astype(np.float32)
    pts[:, 3] = k
    return pts


@dataclass
class Scene:
    path: Path
    rig: CameraRig
    camera_stamps: list[dict[str, int]] = field(default_factory=list)
    lidar_stamps: list[int] = field(default_factory=list)


def write_scene(
    path: Path,
    storage: str = "mcap",
    cycles: int = 4,
    compressed: bool = True,
    rig: CameraRig | None = None,
    topics: TopicNames | None = None,
    static_tf: bool = True,
    lidar: bool = True,
    frame_ids: dict[str, str] | None = None,
    skip: set[tuple[int, str]] = frozenset(),
    points=sweep,
    keep_sweep=lambda k: True,
) -> Scene:
    """Cameras in cycles, LiDAR at 20 Hz, map -> base_link on /tf at every sensor stamp, sensors on
    /tf_static (or, with ``static_tf=False``, on /tf at every stamp, as some converters do)."""
    rig = rig or tiny_rig()
    scene = Scene(path, rig)
    events = []
    for n in range(cycles):
        stamps = {}
        for i, cam in enumerate(rig.cameras):
            st = T0 + n * PERIOD + i * OFFSET
            stamps[cam.name] = st
            if (n, cam.name) not in skip:
                events.append((st, 0, i, n))
        scene.camera_stamps.append(stamps)
    if lidar:
        for k in filter(keep_sweep, range((cycles * PERIOD) // LIDAR_PERIOD + 1)):
            scene.lidar_stamps.append(T0 + k * LIDAR_PERIOD)
            events.append((T0 + k * LIDAR_PERIOD, 1, -1, k))
    events.sort()
    sensors = [(rig.base_frame, c.frame_id, c.cam_to_base) for c in rig.cameras]
    sensors.append((rig.base_frame, rig.lidar_frame, rig.lidar_to_base))
    with SensorBagWriter(path, storage=storage, topics=topics, compressed_images=compressed) as bag:
        if static_tf:
            bag.write_tf_static(sensors, T0 - MS)
        for st, kind, i, n in events:
            bag.write_tf(st, "map", rig.base_frame, ego_pose(st))
            if not static_tf:
                for parent, child, t in sensors:
                    bag.write_tf(st, parent, child, t)
            if kind == 0:
                cam = rig.cameras[i]
                frame_id = (frame_ids or {}).get(cam.name, cam.frame_id)
                bag.write_image(cam.name, st, image(i, n, cam), frame_id=frame_id)
                bag.write_camera_info(cam, st)
            else:
                bag.write_points(st, points(n), frame_id=rig.lidar_frame)
    return scene


def nearest_lidar(scene: Scene, stamp: int) -> int:
    return min(scene.lidar_stamps, key=lambda s: (abs(s - stamp), s))


def check_frames(scene: Scene, frames, compressed: bool = True) -> None:
    rig = scene.rig
    assert [f.index for f in frames] == list(range(len(frames)))
    assert [f.stamp_ns for f in frames] == [s[rig.names[0]] for s in scene.camera_stamps]
    for f, stamps in zip(frames, scene.camera_stamps):
        assert f.rig.names == rig.names
        assert f.image_stamps_ns == stamps
        assert f.source == str(scene.path)
        for i, (got, want) in enumerate(zip(f.rig.cameras, rig.cameras)):
            np.testing.assert_allclose(got.intrinsics, want.intrinsics)
            assert (got.width, got.height) == (want.width, want.height)
            np.testing.assert_allclose(got.cam_to_base.matrix(), want.cam_to_base.matrix(), atol=1e-9)
            n = frames.index(f)
            img = f.images[want.name]
            assert img.dtype == np.uint8 and img.shape == (want.height, want.width, 3)
            ref = image(i, n, want).astype(int)
            assert np.abs(img.astype(int) - ref).max() <= (3 if compressed else 0)
        lidar_stamp = nearest_lidar(scene, f.stamp_ns)
        assert f.lidar_stamp_ns == lidar_stamp
        k = scene.lidar_stamps.index(lidar_stamp)
        np.testing.assert_allclose(f.points, rig.lidar_to_base.apply(sweep(k)), atol=1e-5)
        assert f.points.dtype == np.float32 and f.points.shape == (25, 4)
        np.testing.assert_allclose(f.rig.lidar_to_base.matrix(), rig.lidar_to_base.matrix(), atol=1e-9)
        np.testing.assert_allclose(f.ego_pose.matrix(), ego_pose(f.stamp_ns).matrix(), atol=1e-6)


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("compressed", [True, False], ids=["jpeg", "rgb8"])
def test_round_trip(tmp_path, storage, compressed):
    scene = write_scene(tmp_path / "bag", storage=storage, compressed=compressed)
    assert not (tmp_path / "bag.partial").exists()
    reader = FrameReader(scene.path, require_lidar=True)
    frames = list(reader)
    check_frames(scene, frames, compressed)
    assert reader.stats.frames == 4 and reader.stats.skipped_total == 0
    assert reader.stats.cameras == ["CAM_FRONT", "CAM_FRONT_LEFT", "CAM_BACK"]
    # Deterministic: a second pass gives the same frames.
    again = list(read_frames(scene.path, require_lidar=True))
    for a, b in zip(frames, again):
        assert a.stamp_ns == b.stamp_ns and np.array_equal(a.points, b.points)
        assert all(np.array_equal(a.images[k], b.images[k]) for k in a.images)


@pytest.mark.parametrize("storage", STORAGES)
def test_readable_with_stock_rosbags_typestore(tmp_path, storage):
    scene = write_scene(tmp_path / "bag", storage=storage, cycles=2)
    stock = get_typestore(Stores.ROS2_JAZZY)
    seen: dict[str, int] = {}
    with AnyReader([scene.path], default_typestore=stock) as reader:
        qos = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}
        assert qos["/tf_static"][0].durability == QosDurability.TRANSIENT_LOCAL
        assert qos["/tf"] == []
        for conn, t, raw in reader.messages():
            msg = stock.deserialize_cdr(raw, conn.msgtype)  # the stock store, not ours
            seen[conn.topic] = seen.get(conn.topic, 0) + 1
            if conn.topic == "/CAM_BACK/camera_info":
                assert msg.header.frame_id == "CAM_BACK" and (msg.width, msg.height) == (16, 10)
                np.testing.assert_allclose(msg.k.reshape(3, 3), scene.rig.camera("CAM_BACK").intrinsics)
                np.testing.assert_allclose(msg.r.reshape(3, 3), np.eye(3))
                np.testing.assert_allclose(msg.p.reshape(3, 4)[:, :3], msg.k.reshape(3, 3))
                assert msg.distortion_model == "plumb_bob" and len(msg.d) == 0
                assert t == m.stamp_to_ns(msg.header.stamp)
            if conn.topic == "/CAM_FRONT/image_rect_compressed":
                assert conn.msgtype == "sensor_msgs/msg/CompressedImage" and "jpeg" in msg.format
            if conn.topic == "/tf_static":
                assert {tr.child_frame_id for tr in msg.transforms} == {
                    "CAM_FRONT",
                    "CAM_FRONT_LEFT",
                    "CAM_BACK",
                    "LIDAR_TOP",
                }
    assert seen["/tf_static"] == 1 and seen["/CAM_FRONT/image_rect_compressed"] == 2
    assert seen["/LIDAR_TOP"] == len(scene.lidar_stamps)


def test_mcap_readable_with_mcap_package(tmp_path):
    from mcap.reader import make_reader

    scene = write_scene(tmp_path / "bag", storage="mcap", cycles=2)
    files = list(scene.path.glob("*.mcap"))
    assert [f.name for f in files] == ["bag.mcap"]  # named after the final bag, not the partial dir
    stock = get_typestore(Stores.ROS2_JAZZY)
    topics = {}
    with open(files[0], "rb") as fh:
        for schema, channel, message in make_reader(fh).iter_messages():
            topics[channel.topic] = schema.name
            assert channel.message_encoding == "cdr" and schema.encoding == "ros2msg"
            msg = stock.deserialize_cdr(message.data, schema.name)
            if schema.name == "sensor_msgs/msg/PointCloud2":
                assert msg.point_step == 16 and [f.name for f in msg.fields] == ["x", "y", "z", "intensity"]
                assert message.log_time == m.stamp_to_ns(msg.header.stamp)
    assert topics["/LIDAR_TOP"] == "sensor_msgs/msg/PointCloud2"
    assert topics["/tf"] == topics["/tf_static"] == "tf2_msgs/msg/TFMessage"
    assert topics["/CAM_BACK/camera_info"] == "sensor_msgs/msg/CameraInfo"


def test_lower_case_channel_names(tmp_path):
    rig = tiny_rig(("cam_front", "cam_front_left", "cam_back"))
    scene = write_scene(tmp_path / "bag", rig=rig, topics=TopicNames(lidar="/lidar_top"))
    with BagReader(scene.path) as bag:
        assert "/cam_front/image_rect_compressed" in bag.topics
    # Discovered names are nuScenes channel names; the default '/LIDAR_TOP' finds '/lidar_top'.
    frames = list(FrameReader(scene.path, require_lidar=True))
    assert len(frames) == 4 and frames[0].rig.names == ["CAM_FRONT", "CAM_FRONT_LEFT", "CAM_BACK"]
    assert frames[0].rig.camera("CAM_FRONT").frame_id == "cam_front"
    np.testing.assert_allclose(frames[0].rig.camera("CAM_BACK").intrinsics, rig.camera("cam_back").intrinsics)
    assert frames[0].points.shape == (25, 4)
    # Explicit upper-case names find lower-case topics too.
    frames = list(FrameReader(scene.path, cameras=["CAM_BACK", "CAM_FRONT"]))
    assert frames[0].rig.names == ["CAM_BACK", "CAM_FRONT"] and len(frames) == 4


def test_image_and_compressed_image_topics_side_by_side(tmp_path):
    scene = write_scene(tmp_path / "bag", compressed=False)
    with BagReader(scene.path) as bag:
        cams = bag.camera_topics()
        assert [c.image_topic for c in cams] == [f"/{n}/image_rect" for n in scene.rig.names]
        assert not any(c.compressed for c in cams)
        # Asking for compressed topics explicitly falls back to the raw ones that exist.
        assert bag.camera_topics(cameras=["CAM_BACK"])[0].image_topic == "/CAM_BACK/image_rect"


def test_extrinsics_only_from_tf(tmp_path):
    scene = write_scene(tmp_path / "bag", storage="sqlite3", static_tf=False)
    with BagReader(scene.path) as bag:
        assert "/tf_static" not in bag.topics
    check_frames(scene, list(FrameReader(scene.path, require_lidar=True)))


def test_unknown_frame_is_skipped_and_reported(tmp_path):
    scene = write_scene(tmp_path / "bag", frame_ids={"CAM_BACK": "cam_back_optical"})
    reader = FrameReader(scene.path)
    assert list(reader) == []
    assert reader.stats.skipped["tf lookup failed"] == 4
    example = reader.stats.examples["tf lookup failed"]
    assert "unknown frame 'cam_back_optical'" in example and "CAM_FRONT" in example and "map" in example
    assert "tf lookup failed: 4" in str(reader.stats)


def write_custom(path: Path, image_msg=None, info_msg=None, cloud_msg=None, storage="mcap") -> Path:
    """One camera (CAM_FRONT) with hand-built messages at T0, static tf, map pose."""
    rig = tiny_rig()
    with SensorBagWriter(path, storage=storage) as bag:
        bag.write_tf_static(
            [
                ("base_link", "CAM_FRONT", rig.cameras[0].cam_to_base),
                ("base_link", "LIDAR_TOP", rig.lidar_to_base),
            ],
            T0,
        )
        bag.write_tf(T0, "map", "base_link", ego_pose(T0))
        if cloud_msg is not None:
            bag.write("/LIDAR_TOP", m.POINT_CLOUD2, cloud_msg, T0)
        if image_msg is not None:
            bag.write("/CAM_FRONT/image_rect", m.IMAGE, image_msg, T0)
        else:
            bag.write_image("CAM_FRONT", T0, np.zeros((8, 12, 3), np.uint8))
        if info_msg is not None:
            bag.write("/CAM_FRONT/camera_info", m.CAMERA_INFO, info_msg, T0)
        else:
            bag.write_camera_info(rig.cameras[0], T0)
    return path


def raw_image(encoding: str, data: np.ndarray, step: int | None = None):
    T = m.typestore().types
    h, w = data.shape[:2]
    flat = np.ascontiguousarray(data).reshape(h, -1)
    if step is not None:
        flat = np.pad(flat, ((0, 0), (0, step - flat.shape[1])))
    return T[m.IMAGE](
        header=m.header_msg(T0, "CAM_FRONT"),
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=0,
        step=flat.shape[1],
        data=flat.reshape(-1),
    )


@pytest.mark.parametrize("encoding", ["bgr8", "rgba8", "bgra8", "mono8"])
def test_raw_encodings_decode_to_rgb(tmp_path, encoding):
    rgb = np.random.default_rng(1).integers(0, 255, (8, 12, 3), dtype=np.uint8)
    data = {
        "bgr8": rgb[..., ::-1],
        "rgba8": np.dstack([rgb, np.full((8, 12), 255, np.uint8)]),
        "bgra8": np.dstack([rgb[..., ::-1], np.zeros((8, 12), np.uint8)]),
        "mono8": rgb[..., 0],
    }[encoding]
    step = data.shape[1] * (data.shape[2] if data.ndim == 3 else 1) + 4  # padded rows
    bag = write_custom(tmp_path / "bag", image_msg=raw_image(encoding, data, step))
    (frame,) = list(FrameReader(bag))
    want = np.repeat(rgb[..., :1], 3, axis=2) if encoding == "mono8" else rgb
    np.testing.assert_array_equal(frame.images["CAM_FRONT"], want)


def test_unsupported_encoding_is_a_clear_error(tmp_path):
    bag = write_custom(tmp_path / "bag", image_msg=raw_image("32FC1", np.zeros((8, 48), np.uint8)))
    want = r"bag: /CAM_FRONT/image_rect: unsupported Image encoding '32FC1'.*mono16"
    with pytest.raises(BagError, match=want):
        list(FrameReader(bag))


def camera_info(k: np.ndarray, width=12, height=8):
    T = m.typestore().types
    return T[m.CAMERA_INFO](
        header=m.header_msg(T0, "CAM_FRONT"),
        height=height,
        width=width,
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=np.asarray(k, float).reshape(9),
        r=np.full(9, 7.0),
        p=np.zeros(12),
        binning_x=0,
        binning_y=0,
        roi=T["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        ),
    )


@pytest.mark.parametrize(
    ("k", "why"),
    [
        (np.zeros((3, 3)), "uncalibrated"),
        (k_matrix(np.nan, 6, 4), "NaN/inf"),
        (k_matrix(np.inf, 6, 4), "NaN/inf"),
        (k_matrix(-9, 6, 4), "must be positive"),
        (k_matrix(1e30, 6, 4), "field of view"),
        (k_matrix(1e-3, 6, 4), "field of view"),
        (k_matrix(9, 6e5, 4), "principal point"),
    ],
)
def test_intrinsics_outside_a_physical_range_skip_the_frame_with_a_warning(tmp_path, caplog, k, why):
    bag = write_custom(tmp_path / "bag", info_msg=camera_info(k))
    reader = FrameReader(bag)
    with caplog.at_level("WARNING"):
        assert list(reader) == []
    assert reader.stats.skipped["bad intrinsics"] == 1
    example = reader.stats.examples["bad intrinsics"]
    assert "/CAM_FRONT/camera_info: unusable intrinsics K=" in example and why in example
    assert any("bad intrinsics" in r.getMessage() and why in r.getMessage() for r in caplog.records)


def test_a_corrupt_jpeg_skips_its_frame_and_is_counted(tmp_path):
    from simdistill_ros.frames.images import encode_jpeg

    rgb = np.random.default_rng(0).integers(0, 255, (8, 12, 3), np.uint8)
    jpeg = encode_jpeg(rgb).tobytes()
    T = m.typestore().types
    msg = T[m.COMPRESSED_IMAGE](
        header=m.header_msg(T0, "CAM_FRONT"),
        format="rgb8; jpeg compressed bgr8",
        data=np.frombuffer(jpeg[: len(jpeg) - 40] + b"\xff\xd9", np.uint8),  # entropy data cut short
    )
    bag = tmp_path / "bag"
    rig = tiny_rig()
    with SensorBagWriter(bag) as w:
        w.write_tf_static([("base_link", "CAM_FRONT", rig.cameras[0].cam_to_base)], T0)
        w.write("/CAM_FRONT/image_rect_compressed", m.COMPRESSED_IMAGE, msg, T0)
        w.write_camera_info(rig.cameras[0], T0)
    reader = FrameReader(bag)
    assert list(reader) == []
    assert reader.stats.skipped["corrupt image"] == 1
    assert "/CAM_FRONT/image_rect_compressed: corrupt jpeg" in reader.stats.examples["corrupt image"]


def test_camera_info_r_is_ignored(tmp_path):
    k = k_matrix(9, 6, 4)
    bag = write_custom(tmp_path / "bag", info_msg=camera_info(k))  # R is garbage (all 7s)
    (frame,) = list(FrameReader(bag))
    np.testing.assert_allclose(frame.rig.cameras[0].intrinsics, k)
    np.testing.assert_allclose(
        frame.rig.cameras[0].cam_to_base.matrix(), tiny_rig().cameras[0].cam_to_base.matrix()
    )


def test_camera_info_size_mismatch_is_a_clear_error(tmp_path):
    bag = write_custom(tmp_path / "bag", info_msg=camera_info(k_matrix(9, 6, 4), width=640, height=480))
    with pytest.raises(BagError, match="camera_info is 640x480 but the image is 12x8"):
        list(FrameReader(bag))


def test_nonstandard_pointcloud_layout_in_a_bag(tmp_path):
    pts = sweep(3)
    pts[2, 1] = np.nan  # dropped
    dt = np.dtype(
        {
            "names": ["x", "y", "z", "intensity", "ring"],
            "formats": ["<f4"] * 4 + ["<u2"],
            "offsets": [0, 4, 8, 16, 20],
            "itemsize": 32,
        }
    )
    rec = np.zeros(len(pts), dt)
    for j, name in enumerate(["x", "y", "z", "intensity"]):
        rec[name] = pts[:, j]
    rec["ring"] = np.arange(len(pts)) % 32
    T = m.typestore().types
    fields = [
        T[m.POINT_FIELD](name=n, offset=o, datatype=d, count=1)
        for n, o, d in [
            ("intensity", 16, FLOAT32),
            ("ring", 20, UINT16),
            ("x", 0, FLOAT32),
            ("y", 4, FLOAT32),
            ("z", 8, FLOAT32),
        ]
    ]
    cloud = T[m.POINT_CLOUD2](
        header=m.header_msg(T0, "LIDAR_TOP"),
        height=1,
        width=len(pts),
        fields=fields,
        is_bigendian=False,
        point_step=32,
        row_step=32 * len(pts),
        data=np.frombuffer(rec.tobytes(), np.uint8),
        is_dense=False,
    )
    bag = write_custom(tmp_path / "bag", cloud_msg=cloud, storage="sqlite3")
    (frame,) = list(FrameReader(bag, require_lidar=True))
    keep = np.isfinite(pts).all(axis=1)
    np.testing.assert_allclose(frame.points, tiny_rig().lidar_to_base.apply(pts[keep]), atol=1e-5)


def test_nan_points_dropped_in_round_trip(tmp_path):
    def with_nans(k):
        p = sweep(k)
        p[::5, 0] = np.nan
        return p

    scene = write_scene(tmp_path / "bag", cycles=2, points=with_nans)
    frames = list(FrameReader(scene.path, require_lidar=True))
    assert all(f.points.shape == (20, 4) and np.isfinite(f.points).all() for f in frames)


@pytest.mark.parametrize("storage", STORAGES)
def test_truncated_bag_is_a_clear_error(tmp_path, storage):
    scene = write_scene(tmp_path / "bag", storage=storage, cycles=3)
    data = next(p for p in scene.path.iterdir() if p.name != "metadata.yaml")
    raw = data.read_bytes()
    data.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(BagError) as info:
        list(FrameReader(scene.path))
    text = str(info.value)
    assert data.name in text and ("truncated" in text or "corrupt" in text)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no library traceback chained


def test_not_a_bag_errors(tmp_path):
    with pytest.raises(BagError, match="does not exist"):
        BagReader(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="no metadata.yaml"):
        BagReader(tmp_path / "empty")
    (tmp_path / "file.txt").write_text("hello")
    with pytest.raises(BagError, match="not a rosbag2"):
        BagReader(tmp_path / "file.txt")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "metadata.yaml").write_text("{not: [yaml")
    with pytest.raises(BagError, match="cannot open bag"):
        BagReader(tmp_path / "junk")


def test_data_file_path_opens_its_bag(tmp_path):
    scene = write_scene(tmp_path / "bag", storage="sqlite3", cycles=1)
    with BagReader(scene.path / "bag.db3") as bag:
        assert "/LIDAR_TOP" in bag.topics
    scene = write_scene(tmp_path / "bag2", storage="mcap", cycles=1)
    assert len(list(FrameReader(scene.path / "bag2.mcap"))) == 1


def test_missing_topics_list_what_the_bag_has(tmp_path):
    scene = write_scene(tmp_path / "bag", cycles=1, lidar=False)
    with pytest.raises(BagError, match=r"no LiDAR topic '/LIDAR_TOP'.*/CAM_FRONT/image_rect_compressed"):
        list(FrameReader(scene.path, require_lidar=True))
    with pytest.raises(BagError, match=r"no image topic for camera 'CAM_NOPE'.*/CAM_BACK/camera_info"):
        list(FrameReader(scene.path, cameras=["CAM_NOPE"]))
    with pytest.raises(BagError, match=r"no camera topics found.*the bag has: .*/tf"):
        list(FrameReader(scene.path, topics=TopicNames(image_compressed_template="/{camera}/image_color")))
    # Without require_lidar the frames come without points.
    reader = FrameReader(scene.path)
    (frame,) = list(reader)
    assert frame.points is None and frame.lidar_stamp_ns is None and frame.rig.lidar_to_base is None
    assert reader.stats.frames_without_lidar == 1


def test_require_lidar_skips_frames_without_a_sweep_in_the_window(tmp_path):
    # Sweeps only during the first 100 ms: cycles at 0 and 83 ms have one within 50 ms, 167 and 250 do not.
    scene = write_scene(tmp_path / "bag", cycles=4, keep_sweep=lambda k: k <= 2)
    reader = FrameReader(scene.path, require_lidar=True)
    frames = list(reader)
    assert [f.stamp_ns for f in frames] == [s["CAM_FRONT"] for s in scene.camera_stamps[:2]]
    assert [f.lidar_stamp_ns - T0 for f in frames] == [0, 100 * MS]
    assert reader.stats.skipped["no LiDAR sweep in window"] == 2
    assert "within 50000000 ns" in reader.stats.examples["no LiDAR sweep in window"]
    # Without require_lidar those frames come without points.
    reader = FrameReader(scene.path)
    assert [f.points is None for f in reader] == [False, False, True, True]
    assert reader.stats.frames_without_lidar == 2


def test_missing_camera_message_drops_that_cycle_and_counts_it(tmp_path):
    scene = write_scene(tmp_path / "bag", cycles=5, skip={(2, "CAM_FRONT_LEFT")})
    reader = FrameReader(scene.path, require_lidar=True)
    frames = list(reader)
    assert [f.stamp_ns for f in frames] == [
        s["CAM_FRONT"] for i, s in enumerate(scene.camera_stamps) if i != 2
    ]
    assert reader.stats.dropped_images["CAM_FRONT"] == 1  # the reference image that found no partner
    assert reader.stats.dropped_images["CAM_BACK"] == 1
    assert reader.stats.skipped["camera missing"] == 1 and reader.stats.frames == 4


def test_writer_is_atomic(tmp_path):
    path = tmp_path / "bag"
    with pytest.raises(RuntimeError, match="boom"):
        with SensorBagWriter(path) as bag:
            bag.write_tf(T0, "map", "base_link", Transform())
            raise RuntimeError("boom")
    assert not path.exists() and not (tmp_path / "bag.partial").exists()

    write_scene(path, cycles=1)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        SensorBagWriter(path).open()
    # A failing overwrite leaves the old bag intact; a clean one replaces it.
    with pytest.raises(RuntimeError):
        with SensorBagWriter(path, overwrite=True):
            raise RuntimeError("half way")
    assert len(list(FrameReader(path))) == 1
    write_scene_over = SensorBagWriter(path, storage="sqlite3", overwrite=True)
    with write_scene_over as bag:
        bag.write_tf(T0, "map", "base_link", Transform())
    with BagReader(path) as reader:
        assert list(reader.topics) == ["/tf"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag"]


def test_stale_partial_dir_is_replaced(tmp_path):
    stale = tmp_path / "bag.partial"
    stale.mkdir()
    (stale / "junk").write_text("left by a killed process")
    write_scene(tmp_path / "bag", cycles=1)
    assert not stale.exists() and (tmp_path / "bag" / "metadata.yaml").exists()


def test_generic_write_rejects_type_change_and_unknown_storage(tmp_path):
    with pytest.raises(ValueError, match="storage"):
        SensorBagWriter(tmp_path / "x", storage="bag")
    with pytest.raises(ValueError, match="already carries"):
        with SensorBagWriter(tmp_path / "bag") as bag:
            bag.write_tf(T0, "map", "base_link", Transform())
            bag.write_image("tf", T0, np.zeros((4, 4, 3), np.uint8))
            T = m.typestore().types
            bag.write("/tf", "std_msgs/msg/String", T["std_msgs/msg/String"](data="x"), T0)
    assert not (tmp_path / "bag").exists()


def test_vision_msgs_can_be_written_generically(tmp_path):
    store = m.typestore()
    if "vision_msgs/msg/Detection3DArray" not in store.types:
        pytest.skip("the project typestore with vision_msgs is not available")
    T = store.types
    msg = T["vision_msgs/msg/Detection3DArray"](header=m.header_msg(T0, "base_link"), detections=[])
    with SensorBagWriter(tmp_path / "bag") as bag:
        bag.write("/detections", "vision_msgs/msg/Detection3DArray", msg, T0)
    with BagReader(tmp_path / "bag") as reader:
        ((topic, t, back),) = list(reader.messages(["/detections"]))
        assert t == T0 and back.detections == []


def test_png_compressed_image_and_no_world_frame(tmp_path):
    import cv2

    rgb = np.random.default_rng(2).integers(0, 255, (8, 12, 3), dtype=np.uint8)
    ok, png = cv2.imencode(".png", rgb[..., ::-1])
    T = m.typestore().types
    msg = T[m.COMPRESSED_IMAGE](header=m.header_msg(T0, "CAM_FRONT"), format="png", data=png.reshape(-1))
    cam = tiny_rig().cameras[0]
    with SensorBagWriter(tmp_path / "bag", storage="sqlite3") as bag:
        bag.write_tf_static([("base_link", "CAM_FRONT", cam.cam_to_base)], T0)
        bag.write("/CAM_FRONT/image_rect_compressed", m.COMPRESSED_IMAGE, msg, T0)
        bag.write_camera_info(cam, T0)
    (frame,) = list(FrameReader(tmp_path / "bag"))
    np.testing.assert_array_equal(frame.images["CAM_FRONT"], rgb)  # png is lossless
    assert frame.ego_pose is None and frame.points is None


def test_dynamic_extrinsics_are_interpolated_at_the_image_stamp(tmp_path):
    cam = tiny_rig().cameras[0]
    before = Transform(cam.cam_to_base.rotation, [1.0, 0.0, 1.5])
    after = Transform(cam.cam_to_base.rotation, [2.0, 0.0, 1.5])
    with SensorBagWriter(tmp_path / "bag") as bag:
        bag.write_tf(T0 - 10 * MS, "base_link", "CAM_FRONT", before)
        bag.write_image("CAM_FRONT", T0 - 5 * MS, np.zeros((8, 12, 3), np.uint8))
        bag.write_camera_info(cam, T0 - 5 * MS)
        bag.write_tf(T0 + 10 * MS, "base_link", "CAM_FRONT", after)
    (frame,) = list(FrameReader(tmp_path / "bag"))
    np.testing.assert_allclose(frame.rig.cameras[0].cam_to_base.translation, [1.25, 0.0, 1.5])
