"""Augmentation keeps images, intrinsics, extrinsics, points and boxes consistent."""

import numpy as np

from simdistill_ros.geometry import Box3D, nuscenes_like_rig
from simdistill_ros.models.preprocess import warp_image
from simdistill_ros.training.augment import (
    bev_matrix,
    image_affine,
    transform_boxes,
    transform_points,
)


def project(k: np.ndarray, cam_to_base: np.ndarray, p: np.ndarray) -> np.ndarray:
    pc = (np.linalg.inv(cam_to_base) @ np.c_[p, np.ones(len(p))].T)[:3]
    uvw = k @ pc
    return (uvw[:2] / uvw[2]).T


def test_image_affine_moves_pixels_with_the_intrinsics():
    rng = np.random.default_rng(3)
    cam = nuscenes_like_rig(224, 400).camera("CAM_FRONT")
    pts = np.array([[12.0, 1.0, 0.5], [20.0, -3.0, 1.0], [8.0, 0.5, 1.2]])
    uv = project(cam.intrinsics, cam.cam_to_base.matrix(), pts)
    for _ in range(20):
        a = image_affine((224, 400), (96, 176), rng)
        uv_new = project(a @ cam.intrinsics, cam.cam_to_base.matrix(), pts)
        expected = (a @ np.c_[uv, np.ones(len(uv))].T)[:2].T
        assert np.allclose(uv_new, expected, atol=1e-6)


def test_warp_image_moves_content_like_the_affine():
    rng = np.random.default_rng(0)
    img = np.zeros((224, 400, 3), np.uint8)
    img[100:110, 300:310] = 255  # a bright square centred at (305, 105)
    for _ in range(10):
        a = image_affine((224, 400), (112, 200), rng)
        out = warp_image(img, a, (112, 200))
        centre = (a @ np.array([305.0, 105.0, 1.0]))[:2]
        if 3 <= centre[0] < 197 and 3 <= centre[1] < 109:
            ys, xs = np.nonzero(out[..., 0] > 128)
            assert abs(xs.mean() + 0.5 - centre[0]) < 1.0 and abs(ys.mean() + 0.5 - centre[1]) < 1.0


def test_bev_augmentation_keeps_points_inside_their_boxes():
    rng = np.random.default_rng(1)
    box = Box3D([10.0, -4.0, 0.9], [4.4, 1.9, 1.6], 0.7, "car", [3.0, 1.0])
    inside = box.corners() * 0.9 + box.center * 0.1  # points pulled towards the centre
    for _ in range(20):
        m = bev_matrix(rng)
        moved = transform_boxes(box.to_array()[None], m)[0]
        pts = transform_points(inside, m)
        assert Box3D.from_array(moved, "car").contains(pts).all()
        # Velocity follows the same linear map as positions.
        assert np.allclose(moved[7:9], m[:2, :2] @ box.velocity)


def test_plain_resize_scales_to_cover_and_keeps_the_bottom():
    # 224x400 -> 96x176: scale max(96/224, 176/400) = 0.44 covers both sides; the width fits exactly
    # (400 * 0.44 = 176, no horizontal crop) and the 224 * 0.44 - 96 = 2.56 rows too many come off the top
    expected = np.array([[0.44, 0.0, 0.0], [0.0, 0.44, -2.56], [0.0, 0.0, 1.0]])
    assert np.allclose(image_affine((224, 400), (96, 176), None), expected)
    assert np.array_equal(bev_matrix(None), np.eye(4))
