"""The one rule from a camera image to model input: resize, crop, fold the map into K, normalise.

Training, the evaluation runner, the teacher replay, ``simdistill detect`` and the live node all call
these functions, so every model sees its input built the same way. A pixel map is an affine ``A`` (3, 3)
from source pixels to model-input pixels, applied to the image with one ``cv2.warpAffine`` and folded into
the intrinsics as ``K' = A @ K``, so the view transform lifts the new pixels to the same 3D rays.
Augmentation (:mod:`simdistill_ros.training.augment`) draws another ``A`` and passes it in.

The rule (:func:`resize_affine`), BEVDet's resize + crop with the crop anchored on the camera:

- **Scale: match the width.** The image is scaled so that its width fills the input width, the scale
  every training image got. For the same camera streamed at another resolution (a bag at 2x, or a
  CameraInfo scaled with it) this is also the focal length the model was trained with. A camera with
  another lens keeps its whole horizontal field of view (the six views still tile the BEV) but shows
  objects at another pixel size than in training: the rule does not match focal lengths across lenses,
  because one model serves cameras of several lenses (the synthetic rig has 64 and 110 degree cameras,
  all trained at one width scale), so there is no single trained focal length to match.
- **Crop: the principal point lands on row** ``PRINCIPAL_ROW * H`` of the input (the horizon of a level
  camera), the same row for every image height, so a taller image (224x400 against the 160x400 the
  shipped *_tiny models were trained on) shows the road and the objects where training showed them; what
  falls outside is cropped (top and bottom), where the image does not reach the input is black.
  ``PRINCIPAL_ROW`` is where the earlier rule (cover the input, crop from the top) put the principal
  point of the 160x400 training images, so at that size the input is bit-identical to it.
- **Downscale without aliasing.** A scale under ``AREA_BELOW`` is first an area-averaging resize
  (``cv2.INTER_AREA``), then the rest of the map (a sub-pixel shift) bilinear, so a 2x image gives nearly
  the same input as the 1x image (a bilinear 0.44x warp alone skips pixels). Milder scales, the 0.88 of
  the training images among them, stay one bilinear warp (each output pixel still reads its neighbours).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

IMAGE_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1)
IMAGE_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1)
# (x / 255 - mean) / std as x * _SCALE - _SHIFT, float32: the one pair of factors both normalisers use
_SCALE = 1.0 / (255.0 * IMAGE_STD)
_SHIFT = IMAGE_MEAN / IMAGE_STD
_SCALE_RGB, _SHIFT_RGB = _SCALE.flatten().numpy(), _SHIFT.flatten().numpy()  # views, for normalize_image

# Row of the principal point in the model input, as a fraction of its height: where the covering resize
# cropped from the top put it for the 160x400 images of `make reproduce` in the tiny 128x352 input
# ((80 * 0.88 - 12.8) / 128 = 0.45), the inputs the shipped *_tiny models were trained on (the *_v2 ones
# were trained with this rule on 224x400 images).
PRINCIPAL_ROW = 0.45
# Downscales below this factor are area-averaged first (bilinear alone skips source pixels from 0.5 down
# and weighs them unevenly just above it).
AREA_BELOW = 0.75


def resize_affine(
    src_hw: tuple[int, int],
    dst_hw: tuple[int, int],
    intrinsics: np.ndarray | None = None,
    principal_row: float = PRINCIPAL_ROW,
) -> np.ndarray:
    """Pixel map (3, 3) from a source image to the model input: scale ``dst_w / src_w``, centred
    horizontally, the principal point (``intrinsics[1, 2]``; the image centre without ``intrinsics``)
    on row ``principal_row * dst_h``."""
    (h0, w0), (h, w) = src_hw, dst_hw
    s = w / w0
    cy = h0 / 2.0 if intrinsics is None else float(np.asarray(intrinsics)[1, 2])
    ty = principal_row * h - s * cy
    return np.array([[s, 0.0, 0.0], [0.0, s, ty], [0.0, 0.0, 1.0]])


def _prefilter(image: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image, affine) with a downscale below ``AREA_BELOW`` split into an area-averaging resize to the
    final scale and the rest (a shift), the pair mapping pixels exactly as ``affine`` does on ``image``."""
    scale = float(np.sqrt(abs(np.linalg.det(affine[:2, :2]))))
    if scale >= AREA_BELOW:
        return image, affine
    h0, w0 = image.shape[:2]
    h1, w1 = max(1, round(h0 * scale)), max(1, round(w0 * scale))
    small = cv2.resize(image, (w1, h1), interpolation=cv2.INTER_AREA)
    # cv2.resize maps pixel edges to pixel edges: a pure scale in the pixel-centre-at-+0.5 convention.
    pre = np.diag([w1 / w0, h1 / h0, 1.0])
    return small, affine @ np.linalg.inv(pre)


def warp_image(image: np.ndarray, affine: np.ndarray, dst_hw: tuple[int, int]) -> np.ndarray:
    """Apply a pixel map to an (H, W, 3) image; black where the map reaches outside it. Pixel centres sit
    at integer + 0.5, as in K. An identity map on an image of ``dst_hw`` returns the image itself (what
    the warp would give, without the cost)."""
    if tuple(image.shape[:2]) == tuple(dst_hw) and np.allclose(affine, np.eye(3)):
        return image
    image, affine = _prefilter(image, np.asarray(affine, dtype=np.float64))
    # cv2 maps pixel centres at integer coordinates: conjugate by a half-pixel shift.
    shift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    m = np.linalg.inv(shift) @ affine @ shift
    return cv2.warpAffine(
        image, m[:2], (dst_hw[1], dst_hw[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def camera_input(
    image: np.ndarray, intrinsics: np.ndarray, dst_hw: tuple[int, int], affine: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(image (H', W', 3) uint8 at ``dst_hw``, K' (3, 3) float64) of one camera; ``affine`` defaults to
    :func:`resize_affine`."""
    k = np.asarray(intrinsics).astype(np.float64)
    a = resize_affine(image.shape[:2], dst_hw, k) if affine is None else affine
    return warp_image(image, a, dst_hw), a @ k


def normalize_image(image_uint8: np.ndarray) -> np.ndarray:
    """One camera: (H, W, 3) uint8 RGB -> (3, H, W) float32, the values :func:`normalize_images` gives,
    bit for bit (the same float32 factors, the same two operations). NumPy, so that decoder threads
    preprocess images side by side (it releases the GIL)."""
    h, w, _ = image_uint8.shape
    out = np.empty((3, h, w), np.float32)
    for c in range(3):
        np.multiply(image_uint8[:, :, c], _SCALE_RGB[c], out=out[c])
        out[c] -= _SHIFT_RGB[c]
    return out


def normalize_images(images_uint8: torch.Tensor) -> torch.Tensor:
    """(B, N, H, W, 3) uint8 RGB -> (B, N, 3, H, W) float, ImageNet-normalised: (x / 255 - mean) / std."""
    b, n, h, w, _ = images_uint8.shape
    # one cast-and-transpose copy, then x * 1 / (255 std) - mean / std in place: a third of the passes
    x = torch.empty(b, n, 3, h, w, device=images_uint8.device)
    x.copy_(images_uint8.permute(0, 1, 4, 2, 3))
    return x.mul_(_SCALE.to(x.device)).sub_(_SHIFT.to(x.device))
