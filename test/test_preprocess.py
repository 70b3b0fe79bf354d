"""The one image -> model input rule: a plain resize that covers the input, cropped left/right evenly and
from the top, folded into K, and ImageNet normalisation."""

from __future__ import annotations

import numpy as np
import torch

from simdistill_ros.models.preprocess import camera_input, normalize_images, resize_affine, warp_image


def test_resize_covers_the_input_and_keeps_the_bottom_of_the_image():
    a = resize_affine((224, 400), (128, 352))
    s = 352 / 400  # the width binds: 224 * 0.88 = 197.1 rows, 69.1 cropped from the top
    np.testing.assert_allclose(a, [[s, 0, 0], [0, s, -(224 * s - 128)], [0, 0, 1]])
    bottom_right = a @ np.array([400.0, 224.0, 1.0])
    np.testing.assert_allclose(bottom_right[:2], [352.0, 128.0])
    np.testing.assert_allclose(resize_affine((128, 352), (128, 352)), np.eye(3))


def test_the_resize_is_folded_into_the_intrinsics():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (224, 400, 3), np.uint8)
    k = np.array([[300.0, 0, 200], [0, 300.0, 112], [0, 0, 1]], np.float32)
    out, k_in = camera_input(image, k, (128, 352))
    assert out.shape == (128, 352, 3) and out.dtype == np.uint8 and k_in.dtype == np.float64
    p = np.array([1.5, -0.4, 12.0])  # a point in the optical frame lands on the same content
    uv0 = (k.astype(np.float64) @ p)[:2] / p[2]
    uv1 = (k_in @ p)[:2] / p[2]
    np.testing.assert_allclose(
        uv1, resize_affine((224, 400), (128, 352))[:2, :2] @ uv0 + [0, -69.12], atol=1e-6
    )
    same, k_same = camera_input(out, k_in, (128, 352))
    assert same is out and np.array_equal(k_same, k_in)  # already model input: untouched
    flipped = np.array([[-1.0, 0, 352], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(warp_image(out, flipped, (128, 352)), out[:, ::-1])


def test_normalisation_is_imagenet_mean_and_std_channels_first():
    images = torch.full((1, 2, 4, 5, 3), 255, dtype=torch.uint8)
    x = normalize_images(images)
    assert x.shape == (1, 2, 3, 4, 5)
    expected = (1.0 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(x[0, 1, :, 2, 3], expected)
