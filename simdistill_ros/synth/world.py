"""Procedural generation of driving scenes: draw a road, the ego's motion and lighting, line the street
with scenery, then place 15-40 annotated objects by class-specific rules, rejecting any placement that
overlaps another object, the scenery or the ego at any time of the scene.

Objects that a probe LiDAR (the nuScenes mount, noise-free) never hits during the scene are dropped and
replaced, as nuScenes only annotates what its sensors saw: every object is then visible to the LiDAR in
at least some sweeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simdistill_ros.geometry.camera import NUSCENES_LIDAR_MOUNT
from simdistill_ros.synth.catalog import (
    Part,
    building_parts,
    object_parts,
    pole_parts,
    sample_size,
    tree_parts,
)
from simdistill_ros.synth.raycast import cast
from simdistill_ros.synth.render import lidar_directions, rotate
from simdistill_ros.synth.road import PARKING_WIDTH, Road
from simdistill_ros.synth.scene import Scene, SceneObject, SceneSpec

# The ego's own body in base_link (centre, length, width) for keeping objects off it.
EGO_BODY = (1.4, 0.0, 4.9, 2.0)

# Per placement draw. Barriers and cones come in rows of several, and big movers are rejected more often
# for overlaps; these weights give about: cars 25 %, pedestrians 20 %, barriers and cones 10-15 % each.
DEFAULT_CLASS_WEIGHTS: dict[str, float] = {
    "car": 0.42,
    "pedestrian": 0.15,
    "truck": 0.09,
    "bus": 0.06,
    "motorcycle": 0.06,
    "bicycle": 0.06,
    "trailer": 0.04,
    "construction_vehicle": 0.04,
    "barrier": 0.03,
    "traffic_cone": 0.025,
}


@dataclass(frozen=True)
class WorldConfig:
    """Distributions the scenes are drawn from."""

    duration_s: float = 8.0
    num_objects: tuple[int, int] = (15, 40)
    class_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_CLASS_WEIGHTS))
    ego_speed: tuple[float, float] = (0.0, 12.0)
    max_curvature: float = 1.0 / 1200.0  # gentle: other traffic drives straight lines along it
    straight_probability: float = 0.4
    size_spread: float = 0.18  # per-dimension +- scaling of the class mean size
    object_range_m: float = 45.0  # objects lie within this distance (along the road) of the ego's path
    scenery: bool = True
    min_lidar_points: int = 3  # an object must get this many probe-LiDAR returns at some probe time
    lidar_probes: int = 9  # probe times spread over the scene, on the 20 Hz sweep grid
    start_stamp_ns: int = 1_700_000_000_000_000_000
    name: str = "synth-scene"
    vehicle_detail: bool = False  # cars, trucks, buses with a distinct front and back (``object_parts``)


# Named versions of the world. "v1" is the world every shipped model was trained on: never change its look.
# "v2" (the fair benchmark) adds vehicles whose front and back a camera can tell apart; scenes, boxes and
# random streams are otherwise those of v1 for the same seed.
WORLDS: dict[str, dict[str, object]] = {"v1": {}, "v2": {"vehicle_detail": True}}


def world_options(version: str) -> dict[str, object]:
    """WorldConfig keyword arguments of a named world version; ValueError for an unknown one."""
    if version not in WORLDS:
        raise ValueError(f"unknown world {version!r}; one of {sorted(WORLDS)}")
    return dict(WORLDS[version])


# Placement ------------------------------------------------------------------------------------------------


class _Occupancy:
    """Footprints of everything placed so far, sampled over the scene's duration, for overlap rejection."""

    def __init__(self, times: np.ndarray) -> None:
        self.times = times
        self.centers: list[np.ndarray] = []  # each (T, 2)
        self.yaws: list[np.ndarray] = []  # each (T,)
        self.halves: list[np.ndarray] = []  # each (2,)

    def add(self, centers: np.ndarray, yaw: float | np.ndarray, half: np.ndarray) -> None:
        self.centers.append(np.asarray(centers, np.float64))
        self.yaws.append(np.broadcast_to(np.asarray(yaw, np.float64), self.times.shape))
        self.halves.append(np.asarray(half, np.float64))

    def collides(self, centers: np.ndarray, yaw: float, half: np.ndarray, margin: float) -> bool:
        """Whether a rectangle at ``centers`` (T, 2) comes within ``margin`` of anything at any time."""
        if not self.centers:
            return False
        delta = np.stack(self.centers) - centers[None]  # (K, T, 2)
        y2 = np.stack(self.yaws)  # (K, T)
        h2 = (np.stack(self.halves) + margin / 2)[:, None, :]  # (K, 1, 2)
        h1 = np.asarray(half) + margin / 2
        c1, s1, c2, s2 = np.cos(yaw), np.sin(yaw), np.cos(y2), np.sin(y2)
        # Separating-axis test: the edge directions of both rectangles are the candidate axes.
        separated = np.zeros(delta.shape[:2], bool)
        for ax, ay in ((c1, s1), (-s1, c1), (c2, s2), (-s2, c2)):
            r1 = h1[0] * np.abs(c1 * ax + s1 * ay) + h1[1] * np.abs(-s1 * ax + c1 * ay)
            r2 = h2[..., 0] * np.abs(c2 * ax + s2 * ay) + h2[..., 1] * np.abs(-s2 * ax + c2 * ay)
            separated |= np.abs(delta[..., 0] * ax + delta[..., 1] * ay) > r1 + r2
        return bool((~separated).any())


@dataclass
class _Proposal:
    s: float
    d: float
    yaw_offset: float  # relative to the road heading at s
    speed: float  # along the object's heading
    role: str


def _propose(
    label: str,
    rng: np.random.Generator,
    road: Road,
    static_s: tuple[float, float],
    moving_s: tuple[float, float],
) -> list[_Proposal]:
    """Where an object of ``label`` might be: one or a group (barrier rows, cone lines) of proposals.

    ``s`` is drawn from ``static_s`` for things that stay put, from ``moving_s`` (near the ego at the
    mover's reference time) for things that move, so that every object comes near the ego at some point.
    """
    s = float(rng.uniform(*static_s))
    s_move = float(rng.uniform(*moving_s))
    u = rng.random()
    fwd, bwd = road.lane_centers(True), road.lane_centers(False)

    def lane() -> tuple[float, float]:
        lanes = [(c, 0.0) for c in fwd] + [(c, np.pi) for c in bwd]
        c, yaw = lanes[int(rng.integers(len(lanes)))]
        return c + float(rng.normal(0, 0.15)), yaw

    def curbside() -> tuple[float, float]:
        sides = []
        if road.parking_right:
            sides.append((road.right_edge + PARKING_WIDTH / 2, 0.0))
        if road.parking_left:
            sides.append((road.left_edge - PARKING_WIDTH / 2, np.pi))
        if not sides:  # no parking strip: stop on the outer edge of the rightmost lane
            sides.append((road.right_lane_edge + 1.3, 0.0))
        d, yaw = sides[int(rng.integers(len(sides)))]
        return d + float(rng.normal(0, 0.1)), yaw + float(rng.normal(0, 0.03))

    def sidewalk_spot(margin: float) -> tuple[float, int]:
        side = 1 if rng.random() < 0.5 else -1
        inner, outer = road.sidewalk(side)
        lo, hi = sorted((inner + side * margin, outer - side * margin))
        return float(rng.uniform(lo, hi)), side

    if label in ("car", "truck", "bus", "trailer"):
        p_move = {"car": 0.55, "truck": 0.5, "bus": 0.65, "trailer": 0.25}[label]
        v_max = {"car": 14.0, "truck": 11.0, "bus": 10.0, "trailer": 9.0}[label]
        if u < p_move:
            d, yaw = lane()
            return [_Proposal(s_move, d, yaw, float(rng.uniform(3.0, v_max)), "moving")]
        if u < p_move + 0.08:
            d, yaw = lane()
            return [_Proposal(s, d, yaw, 0.0, "stopped")]
        d, yaw = curbside()
        return [_Proposal(s, d, yaw, 0.0, "parked")]
    if label == "construction_vehicle":
        if u < 0.3:
            d, yaw = lane()
            return [_Proposal(s_move, d, yaw, float(rng.uniform(1.0, 4.0)), "moving")]
        d, yaw = curbside()
        return [_Proposal(s, d, yaw + float(rng.normal(0, 0.2)), 0.0, "parked")]
    if label == "pedestrian":
        if u < 0.55:
            d, _ = sidewalk_spot(0.5)
            return [
                _Proposal(s_move, d, float(rng.choice([0.0, np.pi])), float(rng.uniform(0.8, 1.8)), "moving")
            ]
        if u < 0.8:
            d, _ = sidewalk_spot(0.5)
            return [_Proposal(s, d, float(rng.uniform(-np.pi, np.pi)), 0.0, "standing")]
        # Crossing the road, on the crosswalk when there is one.
        s_cross = s_move if road.crosswalk_s is None else road.crosswalk_s + float(rng.uniform(-1.5, 1.5))
        d = float(rng.uniform(road.right_edge - 1.0, road.left_edge + 1.0))
        return [
            _Proposal(
                s_cross, d, float(rng.choice([np.pi / 2, -np.pi / 2])), float(rng.uniform(0.8, 1.6)), "moving"
            )
        ]
    if label in ("motorcycle", "bicycle"):
        if u < 0.5:
            if label == "bicycle":  # cyclists keep right
                d = road.right_lane_edge + float(rng.uniform(0.7, 1.1))
                return [_Proposal(s_move, d, 0.0, float(rng.uniform(3.0, 7.0)), "moving")]
            d, yaw = lane()
            return [_Proposal(s_move, d, yaw, float(rng.uniform(5.0, 14.0)), "moving")]
        d, side = sidewalk_spot(1.0)
        yaw = float(rng.choice([0.0, np.pi, side * np.pi / 2]))
        return [_Proposal(s, d, yaw + float(rng.normal(0, 0.1)), 0.0, "parked")]
    if label == "barrier":
        # A row of 1-4 barriers, along the road edge or across a lane (a closure).
        n = int(rng.integers(1, 5))
        gap = float(rng.uniform(2.6, 2.9))
        if rng.random() < 0.6:
            d = (road.right_edge + 0.8) if rng.random() < 0.6 else (road.left_edge - 0.8)
            return [_Proposal(s + k * gap, d, np.pi / 2, 0.0, "static") for k in range(n)]
        d0 = float(rng.choice(fwd + bwd))
        return [_Proposal(s, d0 + (k - (n - 1) / 2) * gap, 0.0, 0.0, "static") for k in range(n)]
    if label == "traffic_cone":
        n = int(rng.integers(2, 7))
        step = float(rng.uniform(1.5, 4.0))
        bounds = [road.right_lane_edge + 0.3, road.left_lane_edge - 0.3] + [
            -(k + 0.5) * road.lane_width for k in range(road.lanes_forward - 1)
        ]
        d = float(rng.choice(bounds)) + float(rng.normal(0, 0.1))
        return [
            _Proposal(s + k * step, d, float(rng.uniform(-np.pi, np.pi)), 0.0, "static") for k in range(n)
        ]
    raise ValueError(f"cannot place class {label!r}")


def _sample_spec(rng: np.random.Generator, config: WorldConfig) -> SceneSpec:
    curvature = 0.0
    if rng.random() >= config.straight_probability:
        curvature = float(rng.uniform(-1.0, 1.0)) * config.max_curvature
    lanes_forward = int(rng.integers(1, 3))
    road = Road(
        x0=float(rng.uniform(200.0, 2000.0)),
        y0=float(rng.uniform(200.0, 2000.0)),
        heading0=float(rng.uniform(-np.pi, np.pi)),
        curvature=curvature,
        lane_width=float(rng.uniform(3.2, 3.8)),
        lanes_forward=lanes_forward,
        lanes_backward=int(rng.integers(1, 3)),
        parking_right=bool(rng.random() < 0.7),
        parking_left=bool(rng.random() < 0.35),
        sidewalk_width=float(rng.uniform(2.5, 5.0)),
        verge_width=float(rng.uniform(1.5, 5.0)),
        crosswalk_s=float(rng.uniform(0.0, 60.0)) if rng.random() < 0.5 else None,
        seed=int(rng.integers(1 << 30)),
    )
    overcast = rng.random() < 0.25
    elevation = np.deg2rad(rng.uniform(20.0, 65.0))
    azimuth = rng.uniform(-np.pi, np.pi)
    sun = (np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation))
    zenith = np.array([0.22, 0.42, 0.78]) + rng.normal(0, 0.03, 3)
    horizon = np.array([0.72, 0.80, 0.90]) + rng.normal(0, 0.02, 3)
    if overcast:
        zenith = np.full(3, 0.62) + rng.normal(0, 0.02, 3)
        horizon = np.full(3, 0.78) + rng.normal(0, 0.02, 3)
    return SceneSpec(
        name=config.name,
        duration_s=config.duration_s,
        ego_speed=float(rng.uniform(*config.ego_speed)),
        road=road,
        sun_direction=tuple(float(v) for v in sun),
        sun_intensity=float(rng.uniform(0.25, 0.4) if overcast else rng.uniform(0.75, 0.95)),
        ambient=float(rng.uniform(0.55, 0.7) if overcast else rng.uniform(0.35, 0.45)),
        sky_zenith=tuple(np.clip(zenith, 0, 1).tolist()),
        sky_horizon=tuple(np.clip(horizon, 0, 1).tolist()),
        start_stamp_ns=int(config.start_stamp_ns),
        noise_seed=int(rng.integers(1 << 62)),
    )


def _scenery(
    rng: np.random.Generator, road: Road, s_lo: float, s_hi: float, occupancy: _Occupancy, name: str
) -> list[SceneObject]:
    out: list[SceneObject] = []
    times = occupancy.times

    def place(
        label: str,
        s: float,
        d: float,
        size: np.ndarray,
        yaw_offset: float,
        parts: list[Part],
        footprint: np.ndarray | None = None,
    ) -> None:
        x, y, heading = road.from_path(s, d)
        yaw = float(heading + yaw_offset)
        center = np.array([float(x), float(y), size[2] / 2])
        half = size[:2] / 2 if footprint is None else footprint / 2
        occupancy.add(np.repeat(center[None, :2], len(times), 0), yaw, half)
        out.append(
            SceneObject(
                None, f"{name}-{label}{len(out):03d}", size, center, yaw, np.zeros(2), tuple(parts), label
            )
        )

    for side in (-1, 1):
        verge_in, verge_out = road.verge(side)
        s = s_lo - float(rng.uniform(0, 10))
        while s < s_hi:  # buildings, with the odd empty lot
            length = float(rng.uniform(8.0, 26.0))
            if rng.random() < 0.85:
                depth, height = float(rng.uniform(8.0, 16.0)), float(rng.uniform(4.0, 22.0))
                d = verge_out + side * (float(rng.uniform(0.3, 4.0)) + depth / 2)
                size = np.array([length, depth, height])
                place("building", s + length / 2, d, size, 0.0, building_parts(size, rng))
            s += length + float(rng.uniform(0.0, 6.0))
        s = s_lo + float(rng.uniform(0, 10))
        while s < s_hi:  # trees in the verge
            if rng.random() < 0.6 and road.verge_width > 2.0:
                width, height = float(rng.uniform(2.5, 5.0)), float(rng.uniform(5.0, 9.0))
                size = np.array([width, width * rng.uniform(0.85, 1.0), height])
                place(
                    "tree",
                    s,
                    0.5 * (verge_in + verge_out),
                    size,
                    float(rng.uniform(0, np.pi)),
                    tree_parts(size, rng),
                    np.array([0.5, 0.5]),
                )
            s += float(rng.uniform(7.0, 16.0))
        s = s_lo + float(rng.uniform(0, 30))
        while s < s_hi:  # street lights at the back of the sidewalk, arm over the road
            size = np.array([float(rng.uniform(2.0, 3.0)), 0.25, float(rng.uniform(7.0, 8.5))])
            d = road.sidewalk(side)[1] - side * (0.3 - size[0] / 2)
            place("pole", s, d, size, -side * np.pi / 2, pole_parts(size, rng), np.array([0.3, 0.3]))
            s += float(rng.uniform(25.0, 40.0))
    # Street-light footprints were registered at the box centre; the mast is at the back end, close enough
    # for keeping objects away since both are on the sidewalk edge.
    return out


def generate_scene(rng: np.random.Generator, config: WorldConfig | None = None) -> Scene:
    """Draw one scene from ``config`` using only ``rng`` (same seed, same scene)."""
    config = config or WorldConfig()
    spec = _sample_spec(rng, config)
    road = spec.road
    duration = spec.duration_s
    times = np.linspace(0.0, duration, max(2, int(np.ceil(duration / 0.2)) + 1))
    occupancy = _Occupancy(times)
    # The ego's own footprint over time.
    ex, ey, eh = road.from_path(spec.ego_speed * times, 0.0)
    cx, cy, length, width = EGO_BODY
    ego_c = np.stack([ex + cx * np.cos(eh) - cy * np.sin(eh), ey + cx * np.sin(eh) + cy * np.cos(eh)], 1)
    occupancy.add(ego_c, eh, np.array([length / 2, width / 2]) + 0.5)

    travel = spec.ego_speed * duration
    s_lo, s_hi = -config.object_range_m, travel + config.object_range_m
    scenery = _scenery(rng, road, s_lo - 60.0, s_hi + 80.0, occupancy, spec.name) if config.scenery else []

    labels = list(config.class_weights)
    weights = np.array([config.class_weights[k] for k in labels], np.float64)
    weights /= weights.sum()
    target = int(rng.integers(config.num_objects[0], config.num_objects[1] + 1))
    placed: list[tuple[str, _Proposal, np.ndarray, float, np.ndarray, list[Part]]] = []
    for _ in range(4):  # place, drop what the LiDAR cannot see, top up
        for _ in range(40 * target):
            if len(placed) >= target:
                break
            label = labels[int(rng.choice(len(labels), p=weights))]
            # Movers are placed in their lane at a reference time (where the road tangent is their
            # heading), within range of where the ego is then.
            t_ref = float(rng.uniform(0.0, duration))
            s_ego = spec.ego_speed * t_ref
            near = (s_ego - config.object_range_m, s_ego + config.object_range_m)
            for prop in _propose(label, rng, road, (s_lo, s_hi), near):
                if len(placed) >= target:
                    break
                size = sample_size(label, rng, config.size_spread, moving=prop.speed > 0)
                x, y, heading = road.from_path(prop.s, prop.d)
                yaw = float(np.arctan2(np.sin(heading + prop.yaw_offset), np.cos(heading + prop.yaw_offset)))
                vel = prop.speed * np.array([np.cos(yaw), np.sin(yaw)])
                center0 = np.array([float(x), float(y)]) - vel * (t_ref if prop.speed > 0 else 0.0)
                centers = center0[None] + vel[None] * times[:, None]
                margin = 0.25 if prop.speed == 0 else 0.8 + 0.15 * prop.speed
                if label == "barrier":
                    margin = 0.05  # rows of barriers stand nearly touching
                if occupancy.collides(centers, yaw, size[:2] / 2, margin):
                    continue
                occupancy.add(centers, yaw, size[:2] / 2)
                parts = object_parts(label, size, rng, moving=prop.speed > 0, detail=config.vehicle_detail)
                placed.append(
                    (label, prop, size, yaw, np.array([center0[0], center0[1], size[2] / 2, *vel]), parts)
                )
        if config.min_lidar_points <= 0:
            break
        candidates = Scene(spec, _objects(placed, spec.name), scenery)
        seen = _lidar_visible(candidates, config)
        placed = [p for p, ok in zip(placed, seen) if ok]
        if len(placed) >= config.num_objects[0] and seen.all():
            break
    return Scene(spec, _objects(placed, spec.name), scenery)


def _objects(placed: list, name: str) -> list[SceneObject]:
    return [
        SceneObject(label, f"{name}-obj{i:03d}", size, state[:3], yaw, state[3:5], tuple(parts), prop.role)
        for i, (label, prop, size, yaw, state, parts) in enumerate(placed)
    ]


def _lidar_visible(scene: Scene, config: WorldConfig) -> np.ndarray:
    """(M,) bool: objects that a noise-free LiDAR at the nuScenes mount hits at least
    ``config.min_lidar_points`` times at one of the probe times."""
    dirs_lidar = lidar_directions()
    best = np.zeros(len(scene.objects), np.int64)
    period = 0.05  # the 20 Hz sweep grid, so probes coincide with real sweeps
    # The last camera cycle of a recording starts at least 40 ms before the end of the scene: stay inside.
    steps = max(0, int(np.floor((scene.spec.duration_s - 0.1) / period + 1e-9)))
    for k in np.unique(np.linspace(0, steps, config.lidar_probes).round().astype(int)):
        t = float(k * period)
        pose = scene.ego_pose_at(t) @ NUSCENES_LIDAR_MOUNT
        dirs = rotate(dirs_lidar, pose.rotation)
        hits = cast(pose.translation, dirs, scene, t, max_distance=70.0, chunk_size=2048)
        idx = hits.object_index[hits.object_index >= 0]
        best = np.maximum(best, np.bincount(idx, minlength=len(scene.objects)))
    return best >= config.min_lidar_points
