"""`simdistill synth`: stream synthetic scenes into rosbag2 files and a nuScenes-format dataset.

Each scene is rendered lazily and written event by event (no scene is held in memory). Bags are written
atomically by the bag writer; the tables are written last and atomically, so a dataset that has tables is
complete. See docs/design.md for the layout and the sensor timing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from simdistill_ros.dataset.nuscenes_tables import NuScenesTableWriter, SampleInput, SensorDataInput
from simdistill_ros.errors import UserError
from simdistill_ros.frames.bag_writer import SensorBagWriter
from simdistill_ros.frames.topics import TopicNames
from simdistill_ros.geometry import CameraRig, nuscenes_like_rig
from simdistill_ros.synth.scenario import CameraEvent, EgoPoseEvent, LidarEvent, SampleEvent, SceneRecording
from simdistill_ros.synth.world import WorldConfig, generate_scene, world_options

VERSION = "v1.0-synth"


def parse_image_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--image-size must look like 224x400 (HxW), got {text!r}") from None
    if h < 16 or w < 16:
        raise UserError(f"--image-size {text} is too small (at least 16x16)")
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
) -> dict:
    """Render ``scenes`` scenes into ``out``; returns a summary (frames, seconds per frame). ``world`` names
    a version of the synthetic world (``synth.world.WORLDS``)."""
    options = world_options(world)

    rig = rig or nuscenes_like_rig(*image_size)
    topics = TopicNames() if compressed else TopicNames.raw()
    tables = NuScenesTableWriter(out, version=VERSION)
    (out / "bags").mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    t0 = time.perf_counter()
    n_frames = 0
    calibration = {c.name: (c.cam_to_base, c.intrinsics, "camera", c.width, c.height) for c in rig.cameras}
    calibration[rig.lidar_frame] = (rig.lidar_to_base, None, "lidar")
    bar = tqdm(total=scenes * frames_per_scene, desc="synth frames", disable=not progress, unit="frame")
    for i in range(scenes):
        name = f"scene-{seed:04d}-{i:04d}"
        rng = np.random.default_rng([seed, i])
        # Distinct names and start stamps per scene: instance ids and stamps must not collide across scenes.
        start = 1_700_000_000_000_000_000 + ((seed % 1000) * 1000 + i % 1000) * 100_000_000_000
        config = WorldConfig(
            duration_s=frames_per_scene / 12.0 + 0.25, name=name, start_stamp_ns=start, **options
        )
        scene = generate_scene(rng, config)
        recording = SceneRecording(scene, rig, num_frames=frames_per_scene)
        sample_events: list[SampleEvent] = []
        bag_path = out / "bags" / name
        with SensorBagWriter(bag_path, storage=storage, topics=topics, compressed_images=compressed) as bag:
            static = [(rig.base_frame, c.frame_id, c.cam_to_base) for c in rig.cameras]
            static.append((rig.base_frame, rig.lidar_frame, rig.lidar_to_base))
            bag.write_tf_static(static, recording.start_stamp_ns)
            for ev in recording.events():
                if isinstance(ev, SampleEvent):
                    sample_events.append(ev)
                    bar.update(1)
                    n_frames += 1
                elif isinstance(ev, EgoPoseEvent):
                    bag.write_tf(ev.stamp_ns, "map", rig.base_frame, ev.pose)
                elif isinstance(ev, CameraEvent):
                    bag.write_image(ev.name, ev.stamp_ns, ev.rgb)
                    bag.write_camera_info(ev.camera, ev.stamp_ns)
                elif isinstance(ev, LidarEvent) and with_lidar:
                    bag.write_points(ev.stamp_ns, ev.points, frame_id=ev.frame_id)
        samples = [_sample_input(ev, recording, topics, name) for ev in sample_events]
        tables.add_scene(
            name, f"log-{name}", calibration, samples, description=json.dumps(recording.describe())
        )
        names.append(name)
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
        "seconds": round(elapsed, 2),
        "seconds_per_frame": round(elapsed / max(n_frames, 1), 3),
    }
    (out / "synth.json").write_text(json.dumps(summary, indent=2))
    return summary


def _sample_input(ev, recording, topics, scene_name: str):
    """The nuScenes sample (annotations + one sample_data per sensor) of a recorded frame."""
    rig = recording.rig
    lidar_us = ev.lidar_stamp_ns // 1000
    data = [
        SensorDataInput(
            rig.lidar_frame,
            lidar_us,
            recording.ego_pose_at(ev.lidar_stamp_ns),
            filename=f"bags/{scene_name}#{topics.lidar}@{lidar_us}",
        )
    ]
    for cam in rig.cameras:
        st = ev.camera_stamps_ns[cam.name]
        data.append(
            SensorDataInput(
                cam.name,
                st // 1000,
                recording.ego_pose_at(st),
                filename=f"bags/{scene_name}#{topics.image(cam.name)}@{st // 1000}",
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
