"""Procedural value noise: the one texture primitive behind ground, facades and object paint.

Lattice values come from an integer hash, so a texture is a pure function of world coordinates and a seed:
the same spot of asphalt looks the same from every camera, in every frame and for the LiDAR.
"""

from __future__ import annotations

import numpy as np

_MASK = np.uint64(0xFFFFFFFF)


def lattice_hash(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """A float32 in [0, 1) per integer lattice point (ix, iy)."""
    h = ix.astype(np.int64).astype(np.uint64) * np.uint64(374761393)
    h = h + iy.astype(np.int64).astype(np.uint64) * np.uint64(668265263)
    h = (h + np.uint64((seed * 2654435761) & 0xFFFFFFFF)) & _MASK
    h = ((h ^ (h >> np.uint64(13))) * np.uint64(1274126177)) & _MASK
    h = h ^ (h >> np.uint64(16))
    return (h & np.uint64(0xFFFFFF)).astype(np.float32) / np.float32(16777216.0)


def value_noise(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Smooth 2D value noise in [0, 1) with unit lattice spacing."""
    fx0 = np.floor(x)
    fy0 = np.floor(y)
    fx = (x - fx0).astype(np.float32)
    fy = (y - fy0).astype(np.float32)
    ix = fx0.astype(np.int64)
    iy = fy0.astype(np.int64)
    # Smoothstep weights hide the lattice.
    sx = fx * fx * (3 - 2 * fx)
    sy = fy * fy * (3 - 2 * fy)
    a = lattice_hash(ix, iy, seed)
    b = lattice_hash(ix + 1, iy, seed)
    c = lattice_hash(ix, iy + 1, seed)
    d = lattice_hash(ix + 1, iy + 1, seed)
    top = a + (b - a) * sx
    bottom = c + (d - c) * sx
    return top + (bottom - top) * sy


def fractal_noise(
    x: np.ndarray,
    y: np.ndarray,
    seed: int,
    scales: tuple[float, ...],
    footprint: np.ndarray | None = None,
) -> np.ndarray:
    """Sum of value-noise octaves of the given feature sizes (metres), centred on 0, roughly in [-0.5, 0.5].

    ``footprint`` (metres per pixel at each sample) fades octaves finer than about two pixels: a cheap
    stand-in for mip-mapping that keeps distant ground from sparkling.
    """
    out = np.zeros(np.shape(x), np.float32)
    total = 0.0
    for k, scale in enumerate(scales):
        weight = np.float32(scale**0.5)
        n = value_noise(x / scale, y / scale, seed + 7919 * k) - np.float32(0.5)
        if footprint is not None:
            n = n * np.clip(1.5 - footprint / np.float32(scale), 0.0, 1.0)
        out += weight * n
        total += weight
    return out / np.float32(total)
