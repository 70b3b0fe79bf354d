"""A scene played back through the sensor rig: the time-ordered stream of images, sweeps, poses and
per-frame annotations that a bag writer and the nuScenes table writer consume.

Timing (docs/design.md): camera cycles at 12 Hz, camera i of a cycle fires ``i * 8 ms`` after the cycle
start; the LiDAR spins at 20 Hz. Every camera cycle is one sample (frame) stamped at its start; its
annotations are the world at that instant, its LiDAR keyframe is the nearest sweep, and ``num_lidar_pts``
counts that sweep's points inside each box moved to the sweep's time.

Rendering is lazy: :meth:`SceneRecording.events` is a generator, so a writer can stream a scene to disk.
Each event's noise comes from its own generator seeded by (scene noise seed, sensor, index), so events
are reproducible one by one, whatever is rendered before them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from simdistill_ros.geometry import Box3D, CameraRig, PinholeCamera, Transform
from simdistill_ros.synth.render import render_camera_layers, render_lidar, rotate
from simdistill_ros.synth.scene import Scene

NS = 1_000_000_000


def count_points_in_boxes(points: np.ndarray, boxes: list[Box3D]) -> np.ndarray:
    """(M,) number of points (N, 3) inside each box (Box3D.contains), testing only the points near each
    box, which keeps the cost down for a full sweep against dozens of boxes."""
    counts = np.zeros(len(boxes), np.int64)
    for i, box in enumerate(boxes):
        reach = 0.5 * float(np.linalg.norm(box.size[:2])) + 1e-6
        near = np.flatnonzero(
            (np.abs(points[:, 0] - box.center[0]) <= reach) & (np.abs(points[:, 1] - box.center[1]) <= reach)
        )
        counts[i] = int(box.contains(points[near]).sum())
    return counts


@dataclass(frozen=True)
class SensorTimeline:
    camera_rate_hz: float = 12.0
    camera_stagger_ns: int = 8_000_000
    lidar_rate_hz: float = 20.0
    lidar_phase_ns: int = 0  # first sweep relative to the first camera cycle

    def cycle_ns(self, k: int) -> int:
        """Start of camera cycle k, relative to the scene start."""
        return int(round(k * NS / self.camera_rate_hz))

    def camera_ns(self, k: int, i: int) -> int:
        return self.cycle_ns(k) + i * self.camera_stagger_ns

    def sweep_ns(self, j: int) -> int:
        return self.lidar_phase_ns + int(round(j * NS / self.lidar_rate_hz))

    def sweeps_in(self, lo_ns: int, hi_ns: int) -> range:
        """Indices of the sweeps with lo <= stamp < hi (relative stamps)."""
        period = NS / self.lidar_rate_hz
        first = max(0, int(np.floor((lo_ns - self.lidar_phase_ns) / period)) - 1)
        j = first
        while self.sweep_ns(j) < lo_ns:
            j += 1
        k = j
        while self.sweep_ns(k) < hi_ns:
            k += 1
        return range(j, k)

    def nearest_sweep(self, stamp_ns: int) -> int:
        period = NS / self.lidar_rate_hz
        j = max(0, int(round((stamp_ns - self.lidar_phase_ns) / period)))
        # Rounding of the stamps can shift the nearest one by one.
        return min((k for k in (j - 1, j, j + 1) if k >= 0), key=lambda k: abs(self.sweep_ns(k) - stamp_ns))


@dataclass(frozen=True)
class EgoPoseEvent:
    stamp_ns: int
    pose: Transform  # base_link in map
    kind: str = "ego_pose"


@dataclass(frozen=True)
class CameraEvent:
    stamp_ns: int
    frame_index: int
    name: str
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 optical z, inf for sky (ground truth; not a sensor of the real car)
    camera: PinholeCamera
    kind: str = "camera"


@dataclass(frozen=True)
class LidarEvent:
    stamp_ns: int
    sweep_index: int
    points: np.ndarray  # (N, 4) float32 x, y, z, intensity in the LiDAR frame
    frame_id: str
    lidar_to_base: Transform
    kind: str = "lidar"


@dataclass(frozen=True)
class SampleEvent:
    """The annotation record of one frame (camera cycle)."""

    frame_index: int
    stamp_ns: int  # the sample's stamp: the cycle start = CAM 0's stamp
    ego_pose: Transform  # base_link in map at stamp_ns
    boxes: list[Box3D]  # base frame at stamp_ns; velocity = world velocity rotated into the base frame
    attributes: list[str]  # nuScenes attribute name per box ("" where the class has none)
    num_lidar_pts: np.ndarray  # (M,) int64, points of the keyframe sweep in each box at the sweep's time
    lidar_stamp_ns: int  # the keyframe sweep (nearest to stamp_ns)
    lidar_sweep_index: int
    camera_stamps_ns: dict[str, int] = field(default_factory=dict)
    kind: str = "sample"

    def boxes_global(self) -> list[Box3D]:
        """The boxes in map (velocities in map), e.g. for nuScenes sample_annotation records."""
        return [b.transformed(self.ego_pose) for b in self.boxes]


Event = EgoPoseEvent | CameraEvent | LidarEvent | SampleEvent

_CAMERA, _LIDAR = 1, 2


class SceneRecording:
    """``scene`` recorded by ``rig`` for ``num_frames`` camera cycles (default: as many as fit the scene).

    Iterate it (or call :meth:`events`) for the time-ordered events. Within one stamp the order is:
    sample (annotation), ego pose, then the sensor message.
    """

    def __init__(
        self,
        scene: Scene,
        rig: CameraRig,
        num_frames: int | None = None,
        timeline: SensorTimeline | None = None,
        start_stamp_ns: int | None = None,
        annotation_range_m: float | None = 80.0,
        shadows: bool = True,
        lidar_options: dict | None = None,
    ) -> None:
        if rig.lidar_to_base is None:
            raise ValueError("the rig needs a LiDAR pose (CameraRig.lidar_to_base)")
        self.scene = scene
        self.rig = rig
        self.timeline = timeline or SensorTimeline()
        self.start_stamp_ns = scene.spec.start_stamp_ns if start_stamp_ns is None else int(start_stamp_ns)
        self.annotation_range_m = annotation_range_m
        self.shadows = shadows
        self.lidar_options = dict(lidar_options or {})
        last_camera = (len(rig) - 1) * self.timeline.camera_stagger_ns
        fit = 0
        while self.timeline.cycle_ns(fit) + last_camera <= scene.spec.duration_s * NS:
            fit += 1
        self.num_frames = fit if num_frames is None else int(num_frames)
        if self.num_frames > fit:
            raise ValueError(
                f"scene {scene.name!r} lasts {scene.spec.duration_s} s: at most {fit} frames fit"
            )
        self._sweeps: dict[int, np.ndarray] = {}

    # Time base -------------------------------------------------------------------------------------------
    def scene_time(self, stamp_ns: int) -> float:
        """Seconds since the scene start of an absolute stamp."""
        return (stamp_ns - self.start_stamp_ns) / NS

    def frame_stamp_ns(self, k: int) -> int:
        return self.start_stamp_ns + self.timeline.cycle_ns(k)

    @property
    def frame_stamps_ns(self) -> list[int]:
        return [self.frame_stamp_ns(k) for k in range(self.num_frames)]

    def camera_stamps_ns(self, k: int) -> dict[str, int]:
        return {
            c.name: self.start_stamp_ns + self.timeline.camera_ns(k, i)
            for i, c in enumerate(self.rig.cameras)
        }

    def sweep_stamp_ns(self, j: int) -> int:
        return self.start_stamp_ns + self.timeline.sweep_ns(j)

    def sweep_indices(self, k: int) -> range:
        """Sweeps stamped within frame k's cycle [cycle k start, cycle k+1 start)."""
        return self.timeline.sweeps_in(self.timeline.cycle_ns(k), self.timeline.cycle_ns(k + 1))

    def ego_pose_at(self, stamp_ns: int) -> Transform:
        return self.scene.ego_pose_at(self.scene_time(stamp_ns))

    def describe(self) -> dict:
        """JSON-ready parameters of this recording (for synth.json and logs)."""
        spec, tl = self.scene.spec, self.timeline
        labels = [o.label for o in self.scene.objects]
        return {
            "scene": spec.name,
            "start_stamp_ns": self.start_stamp_ns,
            "num_frames": self.num_frames,
            "duration_s": spec.duration_s,
            "camera_rate_hz": tl.camera_rate_hz,
            "camera_stagger_ns": tl.camera_stagger_ns,
            "lidar_rate_hz": tl.lidar_rate_hz,
            "lidar_phase_ns": tl.lidar_phase_ns,
            "cameras": {c.name: [c.width, c.height] for c in self.rig.cameras},
            "ego_speed_mps": spec.ego_speed,
            "ego_yaw_rate_rps": spec.ego_yaw_rate,
            "num_objects": len(labels),
            "objects_per_class": {k: labels.count(k) for k in sorted(set(labels))},
            "num_scenery": len(self.scene.scenery),
        }

    # Rendering -------------------------------------------------------------------------------------------
    def _rng(self, sensor: int, index: int, sub: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.scene.spec.noise_seed, sensor, index, sub])

    def render_camera(self, k: int, i: int) -> CameraEvent:
        cam = self.rig.cameras[i]
        stamp = self.start_stamp_ns + self.timeline.camera_ns(k, i)
        t = self.scene_time(stamp)
        out = render_camera_layers(
            cam, self.scene.ego_pose_at(t), self.scene, t, self._rng(_CAMERA, k, i), shadows=self.shadows
        )
        return CameraEvent(stamp, k, cam.name, out.rgb, out.depth, cam)

    def render_sweep(self, j: int) -> LidarEvent:
        stamp = self.sweep_stamp_ns(j)
        if j not in self._sweeps:
            t = self.scene_time(stamp)
            self._sweeps[j] = render_lidar(
                self.rig.lidar_to_base,
                self.scene.ego_pose_at(t),
                self.scene,
                t,
                self._rng(_LIDAR, j),
                **self.lidar_options,
            )
            for old in [s for s in self._sweeps if s < j - 3]:  # keep memory bounded while streaming
                del self._sweeps[old]
        return LidarEvent(stamp, j, self._sweeps[j], self.rig.lidar_frame, self.rig.lidar_to_base)

    def sample(self, k: int) -> SampleEvent:
        """The annotation record of frame k (renders its keyframe sweep if needed)."""
        stamp = self.frame_stamp_ns(k)
        t = self.scene_time(stamp)
        pose = self.scene.ego_pose_at(t)
        j = self.timeline.nearest_sweep(self.timeline.cycle_ns(k))
        sweep = self.render_sweep(j)
        t_sweep = self.scene_time(sweep.stamp_ns)
        objects = self.scene.objects
        if self.annotation_range_m is not None:
            objects = [
                o
                for o in objects
                if np.hypot(*(o.center_at(t)[:2] - pose.translation[:2])) <= self.annotation_range_m
            ]
        to_base = pose.inverse()
        boxes = [o.box_at(t).transformed(to_base) for o in objects]
        # Points in map at the sweep's time, against the boxes moved to that time.
        lidar_to_map = self.scene.ego_pose_at(t_sweep) @ self.rig.lidar_to_base
        points_map = rotate(sweep.points[:, :3], lidar_to_map.rotation) + lidar_to_map.translation
        counts = count_points_in_boxes(points_map, [o.box_at(t_sweep) for o in objects])
        return SampleEvent(
            k,
            stamp,
            pose,
            boxes,
            [o.attribute for o in objects],
            counts,
            sweep.stamp_ns,
            j,
            self.camera_stamps_ns(k),
        )

    def events(self) -> Iterator[Event]:
        """All events of the recording in time order (lazily rendered)."""
        for k in range(self.num_frames):
            yield from self.frame_events(k)

    __iter__ = events

    def frame_events(self, k: int) -> Iterator[Event]:
        """The events stamped within frame k's cycle, in time order, starting with its sample."""
        schedule: list[tuple[int, int, int]] = []  # (stamp, sensor, index)
        for i in range(len(self.rig)):
            schedule.append((self.start_stamp_ns + self.timeline.camera_ns(k, i), _CAMERA, i))
        for j in self.sweep_indices(k):
            schedule.append((self.sweep_stamp_ns(j), _LIDAR, j))
        schedule.sort()
        yield self.sample(k)
        last_pose_stamp = None
        for stamp, sensor, index in schedule:
            if stamp != last_pose_stamp:
                yield EgoPoseEvent(stamp, self.ego_pose_at(stamp))
                last_pose_stamp = stamp
            yield self.render_camera(k, index) if sensor == _CAMERA else self.render_sweep(index)
