"""A generated scene: its spec (road, ego motion, lighting, time base), annotated objects and unannotated
scenery, with exact poses at any time.

Time ``t`` is in seconds from the start of the scene. Objects move at constant velocity and never turn,
so :meth:`Scene.boxes_at` is exact at any instant; the ego follows the road's centre line at constant
speed (its yaw rate is speed x curvature). ``base_link`` sits on the ground (z = 0) under the ego's rear
axle; the world frame is ``map`` with the ground at z = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from simdistill_ros.geometry import Box3D, Transform
from simdistill_ros.synth.catalog import Part
from simdistill_ros.synth.materials import MaterialTable
from simdistill_ros.synth.road import Road

MOVING_ATTRIBUTE = {
    "pedestrian": "pedestrian.moving",
    "motorcycle": "cycle.with_rider",
    "bicycle": "cycle.with_rider",
}
STILL_ATTRIBUTE = {
    "pedestrian": "pedestrian.standing",
    "motorcycle": "cycle.without_rider",
    "bicycle": "cycle.without_rider",
    "barrier": "",
    "traffic_cone": "",
}


@dataclass(frozen=True)
class SceneSpec:
    """The per-scene draw: road, ego motion, lighting, time base."""

    name: str
    duration_s: float
    ego_speed: float
    road: Road
    sun_direction: tuple[float, float, float]  # unit vector towards the sun, world frame
    sun_intensity: float
    ambient: float
    sky_zenith: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    start_stamp_ns: int
    noise_seed: int

    @property
    def ego_yaw_rate(self) -> float:
        return self.ego_speed * self.road.curvature


@dataclass(frozen=True, eq=False)
class SceneObject:
    """An object or piece of scenery: a box moving at constant velocity, drawn as ``parts``."""

    label: str | None  # a nuScenes class, or None for unannotated scenery
    instance_id: str
    size: np.ndarray  # (length, width, height)
    center: np.ndarray  # (3,) box centre at t = 0, world frame
    yaw: float
    velocity: np.ndarray  # (2,) world frame, m/s
    parts: tuple[Part, ...]
    role: str = "static"

    def center_at(self, t: float) -> np.ndarray:
        return self.center + np.array([self.velocity[0], self.velocity[1], 0.0]) * t

    def box_at(self, t: float) -> Box3D:
        if self.label is None:
            raise ValueError(f"{self.instance_id} is scenery and has no annotated box")
        return Box3D(self.center_at(t), self.size, self.yaw, self.label, self.velocity, 1.0, self.instance_id)

    @property
    def attribute(self) -> str:
        """The nuScenes attribute name of this object."""
        moving = float(np.hypot(*self.velocity)) > 0.2
        if self.label in STILL_ATTRIBUTE:
            return MOVING_ATTRIBUTE.get(self.label, "") if moving else STILL_ATTRIBUTE[self.label]
        if moving:
            return "vehicle.moving"
        return "vehicle.stopped" if self.role == "stopped" else "vehicle.parked"


@dataclass
class PackedGeometry:
    """All actors (annotated objects first, then scenery) and their parts as flat arrays for ray casting."""

    num_objects: int  # actors [0, num_objects) are annotated objects
    center: np.ndarray  # (A, 3) at t = 0
    velocity: np.ndarray  # (A, 3)
    cos_yaw: np.ndarray  # (A,)
    sin_yaw: np.ndarray
    radius: np.ndarray  # (A,) bounding-sphere radius about the centre
    part_start: np.ndarray  # (A,) first part of each actor
    part_count: np.ndarray  # (A,)
    part_lo: np.ndarray  # (P, 3) in the actor frame
    part_hi: np.ndarray
    part_actor: np.ndarray  # (P,)
    materials: MaterialTable
    actor_lo: np.ndarray  # (A, 3) bounding box of each actor's parts, actor frame
    actor_hi: np.ndarray

    def centers_at(self, t: float) -> np.ndarray:
        return self.center + self.velocity * t


class Scene:
    """A generated scene: spec, annotated objects, scenery; poses at any time."""

    def __init__(self, spec: SceneSpec, objects: list[SceneObject], scenery: list[SceneObject]) -> None:
        self.spec = spec
        self.objects = list(objects)
        self.scenery = list(scenery)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def road(self) -> Road:
        return self.spec.road

    def ego_pose_at(self, t: float) -> Transform:
        """base_link in map at time t."""
        x, y, heading = self.road.from_path(self.spec.ego_speed * t, 0.0)
        return Transform.from_xyz_yaw(float(x), float(y), 0.0, float(heading))

    def ego_velocity_at(self, t: float) -> np.ndarray:
        """(vx, vy) of the ego in map."""
        heading = self.ego_pose_at(t).yaw
        return self.spec.ego_speed * np.array([np.cos(heading), np.sin(heading)])

    def boxes_at(self, t: float) -> list[Box3D]:
        """Annotated boxes at time t in the world frame (velocities in the world frame)."""
        return [o.box_at(t) for o in self.objects]

    @cached_property
    def geometry(self) -> PackedGeometry:
        actors = self.objects + self.scenery
        parts = [p for a in actors for p in a.parts]
        counts = np.array([len(a.parts) for a in actors], np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        lo = np.array([p.lo for p in parts], np.float64).reshape(-1, 3)
        hi = np.array([p.hi for p in parts], np.float64).reshape(-1, 3)
        actor_of_part = np.repeat(np.arange(len(actors)), counts)
        corner = np.maximum(np.abs(lo), np.abs(hi))
        radius = np.zeros(len(actors))
        np.maximum.at(radius, actor_of_part, np.linalg.norm(corner, axis=1))
        yaw = np.array([a.yaw for a in actors])
        return PackedGeometry(
            num_objects=len(self.objects),
            center=np.array([a.center for a in actors], np.float64).reshape(-1, 3),
            velocity=np.array([[a.velocity[0], a.velocity[1], 0.0] for a in actors], np.float64).reshape(
                -1, 3
            ),
            cos_yaw=np.cos(yaw),
            sin_yaw=np.sin(yaw),
            radius=radius + 1e-3,
            part_start=starts,
            part_count=counts,
            part_lo=lo,
            part_hi=hi,
            part_actor=actor_of_part,
            materials=MaterialTable.from_materials([p.material for p in parts]),
            actor_lo=np.minimum.reduceat(lo, starts, axis=0) if len(lo) else np.zeros((0, 3)),
            actor_hi=np.maximum.reduceat(hi, starts, axis=0) if len(hi) else np.zeros((0, 3)),
        )
