"""`simdistill synth`: stream synthetic scenes into rosbag2 files and a nuScenes-format dataroot.

Each scene is rendered lazily and written event by event (no scene is held in memory): into its bag, and as
nuScenes sensor files (``samples/CAM_*/*.jpg``; ``samples/LIDAR_TOP/*.pcd.bin`` for the LiDAR key frames,
``sweeps/LIDAR_TOP/*.pcd.bin`` for the sweeps between them). Every camera cycle is a sample, so there are no
camera sweeps. Bags and sensor files are written atomically; the tables are written last and atomically,
so a dataset that has tables is complete. See docs/design.md for the layout and the sensor timing.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from simdistill_ros.dataset.nuscenes_tables import NuScenesTableWriter, SampleInput, SensorDataInput
from simdistill_ros.errors import UserError
from simdistill_ros.frames.bag_writer import SensorBagWriter
from simdistill_ros.frames.images import encode_jpeg
from simdistill_ros.frames.topics import TopicNames
from simdistill_ros.geometry import CameraRig, nuscenes_like_rig
from simdistill_ros.synth.render import HDL32_ELEVATION_DEG
from simdistill_ros.synth.scenario import CameraEvent, EgoPoseEvent, LidarEvent, SampleEvent, SceneRecording
from simdistill_ros.synth.world import WorldConfig, generate_scene, world_options

VERSION = "v1.0-synth"
JPEG_QUALITY = 90  # the bag writer's: a sample's jpg holds the same bytes as the bag's CompressedImage


def sensor_filename(folder: str, scene: str, channel: str, timestamp_us: int) -> str:
    """Dataroot-relative path of one sensor file, named as nuScenes names them (``<log>__<channel>__<us>``);
    ``folder`` is ``samples`` (key frames) or ``sweeps``."""
    ext = "jpg" if channel.startswith("CAM") else "pcd.bin"
    return f"{folder}/{channel}/{scene}__{channel}__{timestamp_us}.{ext}"


def ring_index(points: np.ndarray, beams: int = 32, elevation_deg=HDL32_ELEVATION_DEG) -> np.ndarray:
    """(N,) beam number of LiDAR-frame points: the beam whose elevation is nearest to the point's (range
    noise moves a point along its beam, so its elevation is the beam's)."""
    elevation = np.rad2deg(np.arctan2(points[:, 2], np.hypot(points[:, 0], points[:, 1])))
    beam_elevation = np.linspace(elevation_deg[0], elevation_deg[1], beams)
    return np.abs(elevation[:, None] - beam_elevation[None]).argmin(1)


def pcd_bin(points: np.ndarray, rings: np.ndarray) -> bytes:
    """nuScenes' LiDAR file: five float32 per point (x, y, z, intensity, ring index), sensor frame."""
    return np.concatenate([points[:, :4], rings[:, None]], 1).astype(np.float32).tobytes()


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def parse_render_size(text: str) -> tuple[int, int]:
    """``--render-size HxW``: the size the synthetic cameras render their images at (not the model input)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--render-size must look like 224x400 (HxW), got {text!r}") from None
    if h < 16 or w < 16:
        raise UserError(f"--render-size {text} is too small (at least 16x16)")
    return h, w


def split_scenes(names: list[str], val_fraction: float) -> dict[str, list[str]]:
    """Last ``val_fraction`` of the scenes are val: every scene at 1.0 (a test-only world), otherwise at
    least one of each split when there are two or more scenes."""
    n_val = int(round(len(names) * val_fraction))
    if val_fraction >= 1.0:
        n_val = len(names)
    elif len(names) >= 2:
        n_val = min(max(n_val, 1), len(names) - 1)
    else:
        n_val = 0
    return {"train": names[: len(names) - n_val], "val": names[len(names) - n_val :]}


def synthesize(
    out: Path,
    scenes: int,
    frames_per_scene: int,
    seed: int,
    storage: str = "mcap",
    image_size: tuple[int, int] = (224, 400),
    compressed: bool = True,
    with_lidar: bool = True,
    val_fraction: float = 0.5,
    rig: CameraRig | None = None,
    progress: bool = True,
    world: str = "v1",
    workers: int = 1,
) -> dict:
    """Render ``scenes`` scenes into ``out``; returns a summary (frames, seconds per frame). ``world`` names
    a version of the synthetic world (``synth.world.WORLDS``). ``workers`` > 1 renders scenes in that many
    processes; every scene draws from its own generator, so the files are the same bytes either way."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    rig = rig or nuscenes_like_rig(*image_size)
    job = _SceneJob(
        out=out,
        seed=seed,
        frames_per_scene=frames_per_scene,
        storage=storage,
        compressed=compressed,
        with_lidar=with_lidar,
        rig=rig,
        options=world_options(world),
    )
    tables = NuScenesTableWriter(out, version=VERSION)
    (out / "bags").mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    t0 = time.perf_counter()
    n_frames = 0
    calibration = {c.name: (c.cam_to_base, c.intrinsics, "camera", c.width, c.height) for c in rig.cameras}
    calibration[rig.lidar_frame] = (rig.lidar_to_base, None, "lidar")
    bar = tqdm(total=scenes * frames_per_scene, desc="synth frames", disable=not progress, unit="frame")
    with ExitStack() as stack:
        if workers > 1 and scenes > 1:
            # spawn, not fork: a forked child inherits the caller's torch OpenMP threads broken
            pool = ProcessPoolExecutor(min(workers, scenes), mp_context=multiprocessing.get_context("spawn"))
            # a failed scene (or ^C) stops the queued ones instead of waiting for them to render
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
            rendered = pool.map(job.render, range(scenes))
        else:
            rendered = map(job.render, range(scenes))
        # in scene order whatever finishes first: the tables list scenes as the serial run does
        for scene in rendered:
            tables.add_scene(
                scene.name, f"log-{scene.name}", calibration, scene.samples, description=scene.description
            )
            names.append(scene.name)
            n_frames += scene.frames
            bar.update(scene.frames)
    bar.close()
    elapsed = time.perf_counter() - t0
    split = split_scenes(names, val_fraction)
    tables.write(split, overwrite=True)
    summary = {
        "version": VERSION,
        "seed": seed,
        "world": world,
        "scenes": scenes,
        "frames_per_scene": frames_per_scene,
        "frames": n_frames,
        "storage": storage,
        "image_size": list(image_size),
        "compressed_images": compressed,
        "lidar": with_lidar,
        "cameras": rig.names,
        "split": split,
        "workers": workers,
        "seconds": round(elapsed, 2),
        "seconds_per_frame": round(elapsed / max(n_frames, 1), 3),
    }
    (out / "synth.json").write_text(json.dumps(summary, indent=2))
    return summary


@dataclass(frozen=True)
class _RenderedScene:
    """What the tables need of one written scene."""

    name: str
    samples: list[SampleInput]
    description: str
    frames: int


@dataclass(frozen=True)
class _SceneJob:
    """Renders scene ``i`` of a world into its bag and sensor files (picklable: runs in worker processes)."""

    out: Path
    seed: int
    frames_per_scene: int
    storage: str
    compressed: bool
    with_lidar: bool
    rig: CameraRig
    options: dict

    def render(self, i: int) -> _RenderedScene:
        out, seed, rig = self.out, self.seed, self.rig
        name = f"scene-{seed:04d}-{i:04d}"
        rng = np.random.default_rng([seed, i])
        # Distinct names and start stamps per scene: instance ids and stamps must not collide across scenes.
        start = 1_700_000_000_000_000_000 + ((seed % 1000) * 1000 + i % 1000) * 100_000_000_000
        config = WorldConfig(
            duration_s=self.frames_per_scene / 12.0 + 0.25, name=name, start_stamp_ns=start, **self.options
        )
        scene = generate_scene(rng, config)
        recording = SceneRecording(scene, rig, num_frames=self.frames_per_scene)
        tl = recording.timeline
        key_sweeps = {tl.nearest_sweep(tl.cycle_ns(k)) for k in range(recording.num_frames)}
        beams = recording.lidar_options.get("beams", 32)
        elevation = recording.lidar_options.get("elevation_deg", HDL32_ELEVATION_DEG)
        topics = TopicNames() if self.compressed else TopicNames.raw()
        sample_events: list[SampleEvent] = []
        sweeps: list[list[int]] = []  # per sample: stamps (ns) of the LiDAR sweeps that are not key frames
        bag_path = out / "bags" / name
        with SensorBagWriter(
            bag_path, storage=self.storage, topics=topics, compressed_images=self.compressed
        ) as bag:
            static = [(rig.base_frame, c.frame_id, c.cam_to_base) for c in rig.cameras]
            static.append((rig.base_frame, rig.lidar_frame, rig.lidar_to_base))
            bag.write_tf_static(static, recording.start_stamp_ns)
            for ev in recording.events():
                if isinstance(ev, SampleEvent):
                    sample_events.append(ev)
                    sweeps.append([])
                elif isinstance(ev, EgoPoseEvent):
                    bag.write_tf(ev.stamp_ns, "map", rig.base_frame, ev.pose)
                elif isinstance(ev, CameraEvent):
                    bag.write_image(ev.name, ev.stamp_ns, ev.rgb)
                    bag.write_camera_info(ev.camera, ev.stamp_ns)
                    path = sensor_filename("samples", name, ev.name, ev.stamp_ns // 1000)
                    _write_file(out / path, encode_jpeg(ev.rgb, JPEG_QUALITY).tobytes())
                elif isinstance(ev, LidarEvent):
                    if self.with_lidar:
                        bag.write_points(ev.stamp_ns, ev.points, frame_id=ev.frame_id)
                    # The dataroot always has the LiDAR: nuScenes tables need a LIDAR_TOP key frame.
                    key = ev.sweep_index in key_sweeps
                    if not key:
                        sweeps[-1].append(ev.stamp_ns)
                    path = sensor_filename(
                        "samples" if key else "sweeps", name, ev.frame_id, ev.stamp_ns // 1000
                    )
                    _write_file(out / path, pcd_bin(ev.points, ring_index(ev.points, beams, elevation)))
        samples = [
            _sample_input(ev, recording, name, swept) for ev, swept in zip(sample_events, sweeps, strict=True)
        ]
        return _RenderedScene(name, samples, json.dumps(recording.describe()), len(sample_events))


def _sample_input(ev, recording, scene_name: str, sweep_stamps_ns: list[int]):
    """The nuScenes sample (annotations + one sample_data per sensor file) of a recorded frame: its key
    frames and the LiDAR sweeps recorded within its camera cycle."""
    rig = recording.rig
    lidar = rig.lidar_frame
    lidar_us = ev.lidar_stamp_ns // 1000
    data = [
        SensorDataInput(
            lidar,
            lidar_us,
            recording.ego_pose_at(ev.lidar_stamp_ns),
            filename=sensor_filename("samples", scene_name, lidar, lidar_us),
        )
    ]
    for st in sweep_stamps_ns:
        us = st // 1000
        data.append(
            SensorDataInput(
                lidar,
                us,
                recording.ego_pose_at(st),
                filename=sensor_filename("sweeps", scene_name, lidar, us),
                is_key_frame=False,
            )
        )
    for cam in rig.cameras:
        st = ev.camera_stamps_ns[cam.name]
        data.append(
            SensorDataInput(
                cam.name,
                st // 1000,
                recording.ego_pose_at(st),
                filename=sensor_filename("samples", scene_name, cam.name, st // 1000),
                width=cam.width,
                height=cam.height,
            )
        )
    return SampleInput(
        timestamp_us=ev.stamp_ns // 1000,
        ego_pose=ev.ego_pose,
        sensor_data=data,
        boxes=ev.boxes,
        num_lidar_pts=ev.num_lidar_pts,
        attributes=ev.attributes,
    )
