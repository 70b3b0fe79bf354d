"""Surface materials of the box primitives: a base paint, a second colour and a procedural pattern.

Patterns are evaluated at the hit point in the part's own frame (metres from its lower corner), so paint,
windows and stripes stick to a moving object. Each returns an albedo (RGB in [0, 1], used by the cameras)
and a reflectivity in [0, 1] (used by the LiDAR intensity); both modalities read the same surface.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from simdistill_ros.synth.noise import fractal_noise, lattice_hash


class Pattern(IntEnum):
    PLAIN = 0
    STRIPES = 1  # diagonal two-colour stripes (barriers)
    BAND = 2  # a second-colour band round the middle (cone tiers)
    FACADE = 3  # building walls with a grid of windows
    CAR_BODY = 4  # paint, wheel arches, head/tail lights
    CABIN = 5  # glass with pillars, painted roof
    BUS = 6  # window band, livery stripe, lights
    TRUCK_CAB = 7
    CONTAINER = 8  # ribbed cargo box
    HEAD = 9  # skin with hair
    FOLIAGE = 10


@dataclass(frozen=True)
class Material:
    color: tuple[float, float, float]
    color2: tuple[float, float, float] = (0.05, 0.05, 0.05)
    pattern: Pattern = Pattern.PLAIN
    scale: float = 1.0  # pattern period (metres) where the pattern has one
    reflectivity: float = 0.3
    reflectivity2: float = 0.3


@dataclass
class MaterialTable:
    """The materials of all parts of a scene as flat arrays, indexed by part."""

    color: np.ndarray  # (P, 3) float32
    color2: np.ndarray  # (P, 3)
    pattern: np.ndarray  # (P,) int16
    scale: np.ndarray  # (P,)
    reflectivity: np.ndarray  # (P,)
    reflectivity2: np.ndarray  # (P,)

    @classmethod
    def from_materials(cls, materials: list[Material]) -> MaterialTable:
        f32 = np.float32
        return cls(
            np.array([m.color for m in materials], f32).reshape(-1, 3),
            np.array([m.color2 for m in materials], f32).reshape(-1, 3),
            np.array([int(m.pattern) for m in materials], np.int16),
            np.array([m.scale for m in materials], f32),
            np.array([m.reflectivity for m in materials], f32),
            np.array([m.reflectivity2 for m in materials], f32),
        )


HEADLIGHT = np.array([0.97, 0.95, 0.85], np.float32)
TAILLIGHT = np.array([0.75, 0.05, 0.04], np.float32)
RUBBER = np.array([0.04, 0.04, 0.045], np.float32)
GRILLE = np.array([0.08, 0.08, 0.09], np.float32)


def _box(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (v > lo) & (v < hi)


class _Faces:
    """Hits on the parts of one pattern: face coordinates in, colour decisions out."""

    def __init__(
        self,
        p_rel: np.ndarray,
        size: np.ndarray,
        axis: np.ndarray,
        sign: np.ndarray,
        part: np.ndarray,
        table: MaterialTable,
    ) -> None:
        n = len(part)
        self.part = part
        self.size = size
        self.scale = table.scale[part]
        self.x, self.y, self.z = p_rel[:, 0], p_rel[:, 1], p_rel[:, 2]
        frac = p_rel / np.maximum(size, 1e-6)
        self.fx, self.fy, self.fz = frac[:, 0], frac[:, 1], frac[:, 2]
        # Horizontal coordinate along the face (for side faces) and its fraction.
        self.u = np.where(axis == 0, self.y, self.x)
        self.fu = np.where(axis == 0, self.fy, self.fx)
        self.side = axis != 2
        self.front = (axis == 0) & (sign > 0)
        self.rear = (axis == 0) & (sign < 0)
        self.ends = axis == 0
        self.flank = axis == 1
        self.top = axis == 2
        self.color = table.color[part].copy()
        self.color2 = table.color2[part].copy()
        self.refl = table.reflectivity[part].copy()
        self.second = np.zeros(n, bool)  # where color2 / reflectivity2 apply
        self.paint = np.zeros((n, 3), np.float32)  # explicit colours (lights, rubber) where ``painted``
        self.painted = np.zeros(n, bool)

    def put(self, mask: np.ndarray, rgb: np.ndarray, reflectivity: float) -> None:
        self.paint[mask] = rgb
        self.painted[mask] = True
        self.refl[mask] = reflectivity


def _stripes(h: _Faces) -> None:
    h.second |= h.side & (np.mod((h.u + h.z) / h.scale, 1.0) < 0.5)


def _band(h: _Faces) -> None:
    h.second |= h.side & _box(h.fz, 0.4, 0.72)


def _facade(h: _Faces) -> None:
    floor_h = h.scale
    column = np.floor(h.u / (0.85 * floor_h))
    storey = np.floor(h.z / floor_h)
    wu = h.u / (0.85 * floor_h) - column
    wz = h.z / floor_h - storey
    ground_floor = storey < 1
    win = np.where(
        ground_floor,
        _box(wu, 0.08, 0.92) & _box(wz, 0.12, 0.8),
        _box(wu, 0.22, 0.78) & _box(wz, 0.3, 0.82),
    )
    win &= h.side & (h.z > 0.3) & (h.z < h.size[:, 2] - 0.6)
    h.second |= win
    # Some windows are lit or reflect the sky: vary them window by window.
    cell = lattice_hash(column + 7919 * h.part, storey, 17)
    h.color2 *= np.where(win, 0.7 + 0.9 * cell, 1.0)[:, None].astype(np.float32)
    h.color[h.top] *= 0.55  # roofs


def _car_body(h: _Faces) -> None:
    fx, fy, fz = h.fx, h.fy, h.fz
    h.put(h.flank & (fz < 0.5) & ((np.abs(fx - 0.2) < 0.085) | (np.abs(fx - 0.8) < 0.085)), RUBBER, 0.05)
    lamp_y = (np.abs(fy - 0.17) < 0.09) | (np.abs(fy - 0.83) < 0.09)
    h.put(h.front & lamp_y & _box(fz, 0.5, 0.78), HEADLIGHT, 0.8)
    h.put(h.front & (np.abs(fy - 0.5) < 0.2) & _box(fz, 0.25, 0.55), GRILLE, 0.1)
    h.put(h.rear & lamp_y & _box(fz, 0.55, 0.8), TAILLIGHT, 0.8)
    h.put(h.rear & (np.abs(fy - 0.5) < 0.12) & _box(fz, 0.3, 0.5), HEADLIGHT * 0.9, 0.9)


def _cabin(h: _Faces) -> None:
    glass_side = h.flank & _box(h.fu, 0.05, 0.95) & _box(h.fz, 0.08, 0.9) & ~_box(h.fu, 0.47, 0.53)
    glass_end = h.ends & _box(h.fy, 0.06, 0.94) & _box(h.fz, 0.08, 0.92)
    h.second |= glass_side | glass_end


def _bus(h: _Faces) -> None:
    fx, fy, fz = h.fx, h.fy, h.fz
    pillar = np.mod(h.u / h.scale, 1.0) < 0.08
    h.second |= h.flank & _box(fz, 0.5, 0.86) & ~pillar
    h.second |= h.front & _box(fz, 0.4, 0.92) & _box(fy, 0.04, 0.96)
    h.second |= h.rear & _box(fz, 0.6, 0.88) & _box(fy, 0.1, 0.9)
    h.color[h.flank & _box(fz, 0.3, 0.38)] *= 0.45  # livery stripe
    h.put(h.flank & (fz < 0.22) & ((np.abs(fx - 0.16) < 0.05) | (np.abs(fx - 0.8) < 0.05)), RUBBER, 0.05)
    lamp_y = (np.abs(fy - 0.12) < 0.07) | (np.abs(fy - 0.88) < 0.07)
    h.put(h.front & lamp_y & _box(fz, 0.12, 0.22), HEADLIGHT, 0.8)
    h.put(h.rear & lamp_y & _box(fz, 0.12, 0.3), TAILLIGHT, 0.8)


def _truck_cab(h: _Faces) -> None:
    fx, fy, fz = h.fx, h.fy, h.fz
    h.second |= h.front & _box(fz, 0.55, 0.9) & _box(fy, 0.06, 0.94)
    h.second |= h.flank & _box(fz, 0.55, 0.88) & _box(fx, 0.45, 0.92)
    lamp_y = (np.abs(fy - 0.14) < 0.08) | (np.abs(fy - 0.86) < 0.08)
    h.put(h.front & lamp_y & _box(fz, 0.15, 0.28), HEADLIGHT, 0.8)
    h.put(h.front & (np.abs(fy - 0.5) < 0.25) & _box(fz, 0.2, 0.45), GRILLE, 0.1)


def _container(h: _Faces) -> None:
    h.color[h.side & (np.mod(h.u / h.scale, 1.0) < 0.15)] *= 0.82  # ribs
    h.put(h.rear & _box(h.fz, 0.02, 0.12) & ((h.fy < 0.15) | (h.fy > 0.85)), TAILLIGHT, 0.8)


def _head(h: _Faces) -> None:
    fz = h.fz
    h.second |= h.top | (fz > 0.68) | (h.rear & (fz > 0.25)) | (h.flank & (fz > 0.45) & (h.fx < 0.5))


def _foliage(h: _Faces) -> None:
    leaf = fractal_noise(h.u + 0.37 * h.z, h.z + 0.21 * h.u, 101, (0.7, 0.25))
    h.color *= (1.0 + 1.6 * leaf)[:, None]


_PATTERNS = {
    Pattern.STRIPES: _stripes,
    Pattern.BAND: _band,
    Pattern.FACADE: _facade,
    Pattern.CAR_BODY: _car_body,
    Pattern.CABIN: _cabin,
    Pattern.BUS: _bus,
    Pattern.TRUCK_CAB: _truck_cab,
    Pattern.CONTAINER: _container,
    Pattern.HEAD: _head,
    Pattern.FOLIAGE: _foliage,
}


def part_surface(
    p_rel: np.ndarray,
    size: np.ndarray,
    axis: np.ndarray,
    sign: np.ndarray,
    part: np.ndarray,
    table: MaterialTable,
) -> tuple[np.ndarray, np.ndarray]:
    """Albedo (N, 3) and reflectivity (N,) of N hits on box parts.

    ``p_rel`` is the hit in the part frame measured from its lower corner (metres), ``size`` the part's
    extents, ``axis``/``sign`` the face that was hit (0: +-x front/back, 1: +-y sides, 2: top/bottom),
    ``part`` the part indices (into ``table`` and used as texture seeds).
    """
    n = len(part)
    albedo = np.empty((n, 3), np.float32)
    refl = np.empty(n, np.float32)
    pattern = table.pattern[part]
    for value in np.unique(pattern):
        idx = np.flatnonzero(pattern == value)
        h = _Faces(p_rel[idx], size[idx], axis[idx], sign[idx], part[idx], table)
        if Pattern(int(value)) in _PATTERNS:
            _PATTERNS[Pattern(int(value))](h)
        rgb = np.where(h.second[:, None], h.color2, h.color)
        albedo[idx] = np.where(h.painted[:, None], h.paint, rgb)
        refl[idx] = np.where(h.second & ~h.painted, table.reflectivity2[h.part], h.refl)
    # Grime and paint variation so faces are not perfectly flat colours.
    u = np.where(axis == 0, p_rel[:, 1], p_rel[:, 0])
    grain = fractal_noise(u + 13.0 * axis, p_rel[:, 2] + 7.0 * sign, 5, (0.6, 0.15))
    albedo *= (1.0 + 0.18 * grain)[:, None]
    return np.clip(albedo, 0.0, 1.0), refl
