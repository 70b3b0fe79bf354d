"""The one image -> model input rule: scale to the input width, the principal point on a fixed row,
downscales area-averaged, folded into K; and ImageNet normalisation."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from simdistill_ros.geometry import nuscenes_like_rig
from simdistill_ros.models.preprocess import (
    PRINCIPAL_ROW,
    camera_input,
    normalize_image,
    normalize_images,
    resize_affine,
    warp_image,
)

INPUT = (128, 352)  # the tiny config's input, the shipped models'


def test_the_map_scales_to_the_width_and_puts_the_principal_point_on_its_row():
    k = np.array([[300.0, 0, 200], [0, 300.0, 112], [0, 0, 1]])
    a = resize_affine((224, 400), INPUT, k)
    s = 352 / 400
    np.testing.assert_allclose(a, [[s, 0, 0], [0, s, PRINCIPAL_ROW * 128 - s * 112], [0, 0, 1]])
    np.testing.assert_allclose((a @ k)[:2, 2], [176.0, PRINCIPAL_ROW * 128])
    np.testing.assert_allclose(resize_affine(INPUT, INPUT, [[1, 0, 176], [0, 1, 57.6], [0, 0, 1]]), np.eye(3))


def _legacy_affine(src_hw, dst_hw):
    """The rule before the principal-point anchor: cover the input, crop evenly left/right and the top."""
    (h0, w0), (h, w) = src_hw, dst_hw
    s = max(h / h0, w / w0)
    return np.array([[s, 0.0, -(w0 * s - w) / 2], [0.0, s, -(h0 * s - h)], [0.0, 0.0, 1.0]])


def test_at_the_shipped_training_size_the_input_is_bit_identical_to_the_covering_crop():
    # The shipped models were trained on 160x400 images through the covering crop: the same pixels and
    # the same float32 K must reach them now.
    rng = np.random.default_rng(0)
    for cam in nuscenes_like_rig(160, 400).cameras:
        image = rng.integers(0, 256, (160, 400, 3), np.uint8)
        out, k_in = camera_input(image, cam.intrinsics, INPUT)
        legacy = _legacy_affine((160, 400), INPUT)
        np.testing.assert_array_equal(out, warp_image(image, legacy, INPUT))
        np.testing.assert_array_equal(k_in.astype(np.float32), (legacy @ cam.intrinsics).astype(np.float32))


def test_a_3d_point_lands_on_the_same_input_pixel_at_every_image_size_of_one_camera():
    # 160x400 (training), 224x400 (taller: same focal length, more rows above and below), 320x800 (2x).
    p = np.array([[1.5, 0.4, 12.0], [-4.0, 1.2, 30.0], [2.0, 1.3, 6.0]])  # optical frame, below the horizon
    uv_in = []
    for hw in [(160, 400), (224, 400), (320, 800)]:
        k = nuscenes_like_rig(*hw).camera("CAM_FRONT").intrinsics
        _, k_in = camera_input(np.zeros((*hw, 3), np.uint8), k, INPUT)
        uvw = p @ k_in.T
        uv_in.append(uvw[:, :2] / uvw[:, 2:])
    np.testing.assert_allclose(uv_in[1], uv_in[0], atol=1e-9)
    np.testing.assert_allclose(uv_in[2], uv_in[0], atol=1e-9)
    assert ((uv_in[0] >= 0) & (uv_in[0] < [352, 128])).all()  # the points are inside the input


def test_the_same_scene_at_2x_gives_the_same_input():
    # A scene drawn at 1x and 2x through one camera (each pixel shows its ray's content): every input
    # pixel must show the same content, up to interpolation (a few grey levels on a 0-255 pattern).
    def scene(hw):
        k = nuscenes_like_rig(*hw).camera("CAM_FRONT").intrinsics
        v, u = np.mgrid[0 : hw[0], 0 : hw[1]] + 0.5
        x, y = (u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1]  # the ray through each pixel centre
        img = 127 + 60 * np.sin(40 * x) * np.cos(30 * y) + 60 * np.sin(9 * x + 5 * y)  # >= 10 px periods
        return np.repeat(img.astype(np.uint8)[..., None], 3, 2), k

    (one, k1), (two, k2) = scene((160, 400)), scene((320, 800))
    in1, kin1 = camera_input(one, k1, INPUT)
    in2, kin2 = camera_input(two, k2, INPUT)
    np.testing.assert_allclose(kin2, kin1, atol=1e-9)
    diff = np.abs(in1.astype(float) - in2.astype(float))
    assert diff.mean() < 2.0 and diff.max() < 12, (diff.mean(), diff.max())


def test_a_downscale_averages_pixels_instead_of_skipping_them():
    # White noise at 2x: the area prefilter averages 2x2 blocks (std / 2); bilinear 0.44x alone samples
    # single pixels between neighbours and keeps most of the noise, which aliases real fine texture.
    rng = np.random.default_rng(0)
    two = rng.integers(0, 256, (320, 800, 3)).astype(np.uint8)
    a = resize_affine((320, 800), INPUT)
    shift = np.array([[1.0, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    m = np.linalg.inv(shift) @ a @ shift
    bilinear = cv2.warpAffine(two, m[:2], (352, 128), flags=cv2.INTER_LINEAR)
    assert warp_image(two, a, INPUT).std() < 0.6 * bilinear.std()


def test_an_image_shorter_than_the_input_is_padded_black_not_stretched():
    k = np.array([[300.0, 0, 200], [0, 300.0, 40], [0, 0, 1]])
    image = np.full((80, 400, 3), 200, np.uint8)
    out, k_in = camera_input(image, k, INPUT)
    s = 352 / 400
    assert k_in[0, 0] == s * 300 and k_in[1, 1] == s * 300  # aspect kept
    top, bottom = PRINCIPAL_ROW * 128 - s * 40, PRINCIPAL_ROW * 128 + s * 40  # the image's rows
    assert (out[: int(np.floor(top)) - 1] == 0).all() and (out[int(np.ceil(bottom)) + 1 :] == 0).all()
    assert (out[int(np.ceil(top)) + 1 : int(np.floor(bottom)) - 1] == 200).all()


def test_the_map_is_folded_into_the_intrinsics_and_model_input_is_untouched():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (224, 400, 3), np.uint8)
    k = np.array([[300.0, 0, 200], [0, 300.0, 112], [0, 0, 1]], np.float32)
    out, k_in = camera_input(image, k, INPUT)
    assert out.shape == (128, 352, 3) and out.dtype == np.uint8 and k_in.dtype == np.float64
    p = np.array([1.5, -0.4, 12.0])  # a point in the optical frame lands on the mapped pixel
    uv0 = (k.astype(np.float64) @ p)[:2] / p[2]
    uv1 = (k_in @ p)[:2] / p[2]
    np.testing.assert_allclose(uv1, (resize_affine((224, 400), INPUT, k) @ [*uv0, 1.0])[:2], atol=1e-9)
    same, k_same = camera_input(out, k_in, INPUT)
    assert same is out and np.allclose(k_same, k_in)  # already model input: untouched
    flipped = np.array([[-1.0, 0, 352], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(warp_image(out, flipped, INPUT), out[:, ::-1])


def test_normalisation_is_imagenet_mean_and_std_channels_first():
    images = torch.full((1, 2, 4, 5, 3), 255, dtype=torch.uint8)
    x = normalize_images(images)
    assert x.shape == (1, 2, 3, 4, 5)
    expected = (1.0 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(x[0, 1, :, 2, 3], expected)


def test_normalisation_equals_the_textbook_formula_per_pixel_and_channel():
    images = torch.randint(
        0, 256, (2, 3, 5, 7, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    x = normalize_images(images)
    mean = torch.tensor([0.485, 0.456, 0.406])
    std = torch.tensor([0.229, 0.224, 0.225])
    want = ((images.float() / 255.0 - mean) / std).permute(0, 1, 4, 2, 3)
    torch.testing.assert_close(x, want, atol=1e-6, rtol=1e-6)
    assert x.dtype == torch.float32 and x.is_contiguous()


def test_one_camera_normalisation_equals_the_batched_one_bit_for_bit():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (2, 24, 40, 3), dtype=np.uint8)
    batched = normalize_images(torch.from_numpy(images)[None])[0].numpy()
    for i in range(2):
        one = normalize_image(images[i])
        assert one.dtype == np.float32 and one.shape == (3, 24, 40)
        np.testing.assert_array_equal(one, batched[i])
