"""TransformTree: static and dynamic transforms, interpolation, clear lookup errors."""

from __future__ import annotations

import numpy as np
import pytest

from simdistill_ros.frames.tf_tree import ExtrapolationError, TransformTree, slerp
from simdistill_ros.geometry import Transform, camera_mount, yaw_to_quat


def close(a: Transform, b: Transform, atol=1e-9) -> None:
    np.testing.assert_allclose(a.matrix(), b.matrix(), atol=atol)


def make_tree() -> TransformTree:
    tree = TransformTree()
    tree.add_static("base_link", "CAM_FRONT", camera_mount(1.5, 0.0, 1.5, 0.0))
    tree.add_static("base_link", "LIDAR_TOP", Transform.from_xyz_yaw(0.9, 0.0, 1.8, 0.1))
    tree.add("map", "base_link", Transform.from_xyz_yaw(0, 0, 0, 0.0), 1000)
    tree.add("map", "base_link", Transform.from_xyz_yaw(10, 0, 0, np.pi / 2), 2000)
    return tree


def test_static_chain_and_inverse():
    tree = make_tree()
    cam = tree.lookup("base_link", "CAM_FRONT")
    close(cam, camera_mount(1.5, 0.0, 1.5, 0.0))
    close(tree.lookup("CAM_FRONT", "base_link"), cam.inverse())
    lidar_in_cam = tree.lookup("CAM_FRONT", "LIDAR_TOP", 1500)
    close(lidar_in_cam, cam.inverse() @ Transform.from_xyz_yaw(0.9, 0.0, 1.8, 0.1))
    close(tree.lookup("map", "map"), Transform())


def test_dynamic_interpolation_with_slerp():
    tree = make_tree()
    mid = tree.lookup("map", "base_link", 1500)
    np.testing.assert_allclose(mid.translation, [5, 0, 0])
    assert mid.yaw == pytest.approx(np.pi / 4)
    quarter = tree.lookup("map", "base_link", 1250)
    assert quarter.yaw == pytest.approx(np.pi / 8)
    close(tree.lookup("map", "base_link", 2000), Transform.from_xyz_yaw(10, 0, 0, np.pi / 2))
    close(tree.lookup("map", "base_link"), Transform.from_xyz_yaw(10, 0, 0, np.pi / 2))  # latest
    # Chain through a dynamic edge: the camera in map at 1500.
    close(tree.lookup("map", "CAM_FRONT", 1500), mid @ camera_mount(1.5, 0.0, 1.5, 0.0))


def test_slerp_takes_the_short_way():
    q0 = yaw_to_quat(np.deg2rad(170))
    q1 = -yaw_to_quat(np.deg2rad(-170))  # same rotation as yaw -170, opposite sign
    q = slerp(q0, q1, 0.5)
    t = Transform.from_quat(np.zeros(3), q)
    assert abs(abs(t.yaw) - np.pi) < 1e-9


def test_extrapolation_error_and_tolerance():
    tree = make_tree()
    with pytest.raises(ExtrapolationError, match=r"\[1000, 2000\]"):
        tree.lookup("map", "base_link", 2500)
    close(tree.lookup("map", "base_link", 2010, tolerance_ns=50), Transform.from_xyz_yaw(10, 0, 0, np.pi / 2))
    assert issubclass(ExtrapolationError, LookupError)


def test_unknown_frame_names_it_and_the_known_frames():
    tree = make_tree()
    with pytest.raises(LookupError, match=r"unknown frame 'CAM_BACK'.*CAM_FRONT, LIDAR_TOP, base_link, map"):
        tree.lookup("base_link", "CAM_BACK")


def test_unconnected_frames():
    tree = make_tree()
    tree.add_static("odom", "imu", Transform())
    with pytest.raises(LookupError, match="not connected"):
        tree.lookup("base_link", "imu")


def test_case_insensitive_fallback():
    tree = TransformTree()
    tree.add_static("base_link", "cam_front", Transform.from_xyz_yaw(1, 2, 3, 0))
    np.testing.assert_allclose(tree.lookup("base_link", "CAM_FRONT").translation, [1, 2, 3])
    assert tree.has_frame("Cam_Front") and not tree.has_frame("cam_back")


def test_history_is_bounded_and_repeated_stamps_replace():
    tree = TransformTree(cache_ns=100)
    for t in range(0, 1000, 10):
        tree.add("map", "base_link", Transform.from_xyz_yaw(t, 0, 0, 0), t)
    tree.add("map", "base_link", Transform.from_xyz_yaw(-1, 0, 0, 0), 990)
    edge = tree._edges["base_link"]
    assert len(edge.stamps) == 11 and edge.stamps[0] == 890
    assert tree.lookup("map", "base_link", 990).translation[0] == -1
    with pytest.raises(ExtrapolationError):
        tree.lookup("map", "base_link", 500)


def test_reparenting_replaces_the_edge():
    tree = TransformTree()
    tree.add_static("a", "c", Transform.from_xyz_yaw(1, 0, 0, 0))
    tree.add_static("b", "c", Transform.from_xyz_yaw(2, 0, 0, 0))
    assert tree.lookup("b", "c").translation[0] == 2
    with pytest.raises(LookupError, match="not connected"):
        tree.lookup("a", "c")


def test_static_lookups_are_composed_once_and_forgotten_when_an_edge_changes():
    tree = make_tree()
    tree.add_static("CAM_FRONT", "CAM_FRONT_optical", Transform.from_xyz_yaw(0.0, 0.1, 0.0, 0.0))
    first = tree.lookup("base_link", "CAM_FRONT_optical", 1500)
    assert tree.lookup("base_link", "CAM_FRONT_optical", 99) is first  # static: the same at every time
    map_cam = tree.lookup("map", "CAM_FRONT", 1500)
    assert tree.lookup("map", "CAM_FRONT", 1500) is not map_cam  # through a dynamic edge: composed again
    # a static edge replaced
    tree.add_static("CAM_FRONT", "CAM_FRONT_optical", Transform.from_xyz_yaw(0.0, 0.3, 0.0, 0.0))
    close(
        tree.lookup("base_link", "CAM_FRONT_optical"),
        camera_mount(1.5, 0.0, 1.5, 0.0) @ Transform.from_xyz_yaw(0.0, 0.3, 0.0, 0.0),
    )
    # the same edge now dynamic: its samples count, and nothing static is remembered for it
    tree.add("CAM_FRONT", "CAM_FRONT_optical", Transform.from_xyz_yaw(0.0, 0.5, 0.0, 0.0), 1000)
    tree.add("CAM_FRONT", "CAM_FRONT_optical", Transform.from_xyz_yaw(0.0, 0.7, 0.0, 0.0), 2000)
    close(
        tree.lookup("base_link", "CAM_FRONT_optical", 1500),
        camera_mount(1.5, 0.0, 1.5, 0.0) @ Transform.from_xyz_yaw(0.0, 0.6, 0.0, 0.0),
    )
    # re-parented under another static frame
    tree.add_static("LIDAR_TOP", "CAM_FRONT_optical", Transform())
    close(tree.lookup("base_link", "CAM_FRONT_optical", 1500), Transform.from_xyz_yaw(0.9, 0.0, 1.8, 0.1))
