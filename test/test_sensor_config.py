"""The sensor configuration (frames/sensors.py) and the layout recognition (frames/layouts.py), on topic
lists alone: no bag, no ROS."""

from __future__ import annotations

import argparse

import pytest

from simdistill_ros.frames.layouts import LayoutError, camera_name_of, resolve_sensors
from simdistill_ros.frames.sensors import (
    NUSCENES_CAMERAS,
    SensorConfig,
    SensorConfigError,
    load_parameters_file,
    sensor_config_from_args,
)

JPEG, RAW, INFO, CLOUD, TF = (
    "sensor_msgs/msg/CompressedImage",
    "sensor_msgs/msg/Image",
    "sensor_msgs/msg/CameraInfo",
    "sensor_msgs/msg/PointCloud2",
    "tf2_msgs/msg/TFMessage",
)


def nuscenes2bag(cameras=NUSCENES_CAMERAS) -> dict[str, str]:
    topics = {"/LIDAR_TOP": CLOUD, "/tf": TF, "/tf_static": TF}
    for c in sorted(cameras):  # a recorder may list them alphabetically
        topics |= {f"/{c}/image_rect_compressed": JPEG, f"/{c}/camera_info": INFO}
    return topics


@pytest.mark.parametrize(
    ("segment", "name"),
    [
        ("CAM_FRONT", "CAM_FRONT"),
        ("cam_front_left", "CAM_FRONT_LEFT"),
        ("front", "CAM_FRONT"),
        ("front-right", "CAM_FRONT_RIGHT"),
        ("left_front", "CAM_FRONT_LEFT"),
        ("rear", "CAM_BACK"),
        ("rear_right", "CAM_BACK_RIGHT"),
        ("camera_back_left", "CAM_BACK_LEFT"),
        ("image_raw", None),
        ("left", None),
        ("frontal", None),
    ],
)
def test_camera_names_are_read_from_topic_segments(segment, name):
    assert camera_name_of(segment) == name


def test_camera_order_is_the_model_s_or_nuscenes_never_the_bag_s():
    found = resolve_sensors(nuscenes2bag())
    assert [c.name for c in found.cameras] == NUSCENES_CAMERAS
    assert found.layout == "nuscenes2bag" and found.lidar_topic == "/LIDAR_TOP"
    model = ["CAM_BACK", "CAM_FRONT"]
    found = resolve_sensors(nuscenes2bag(), model_cameras=model)
    assert [c.name for c in found.cameras] == model
    assert any("extra: CAM_BACK_LEFT" in w for w in found.warnings)
    mine = SensorConfig(cameras=("CAM_FRONT_LEFT", "CAM_FRONT"))
    assert [c.name for c in resolve_sensors(nuscenes2bag(), mine, model).cameras] == list(mine.cameras)


def test_fewer_cameras_warn_and_no_common_camera_is_an_error_naming_both_sides():
    found = resolve_sensors(nuscenes2bag(["CAM_FRONT", "CAM_BACK"]), model_cameras=NUSCENES_CAMERAS)
    assert [c.name for c in found.cameras] == ["CAM_FRONT", "CAM_BACK"]
    assert "missing: CAM_FRONT_RIGHT, CAM_BACK_RIGHT, CAM_BACK_LEFT, CAM_FRONT_LEFT" in found.warnings[0]
    with pytest.raises(LayoutError, match=r"none of the cameras \['CAM_X'\].*\['CAM_BACK', 'CAM_FRONT'\]"):
        resolve_sensors(nuscenes2bag(["CAM_FRONT", "CAM_BACK"]), SensorConfig(cameras=("CAM_X",)))


def test_bridge_driver_and_foxglove_layouts():
    bridge = {
        "/nuscenes/CAM_FRONT/image": RAW,
        "/nuscenes/CAM_FRONT/camera_info": INFO,
        "/nuscenes/LIDAR_TOP": CLOUD,
    }
    found = resolve_sensors(bridge)
    assert found.layout == "ros2_dataset_bridge" and found.lidar_topic == "/nuscenes/LIDAR_TOP"
    assert not found.cameras[0].compressed
    driver = {
        "/camera/front/image_raw": RAW,
        "/camera/front/image_raw/compressed": JPEG,
        "/camera/front/camera_info": INFO,
        "/camera/rear/image_raw/compressed": JPEG,
        "/camera/rear/camera_info": INFO,
        "/velodyne/points": CLOUD,
    }
    found = resolve_sensors(driver)
    assert found.layout == "driver-style topics"
    assert [(c.name, c.image_topic) for c in found.cameras] == [
        ("CAM_FRONT", "/camera/front/image_raw/compressed"),
        ("CAM_BACK", "/camera/rear/image_raw/compressed"),
    ]
    assert (
        found.cameras[1].info_topic == "/camera/rear/camera_info" and found.lidar_topic == "/velodyne/points"
    )
    raw = resolve_sensors(driver, SensorConfig(compressed=False))
    assert raw.cameras[0].image_topic == "/camera/front/image_raw"
    foxglove = {
        "/cam_front/image_rect_compressed": "foxglove.CompressedImage",
        "/cam_front/camera_info": "foxglove.CameraCalibration",
        "/cam_front/lidar": "foxglove.ImageAnnotations",
        "/lidar_top": "foxglove.PointCloud",
        "/tf": "foxglove.FrameTransform",
    }
    found = resolve_sensors(foxglove)
    assert found.layout == "nuscenes2mcap (Foxglove)" and found.cameras[0].name == "CAM_FRONT"
    assert (found.lidar_topic, found.tf_topic, found.tf_static_topic) == ("/lidar_top", "/tf", None)


def test_unknown_topics_are_refused_with_a_pointer_to_the_configuration():
    odd = {"/rig/cam0/jpeg": JPEG, "/rig/cam0/calib": INFO}
    with pytest.raises(LayoutError, match=r"no camera topics recognised.*/rig/cam0/jpeg.*--params"):
        resolve_sensors(odd)
    config = SensorConfig(cameras=("CAM_FRONT",), image_topics=("/rig/cam0/jpeg",))
    found = resolve_sensors(odd, config)
    assert found.cameras[0].info_topic == "/rig/cam0/calib" and found.layout == "configured (explicit topics)"


def test_the_node_yaml_and_flags_build_the_configuration(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text(
        "simdistill_detector:\n  ros__parameters:\n    camera_names: [CAM_FRONT, CAM_BACK]\n"
        "    image_topic: /{camera}/jpeg\n    base_frame: ego\n    model: student_tiny\n"
    )
    config = SensorConfig.from_parameters(load_parameters_file(params))
    assert config.cameras == ("CAM_FRONT", "CAM_BACK") and config.image_topic == "/{camera}/jpeg"
    assert config.base_frame == "ego" and config.camera_info_topic is None
    args = argparse.Namespace(params=str(params), cameras=None, image_topic="/a/img,/b/img",
                              camera_info_topic=None, lidar_topic="/points", base_frame=None)  # fmt: skip
    flagged = sensor_config_from_args(args)
    assert flagged.image_topics == ("/a/img", "/b/img") and flagged.image_topic is None
    assert flagged.lidar_topic == "/points" and flagged.base_frame == "ego"
    with pytest.raises(SensorConfigError, match="image_topics has 2 topics for 1 cameras"):
        flagged.with_flags(cameras="CAM_FRONT")
    with pytest.raises(SensorConfigError, match="no ros__parameters"):
        (tmp_path / "bad.yaml").write_text("camera_names: [A]\n")
        load_parameters_file(tmp_path / "bad.yaml")
    with pytest.raises(SensorConfigError, match="no such file"):
        load_parameters_file(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("topic", "rectified"),
    [
        ("/CAM_FRONT/image_rect_compressed", True),
        ("/sensing/camera/camera0/image_rect_color", True),
        ("/camera/image_rect/compressed", True),
        ("/camera/rectified", True),
        ("/camera/image_raw", False),
        ("/camera/image_color", False),
        ("/camera/image", False),
        ("/cam_front/raw", False),
        ("/camera/direct_view", False),  # "rect" inside a word is not a rectified image's name
    ],
)
def test_auto_reads_rectification_from_ros_image_topic_names(topic, rectified):
    assert SensorConfig().rectified(topic) is rectified
    assert SensorConfig(image_rectification="raw").rectified(topic) is False
    assert SensorConfig(image_rectification="rectified").rectified(topic) is True


def test_image_rectification_comes_from_the_yaml_and_the_flag_and_is_checked(tmp_path):
    assert SensorConfig.from_parameters({"image_rectification": "raw"}).image_rectification == "raw"
    assert SensorConfig.from_parameters({}).image_rectification == "auto"
    args = argparse.Namespace(image_rectification="rectified")
    assert sensor_config_from_args(args).image_rectification == "rectified"
    with pytest.raises(SensorConfigError, match="image_rectification must be one of auto, rectified, raw"):
        SensorConfig(image_rectification="yes")


def _info(k: list[float], p: list[float] | None = None, d: list[float] | None = None):
    from types import SimpleNamespace

    return SimpleNamespace(k=k, p=p if p is not None else [0.0] * 12, d=d or [], distortion_model="plumb_bob")


K = [100.0, 0.0, 50.0, 0.0, 100.0, 40.0, 0.0, 0.0, 1.0]
P = [108.0, 0.0, 52.0, 0.0, 0.0, 108.0, 41.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # rectification cropped: longer focal


def test_rectified_images_take_p_raw_ones_k_and_an_unset_p_falls_back_to_k():
    import numpy as np

    from simdistill_ros.frames.messages import image_intrinsics

    np.testing.assert_array_equal(image_intrinsics(_info(K, P), True), np.reshape(P, (3, 4))[:, :3])
    np.testing.assert_array_equal(image_intrinsics(_info(K, P), False), np.reshape(K, (3, 3)))
    np.testing.assert_array_equal(image_intrinsics(_info(K), True), np.reshape(K, (3, 3)))  # P all zero
    with pytest.raises(ValueError, match="K has 2 values, expected 9"):
        image_intrinsics(_info([1.0, 2.0], P), True)


def test_distortion_is_noted_for_raw_images_and_for_rectified_ones_without_p_only():
    from simdistill_ros.frames.messages import distortion_assumed

    d = [-0.3, 0.1, 0.0, 0.0, 0.0]
    assert distortion_assumed(_info(K, P, d), rectified=True) is None  # image_proc's image_rect
    raw = distortion_assumed(_info(K, P, d), rectified=False)
    assert raw is not None and "used as if rectified" in raw and "image_rectification" in raw
    no_p = distortion_assumed(_info(K, None, d), rectified=True)
    assert no_p is not None and "no P" in no_p
    assert distortion_assumed(_info(K, P, [0.0] * 5), rectified=False) is None  # no distortion
