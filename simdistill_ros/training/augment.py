"""Geometry-consistent augmentation.

2D (per camera): a random zoom about the principal point, a crop shift and a horizontal flip on top of
the plain rule are one affine map ``A`` of pixel coordinates, handed to
:func:`simdistill_ros.models.preprocess.camera_input` in place of the plain map: it warps the image and
folds ``A`` into the intrinsics (``K' = A @ K``) exactly as at run time. Optionally (off by default) the
warped image's pixels change too: brightness, contrast and Gaussian noise, which move no geometry.

3D (per sample): a BEV rotation, scale and flips form one matrix ``M`` (4, 4) applied to the base frame;
camera extrinsics, LiDAR points and boxes are all mapped by the same ``M``, so teacher inputs, student
inputs and labels stay consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simdistill_ros.models.preprocess import PRINCIPAL_ROW, resize_affine


@dataclass(frozen=True)
class ImageAugConfig:
    """Random zoom, crop shift and flip on top of the plain rule (:func:`resize_affine`)."""

    resize_range: tuple[float, float] = (0.94, 1.11)  # zoom relative to the plain scale (>= 1 is kept)
    # Shift of the principal point's row, as a fraction of the input height (+ is down); clipped so that
    # the image still covers the input.
    row_shift: tuple[float, float] = (-0.05, 0.10)
    flip: bool = True
    # Photometric, per camera (0 = off, and then no random draw is made, so a recipe without them trains
    # bit for bit as before): gain and contrast factors drawn from 1 +- these fractions, and Gaussian
    # noise of a standard deviation drawn from [0, noise_sigma] (0-255 pixel units). Camera models trained
    # on clean renders lose 15-20 % of their mAP to sigma-4 noise (docs/lidar_knowledge.md).
    brightness: float = 0.0
    contrast: float = 0.0
    noise_sigma: float = 0.0

    @property
    def photometric(self) -> bool:
        return self.brightness > 0 or self.contrast > 0 or self.noise_sigma > 0


@dataclass(frozen=True)
class BEVAugConfig:
    """Random rotation about +z (radians), isotropic scale and flips of the base frame."""

    rotation: float = 0.3925
    scale_range: tuple[float, float] = (0.95, 1.05)
    flip_x: bool = True
    flip_y: bool = True


def image_affine(
    src_hw: tuple[int, int],
    dst_hw: tuple[int, int],
    rng: np.random.Generator | None,
    cfg: ImageAugConfig = ImageAugConfig(),
    intrinsics: np.ndarray | None = None,
) -> np.ndarray:
    """Affine pixel map (3, 3) from a source image to the model input; ``rng=None`` gives the plain rule
    (:func:`~simdistill_ros.models.preprocess.resize_affine`, anchored on ``intrinsics``' principal
    point). A draw zooms about the principal point, shifts the crop and flips, never uncovering a border
    the plain rule covers."""
    plain = resize_affine(src_hw, dst_hw, intrinsics)
    if rng is None:
        return plain
    (h0, w0), (h, w) = src_hw, dst_hw
    zoom = max(1.0, rng.uniform(*cfg.resize_range))  # zooming out would leave empty borders
    s = plain[0, 0] * zoom
    cy = h0 / 2.0 if intrinsics is None else float(np.asarray(intrinsics)[1, 2])
    dx = rng.uniform(0, w0 * s - w)
    ty = PRINCIPAL_ROW * h - s * cy + h * rng.uniform(*cfg.row_shift)
    lo, hi = h - s * h0, 0.0  # the range of ty that keeps the image covering every input row
    ty = float(np.clip(ty, lo, hi)) if lo <= hi else PRINCIPAL_ROW * h - s * cy
    a = np.array([[s, 0.0, -dx], [0.0, s, ty], [0.0, 0.0, 1.0]])
    if cfg.flip and rng.random() < 0.5:
        a = np.array([[-1.0, 0.0, w], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ a
    return a


def photometric(image: np.ndarray, rng: np.random.Generator | None, cfg: ImageAugConfig) -> np.ndarray:
    """One camera's (H, W, 3) uint8 image with random gain, contrast about its mean and Gaussian noise;
    the image itself when ``rng`` is None or ``cfg`` has no photometric change."""
    if rng is None or not cfg.photometric:
        return image
    out = image.astype(np.float32)
    if cfg.brightness > 0:
        out *= rng.uniform(1.0 - cfg.brightness, 1.0 + cfg.brightness)
    if cfg.contrast > 0:
        mean = out.mean()
        out = (out - mean) * rng.uniform(1.0 - cfg.contrast, 1.0 + cfg.contrast) + mean
    if cfg.noise_sigma > 0:
        out += rng.standard_normal(out.shape, dtype=np.float32) * rng.uniform(0.0, cfg.noise_sigma)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def pixel_noise(image: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """(H, W, 3) uint8 image plus Gaussian noise of standard deviation ``sigma`` (grey levels), rounded
    and clipped: the perturbation ``simdistill evaluate --image-noise`` scores a model under."""
    noisy = image.astype(np.float32) + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def bev_matrix(rng: np.random.Generator | None, cfg: BEVAugConfig = BEVAugConfig()) -> np.ndarray:
    """Random base-frame map (4, 4) = flips @ scale * Rz; ``rng=None`` gives the identity."""
    m = np.eye(4)
    if rng is None:
        return m
    angle = rng.uniform(-cfg.rotation, cfg.rotation)
    scale = rng.uniform(*cfg.scale_range)
    c, s = np.cos(angle), np.sin(angle)
    m[:3, :3] = scale * np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    flips = np.diag(
        [
            -1.0 if cfg.flip_x and rng.random() < 0.5 else 1.0,
            -1.0 if cfg.flip_y and rng.random() < 0.5 else 1.0,
            1.0,
            1.0,
        ]
    )
    return flips @ m


def transform_points(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Map points (N, >=3) by a base-frame matrix (4, 4); extra columns pass through."""
    out = points.copy()
    out[:, :3] = points[:, :3] @ m[:3, :3].T + m[:3, 3]
    return out


def transform_boxes(boxes: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Map box arrays (M, 9) ``[x, y, z, l, w, h, yaw, vx, vy]`` by a similarity (4, 4) (rotation about z,
    isotropic scale, axis flips)."""
    out = boxes.copy()
    if len(boxes) == 0:
        return out
    lin = m[:3, :3]
    scale = float(np.cbrt(abs(np.linalg.det(lin))))
    out[:, :3] = boxes[:, :3] @ lin.T + m[:3, 3]
    out[:, 3:6] = boxes[:, 3:6] * scale
    heading = np.stack([np.cos(boxes[:, 6]), np.sin(boxes[:, 6])], 1) @ lin[:2, :2].T
    out[:, 6] = np.arctan2(heading[:, 1], heading[:, 0])
    out[:, 7:9] = boxes[:, 7:9] @ lin[:2, :2].T
    return out
