"""The one rule from a camera image to model input: resize, fold the resize into K, normalise.

Training, the evaluation runner, the teacher replay, ``simdistill detect`` and the live node all call
these functions, so every model sees its input built the same way. A pixel map is an affine ``A`` (3, 3)
from source pixels to model-input pixels, applied to the image with one ``cv2.warpAffine`` and folded into
the intrinsics as ``K' = A @ K``, so the view transform lifts the new pixels to the same 3D rays.
Augmentation (:mod:`simdistill_ros.training.augment`) draws another ``A`` and passes it in.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

IMAGE_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1)
IMAGE_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1)


def resize_affine(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """Pixel map (3, 3) of the plain resize: scale until the image covers ``dst_hw``, then crop the
    overflow evenly left and right and from the top (the bottom holds the road and the objects)."""
    (h0, w0), (h, w) = src_hw, dst_hw
    s = max(h / h0, w / w0)
    dx = (w0 * s - w) / 2
    dy = h0 * s - h
    return np.array([[s, 0.0, -dx], [0.0, s, -dy], [0.0, 0.0, 1.0]])


def warp_image(image: np.ndarray, affine: np.ndarray, dst_hw: tuple[int, int]) -> np.ndarray:
    """Apply a pixel map to an (H, W, 3) image. Pixel centres sit at integer + 0.5, as in K. An identity
    map on an image of ``dst_hw`` returns the image itself (what the warp would give, without the cost)."""
    if tuple(image.shape[:2]) == tuple(dst_hw) and np.allclose(affine, np.eye(3)):
        return image
    # cv2 maps pixel centres at integer coordinates: conjugate by a half-pixel shift.
    shift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    m = np.linalg.inv(shift) @ affine @ shift
    return cv2.warpAffine(
        image, m[:2], (dst_hw[1], dst_hw[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )


def camera_input(
    image: np.ndarray, intrinsics: np.ndarray, dst_hw: tuple[int, int], affine: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(image (H', W', 3) uint8 at ``dst_hw``, K' (3, 3) float64) of one camera; ``affine`` defaults to
    :func:`resize_affine`."""
    a = resize_affine(image.shape[:2], dst_hw) if affine is None else affine
    return warp_image(image, a, dst_hw), a @ np.asarray(intrinsics).astype(np.float64)


def normalize_images(images_uint8: torch.Tensor) -> torch.Tensor:
    """(B, N, H, W, 3) uint8 RGB -> (B, N, 3, H, W) float, ImageNet-normalised."""
    x = images_uint8.permute(0, 1, 4, 2, 3).float().div_(255.0)
    return (x - IMAGE_MEAN.to(x.device)) / IMAGE_STD.to(x.device)
