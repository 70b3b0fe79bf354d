"""The road a scene is built around: a constant-curvature street with lanes, curbs, sidewalks and verges.

Everything is laid out in path coordinates (s along the road centre line of the ego lane, d to its left);
:meth:`Road.to_path` maps world points there so the ground texture (asphalt, lane markings, sidewalk
tiles, grass) is a function of WORLD position and stays put while the ego drives over it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simdistill_ros.synth.noise import fractal_noise

ASPHALT = np.array([0.31, 0.31, 0.32], np.float32)
CONCRETE = np.array([0.58, 0.56, 0.53], np.float32)
CURB = np.array([0.70, 0.69, 0.66], np.float32)
GRASS = np.array([0.25, 0.40, 0.14], np.float32)
DIRT = np.array([0.42, 0.36, 0.27], np.float32)
WHITE_PAINT = np.array([0.88, 0.88, 0.85], np.float32)
YELLOW_PAINT = np.array([0.85, 0.68, 0.18], np.float32)

PARKING_WIDTH = 2.4
CURB_WIDTH = 0.3


@dataclass(frozen=True)
class Marking:
    d: float  # lateral centre (metres, left of the ego lane centre)
    width: float
    color: tuple[float, float, float]
    dashed: bool


@dataclass(frozen=True)
class Road:
    x0: float
    y0: float
    heading0: float
    curvature: float  # 1/m, positive turns left
    lane_width: float = 3.5
    lanes_forward: int = 2  # the ego's direction; the ego drives the leftmost one (d = 0)
    lanes_backward: int = 1  # oncoming lanes, left of the centre line
    parking_right: bool = True
    parking_left: bool = False
    sidewalk_width: float = 3.5
    verge_width: float = 3.0
    crosswalk_s: float | None = None
    seed: int = 0

    # Layout ----------------------------------------------------------------------------------------------
    @property
    def right_lane_edge(self) -> float:
        return -(self.lanes_forward - 0.5) * self.lane_width

    @property
    def left_lane_edge(self) -> float:
        return (self.lanes_backward + 0.5) * self.lane_width

    @property
    def right_edge(self) -> float:
        """Lateral position of the right curb face (road surface ends here)."""
        return self.right_lane_edge - (PARKING_WIDTH if self.parking_right else 0.3)

    @property
    def left_edge(self) -> float:
        return self.left_lane_edge + (PARKING_WIDTH if self.parking_left else 0.3)

    def sidewalk(self, side: int) -> tuple[float, float]:
        """(inner, outer) lateral bounds of the sidewalk on ``side`` (+1 left, -1 right)."""
        edge = self.left_edge if side > 0 else self.right_edge
        inner = edge + side * CURB_WIDTH
        return inner, inner + side * self.sidewalk_width

    def verge(self, side: int) -> tuple[float, float]:
        inner = self.sidewalk(side)[1]
        return inner, inner + side * self.verge_width

    def lane_centers(self, forward: bool) -> list[float]:
        w = self.lane_width
        if forward:
            return [-k * w for k in range(self.lanes_forward)]
        return [(k + 1) * w for k in range(self.lanes_backward)]

    def markings(self) -> list[Marking]:
        w = self.lane_width
        white, yellow = tuple(WHITE_PAINT.tolist()), tuple(YELLOW_PAINT.tolist())
        out = [Marking(-(k + 0.5) * w, 0.14, white, True) for k in range(self.lanes_forward - 1)]
        out += [Marking((k + 1.5) * w, 0.14, white, True) for k in range(self.lanes_backward - 1)]
        if self.lanes_backward:
            out += [
                Marking(0.5 * w - 0.12, 0.12, yellow, False),
                Marking(0.5 * w + 0.12, 0.12, yellow, False),
            ]
        out += [Marking(self.right_lane_edge + 0.1, 0.15, white, False)]
        out += [Marking(self.left_lane_edge - 0.1, 0.15, white, False)]
        return out

    # Path coordinates ------------------------------------------------------------------------------------
    def _straight(self) -> bool:
        return abs(self.curvature) < 1e-9

    def from_path(self, s: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World (x, y) and road heading at path coordinates (s, d)."""
        s = np.asarray(s, np.float64)
        d = np.asarray(d, np.float64)
        k = self.curvature
        # sin(ks)/k and (1 - cos(ks))/k written with sinc so they stay exact as k -> 0.
        along = s * np.sinc(k * s / np.pi)
        across = 0.5 * k * s * s * np.sinc(k * s / (2 * np.pi)) ** 2
        c0, s0 = np.cos(self.heading0), np.sin(self.heading0)
        heading = self.heading0 + k * s
        x = self.x0 + along * c0 - across * s0 - d * np.sin(heading)
        y = self.y0 + along * s0 + across * c0 + d * np.cos(heading)
        return x, y, heading

    def to_path(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Path coordinates (s, d) of world points (x, y)."""
        dx = np.asarray(x, np.float64) - self.x0
        dy = np.asarray(y, np.float64) - self.y0
        c0, s0 = np.cos(self.heading0), np.sin(self.heading0)
        if self._straight():
            return dx * c0 + dy * s0, -dx * s0 + dy * c0
        k = self.curvature
        # Centre of the turning circle, to the left for k > 0.
        cx, cy = -s0 / k, c0 / k
        qx, qy = dx - cx, dy - cy
        ax, ay = -cx, -cy
        phi = np.arctan2(ax * qy - ay * qx, ax * qx + ay * qy)
        return phi / k, 1.0 / k - np.sign(k) * np.hypot(qx, qy)

    # Surface ---------------------------------------------------------------------------------------------
    def surface(
        self, x: np.ndarray, y: np.ndarray, footprint: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Albedo (N, 3) and LiDAR reflectivity (N,) of the ground at world points (x, y).

        ``footprint`` is the ground size of a pixel (metres); detail finer than that is averaged away.
        """
        s, d = self.to_path(x, y)
        n = len(s)
        fp = (
            np.full(n, 0.02, np.float32)
            if footprint is None
            else np.maximum(footprint, 0.02).astype(np.float32)
        )
        xf = np.asarray(x, np.float64)
        yf = np.asarray(y, np.float64)
        seed = self.seed
        coarse = fractal_noise(xf, yf, seed, (9.0, 3.0))
        fine = fractal_noise(xf, yf, seed + 1, (0.6, 0.15, 0.05), fp)

        albedo = np.empty((n, 3), np.float32)
        refl = np.empty(n, np.float32)
        on_road = (d >= self.right_edge) & (d <= self.left_edge)
        # Asphalt with patches, grain and darker tyre tracks in the lanes.
        tracks = np.zeros(n, np.float32)
        for c in self.lane_centers(True) + self.lane_centers(False):
            for off in (-0.85, 0.85):
                tracks = np.maximum(tracks, np.clip(1.0 - np.abs(d - c - off) / 0.35, 0.0, 1.0))
        asphalt_shade = 1.0 + 0.35 * coarse + 0.45 * fine - 0.12 * tracks
        albedo[:] = ASPHALT * asphalt_shade[:, None]
        refl[:] = 0.08 + 0.03 * coarse

        paint = np.zeros(n, np.float32)
        paint_rgb = np.zeros((n, 3), np.float32)
        for mk in self.markings():
            cover = np.clip((0.5 * mk.width - np.abs(d - mk.d)) / fp + 0.5, 0.0, 1.0)
            if mk.dashed:
                phase = np.mod(s + 0.37 * mk.d, 9.0)  # 3 m dashes, 6 m gaps
                cover = cover * np.clip((np.minimum(phase, 3.0 - phase)) / fp + 0.5, 0.0, 1.0)
            wins = cover > paint
            paint = np.where(wins, cover, paint)
            paint_rgb[wins] = mk.color
        if self.crosswalk_s is not None:
            ds = np.abs(s - self.crosswalk_s)
            along = np.clip((2.0 - ds) / fp + 0.5, 0.0, 1.0)
            stripe = np.mod(d, 1.2)
            across = np.clip(np.minimum(stripe, 0.6 - stripe) / fp + 0.5, 0.0, 1.0)
            zebra = along * across * ((d > self.right_lane_edge) & (d < self.left_lane_edge))
            wins = zebra > paint
            paint = np.where(wins, zebra, paint)
            paint_rgb[wins] = WHITE_PAINT
        paint *= np.clip(0.85 + 0.6 * fine, 0.0, 1.0)  # worn paint
        albedo = albedo * (1 - paint[:, None]) + paint_rgb * paint[:, None]
        refl = refl * (1 - paint) + 0.55 * paint

        off_road = ~on_road
        if off_road.any():
            side = np.where(d > 0, 1.0, -1.0)
            edge = np.where(d > 0, self.left_edge, self.right_edge)
            out = (d - edge) * side  # metres beyond the road edge
            o = off_road
            out_o, s_o, fine_o, coarse_o = out[o], s[o], fine[o], coarse[o]
            rgb = np.empty((int(o.sum()), 3), np.float32)
            r = np.empty(len(out_o), np.float32)
            curb = out_o < CURB_WIDTH
            walk = ~curb & (out_o < CURB_WIDTH + self.sidewalk_width)
            green = ~curb & ~walk
            rgb[curb] = CURB * (1.0 + 0.3 * fine_o[curb])[:, None]
            r[curb] = 0.35
            # Sidewalk slabs: 1.5 m squares separated by dark joints.
            fp_o = fp[o][walk]
            ja = np.mod(s_o[walk], 1.5)
            jb = np.mod(out_o[walk] - CURB_WIDTH, 1.5)
            joint = np.minimum(np.minimum(ja, 1.5 - ja), np.minimum(jb, 1.5 - jb))
            jcover = np.clip((0.03 - joint) / fp_o + 0.5, 0.0, 1.0)
            slab = 1.0 + 0.5 * fine_o[walk] + 0.25 * coarse_o[walk] - 0.35 * jcover
            rgb[walk] = CONCRETE * slab[:, None]
            r[walk] = 0.3
            # Verge and beyond: grass with dirt patches.
            g_mix = np.clip(0.5 + 2.5 * coarse_o[green], 0.0, 1.0)[:, None]
            rgb[green] = (GRASS * g_mix + DIRT * (1 - g_mix)) * (1.0 + 0.8 * fine_o[green])[:, None]
            r[green] = 0.45
            albedo[o] = rgb
            refl[o] = r
        return np.clip(albedo, 0.0, 1.0), np.clip(refl, 0.0, 1.0)
