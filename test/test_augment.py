"""Augmentation keeps images, intrinsics, extrinsics, points and boxes consistent."""

import argparse

import numpy as np
import pytest

from simdistill_ros.errors import UserError
from simdistill_ros.geometry import Box3D, nuscenes_like_rig
from simdistill_ros.models.preprocess import camera_input, resize_affine
from simdistill_ros.training.augment import (
    ImageAugConfig,
    bev_matrix,
    image_affine,
    photometric,
    transform_boxes,
    transform_points,
)
from simdistill_ros.training.command import image_aug_config


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


def test_a_projected_3d_point_stays_on_its_pixel_content_through_augmentation():
    # A bright square drawn where a 3D point projects in the source image must appear, after any drawn
    # augmentation, where the point projects with the augmented K' (K' = A K: exact, not approximate).
    rng = np.random.default_rng(0)
    for hw in [(160, 400), (224, 400)]:
        cam = nuscenes_like_rig(*hw).camera("CAM_FRONT")
        k, t = cam.intrinsics, cam.cam_to_base.matrix()
        point = np.array([[15.0, 2.0, 0.4]])  # base frame, ahead and a little left
        u, v = project(k, t, point)[0]
        img = np.zeros((*hw, 3), np.uint8)
        img[int(v) - 5 : int(v) + 5, int(u) - 5 : int(u) + 5] = 255  # centred at (int(u), int(v))
        centre_src = np.array([int(u), int(v)], float)
        for _ in range(10):
            a = image_affine(hw, (112, 200), rng, intrinsics=k)
            out, k_aug = camera_input(img, k, (112, 200), a)
            expected = project(k_aug, t, point)[0] + (a[:2, :2] @ (centre_src - [u, v]))
            w = out[..., 0].astype(float)
            v_in, u_in = np.mgrid[0 : w.shape[0], 0 : w.shape[1]] + 0.5  # pixel centres, as in K
            centroid = np.array([(w * u_in).sum(), (w * v_in).sum()]) / w.sum()
            np.testing.assert_allclose(centroid, expected, atol=0.1)


def test_augmented_inputs_stay_covered_and_centred_on_the_plain_rule():
    rng = np.random.default_rng(2)
    for hw in [(160, 400), (224, 400), (320, 800)]:
        k = nuscenes_like_rig(*hw).camera("CAM_FRONT").intrinsics
        plain = resize_affine(hw, (128, 352), k)
        np.testing.assert_array_equal(image_affine(hw, (128, 352), None, intrinsics=k), plain)
        rows = []
        for _ in range(50):
            a = image_affine(hw, (128, 352), rng, intrinsics=k)
            corners = a @ np.array([[0.0, 0, 1], [hw[1], hw[0], 1]]).T
            lo, hi = np.sort(corners[0]), np.sort(corners[1])
            assert lo[0] <= 1e-9 and lo[1] >= 352 - 1e-9 and hi[0] <= 1e-9 and hi[1] >= 128 - 1e-9
            rows.append((a @ k)[1, 2])
        # The principal point's row varies around the plain rule's, the variation the model learns.
        assert min(rows) < (plain @ k)[1, 2] + 1 and max(rows) > (plain @ k)[1, 2] + 3


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


def test_plain_map_scales_to_the_width_and_puts_the_principal_point_on_its_row():
    # 224x400 -> 96x176: scale 176 / 400 = 0.44 (the width fits exactly, no horizontal crop); the image
    # centre (the principal point without K) row 112 * 0.44 = 49.28 goes to row 0.45 * 96 = 43.2, so
    # 6.08 rows come off the top and 224 * 0.44 - 96 - 6.08 = 6.48 off the bottom.
    expected = np.array([[0.44, 0.0, 0.0], [0.0, 0.44, -6.08], [0.0, 0.0, 1.0]])
    assert np.allclose(image_affine((224, 400), (96, 176), None), expected)
    assert np.array_equal(bev_matrix(None), np.eye(4))


def test_photometric_augmentation_off_returns_the_image_and_draws_nothing():
    image = np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    rng = np.random.default_rng(5)
    assert photometric(image, rng, ImageAugConfig()) is image
    assert photometric(image, None, ImageAugConfig(noise_sigma=8.0)) is image
    # no draw was made: a recipe without it keeps every later augmentation draw of its seed
    assert rng.random() == np.random.default_rng(5).random()


def test_photometric_augmentation_changes_pixels_by_its_bounds_only():
    image = np.full((64, 96, 3), 120, dtype=np.uint8)
    noisy = [photometric(image, np.random.default_rng(s), ImageAugConfig(noise_sigma=6.0)) for s in range(20)]
    assert all(n.dtype == np.uint8 and n.shape == image.shape for n in noisy)
    spreads = [float(np.std(n.astype(np.float32) - 120)) for n in noisy]
    assert max(spreads) <= 6.0 * 1.1 and max(spreads) > 1.0  # sigma drawn from [0, 6]
    assert all(abs(float(n.mean()) - 120) < 0.5 for n in noisy)  # zero-mean noise, no gain
    again = photometric(image, np.random.default_rng(3), ImageAugConfig(noise_sigma=6.0))
    assert np.array_equal(again, noisy[3])  # the seed decides, as for the geometric draws
    bright = [photometric(image, np.random.default_rng(s), ImageAugConfig(brightness=0.2)) for s in range(20)]
    means = [float(b.mean()) for b in bright]
    assert min(means) >= 120 * 0.8 - 1 and max(means) <= 120 * 1.2 + 1 and np.ptp(means) > 5


def test_photometric_options_are_checked():
    def args(noise: float, jitter: float) -> argparse.Namespace:
        return argparse.Namespace(image_noise=noise, color_jitter=jitter)

    assert image_aug_config(args(0.0, 0.0)) == ImageAugConfig()
    cfg = image_aug_config(args(8.0, 0.2))
    assert (cfg.noise_sigma, cfg.brightness, cfg.contrast) == (8.0, 0.2, 0.2) and cfg.photometric
    for noise, jitter in ((-1.0, 0.0), (float("nan"), 0.0), (float("inf"), 0.0), (0.0, 1.0), (0.0, -0.1)):
        with pytest.raises(UserError):
            image_aug_config(args(noise, jitter))
