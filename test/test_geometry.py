"""Geometry core: transforms, quaternions, cameras, rigs and box conversions."""

import numpy as np
import pytest

from simdistill_ros.classes import NUSCENES_CLASSES, class_index
from simdistill_ros.geometry import (
    Box3D,
    CalibrationError,
    CameraRig,
    PinholeCamera,
    Transform,
    boxes_from_array,
    boxes_to_array,
    camera_mount,
    matrix_to_quat,
    nuscenes_like_rig,
    quat_to_matrix,
    quat_to_yaw,
    quat_wxyz_to_xyzw,
    quat_xyzw_to_wxyz,
    yaw_to_quat,
)


def random_transform(rng: np.random.Generator) -> Transform:
    q = rng.normal(size=4)
    return Transform.from_quat(rng.normal(size=3) * 10, q)


def test_quaternion_matrix_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = q if q[0] >= 0 else -q
        r = quat_to_matrix(q)
        assert np.allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(r), 1.0)
        assert np.allclose(matrix_to_quat(r), q, atol=1e-9)


def test_quaternion_orders_and_yaw():
    q = yaw_to_quat(0.7)
    assert np.isclose(quat_to_yaw(q), 0.7)
    assert np.allclose(quat_xyzw_to_wxyz(quat_wxyz_to_xyzw(q)), q)
    assert np.allclose(quat_wxyz_to_xyzw(q), [0, 0, np.sin(0.35), np.cos(0.35)])


def test_zero_quaternion_is_rejected():
    with pytest.raises(ValueError, match="quaternion"):
        quat_to_matrix([0, 0, 0, 0])


def test_transform_compose_inverse_apply():
    rng = np.random.default_rng(1)
    a, b = random_transform(rng), random_transform(rng)
    p = rng.normal(size=(20, 3))
    assert np.allclose((a @ b).apply(p), a.apply(b.apply(p)))
    assert np.allclose(a.inverse().apply(a.apply(p)), p)
    assert np.allclose((a @ a.inverse()).matrix(), np.eye(4), atol=1e-12)
    assert np.allclose(Transform.from_matrix(a.matrix()).matrix(), a.matrix())


def test_transform_rejects_non_rotation():
    with pytest.raises(ValueError, match="rotation"):
        Transform(np.diag([1.0, 1.0, -1.0]), np.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        Transform(np.eye(3), [np.nan, 0, 0])


def test_camera_mount_looks_along_heading():
    # A point straight ahead of the forward camera lands at the image centre.
    rig = nuscenes_like_rig(224, 400)
    front = rig.camera("CAM_FRONT")
    uv, depth = front.project(np.array([[20.0, 0.0, front.cam_to_base.translation[2]]]))
    assert depth[0] > 0 and np.allclose(uv[0], [200, 112])
    # Points to the left of the heading land left of the centre (x right in the optical frame).
    uv_left, _ = front.project(np.array([[20.0, 2.0, 1.5]]))
    assert uv_left[0, 0] < 200
    # Points above the camera land above the centre (y down).
    uv_up, _ = front.project(np.array([[20.0, 0.0, 5.0]]))
    assert uv_up[0, 1] < 112
    back = rig.camera("CAM_BACK")
    _, depth_back = back.project(np.array([[-20.0, 0.0, 1.5]]))
    assert depth_back[0] > 0


def test_nuscenes_rig_covers_360_degrees():
    rig = nuscenes_like_rig(90, 160)
    assert len(rig) == 6 and rig.lidar_to_base is not None
    seen = np.zeros(360, bool)
    for az in range(360):
        p = np.array([[30 * np.cos(np.deg2rad(az)), 30 * np.sin(np.deg2rad(az)), 1.0]])
        for cam in rig.cameras:
            uv, d = cam.project(p)
            seen[az] |= bool(cam.in_image(uv, d)[0])
    assert seen.all()


def test_camera_scaling_keeps_projections_consistent():
    cam = nuscenes_like_rig(224, 400).camera("CAM_FRONT_LEFT")
    small = cam.scaled(200, 112)
    p = np.array([[8.0, 6.0, 1.0], [15.0, 3.0, 0.2]])
    uv, _ = cam.project(p)
    uv_small, _ = small.project(p)
    assert np.allclose(uv_small, uv / 2)


@pytest.mark.parametrize(
    "k, message",
    [(np.zeros((3, 3)), "focal"), (np.full((3, 3), np.nan), "NaN")],
)
def test_bad_intrinsics_are_named(k, message):
    with pytest.raises(CalibrationError, match=message):
        PinholeCamera("CAM_X", 100, 50, k)


def test_rig_rejects_duplicates_and_empty():
    cam = PinholeCamera.from_fov("A", 10, 10, 60, camera_mount(0, 0, 1, 0))
    with pytest.raises(CalibrationError):
        CameraRig(())
    with pytest.raises(CalibrationError, match="unique"):
        CameraRig((cam, cam))
    with pytest.raises(KeyError, match="has no camera"):
        CameraRig((cam,)).camera("B")


def test_box_nuscenes_round_trip_and_convention():
    ego = Transform.from_xyz_yaw(300.0, -20.0, 0.0, np.pi / 2)
    box = Box3D([10.0, 2.0, 0.9], [4.5, 1.9, 1.6], 0.2, "car", [5.0, 0.5], instance_id="i")
    rec = box.to_nuscenes(ego)
    # Ego faces global +y: a box 10 m ahead of the ego is 10 m along global +y.
    assert np.allclose(rec["translation"], [300 - 2.0, -20 + 10.0, 0.9])
    assert np.allclose(rec["size"], [1.9, 4.5, 1.6])  # nuScenes orders (w, l, h)
    assert np.isclose(quat_to_yaw(rec["rotation"]), 0.2 + np.pi / 2)
    assert np.allclose(rec["velocity"], [-0.5, 5.0])
    back = Box3D.from_nuscenes(rec, ego, "car")
    assert np.allclose(back.to_array(), box.to_array())


def test_box_contains_and_corners():
    box = Box3D([0, 0, 1], [4, 2, 2], np.pi / 2, "truck")
    corners = box.corners()
    assert corners.shape == (8, 3)
    assert np.allclose(np.abs(corners[:, 0]).max(), 1.0)  # rotated 90 deg: length along y
    assert np.allclose(np.abs(corners[:, 1]).max(), 2.0)
    pts = np.array([[0, 1.9, 1.0], [0, 2.1, 1.0], [0.9, 0, 0.1], [0, 0, 2.1]])
    assert box.contains(pts).tolist() == [True, False, True, False]


def test_box_arrays_and_labels():
    boxes = [Box3D([1, 2, 3], [4, 2, 1.5], 0.1, name) for name in NUSCENES_CLASSES]
    arr, labels = boxes_to_array(boxes)
    assert arr.shape == (10, 9) and labels.tolist() == list(range(10))
    again = boxes_from_array(arr, labels)
    assert [b.label for b in again] == list(NUSCENES_CLASSES)
    with pytest.raises(ValueError, match="unknown class"):
        class_index("unicorn")


def test_ros_pose_is_xyzw():
    box = Box3D([1, 2, 3], [4, 2, 1.5], np.pi, "bus")
    pos, q = box.ros_pose()
    assert np.allclose(pos, [1, 2, 3])
    assert np.allclose(np.abs(q), [0, 0, 1, 0], atol=1e-12)
