"""Which frames a command reads: the bags (decoded into the frame cache) or the dataroot's sensor files."""

from __future__ import annotations

from pathlib import Path

from simdistill_ros.dataset.dataroot import DatarootFrames
from simdistill_ros.dataset.frame_cache import load_split_frames
from simdistill_ros.dataset.frame_source import CachedFrames, FrameSource
from simdistill_ros.dataset.nuscenes_tables import DEFAULT_VERSION
from simdistill_ros.errors import UserError
from simdistill_ros.frames.sensors import SensorConfig

FRAME_SOURCES = ("auto", "bags", "samples")


def frames_source_of(dataroot: str | Path, source: str = "auto") -> str:
    """``bags`` or ``samples``: ``auto`` reads the bags when the dataroot has a ``bags/`` folder (the
    synthetic world), else the nuScenes sensor files under ``samples/`` and ``sweeps/``."""
    if source not in FRAME_SOURCES:
        raise UserError(f"frame source {source!r} is not one of {', '.join(FRAME_SOURCES)}")
    if source == "auto":
        return "bags" if (Path(dataroot) / "bags").is_dir() else "samples"
    return source


def open_split_frames(
    dataroot: str | Path,
    split: str,
    version: str = DEFAULT_VERSION,
    sensors: SensorConfig | None = None,
    source: str = "auto",
    lidar_sweeps: int = 1,
    with_points: bool = True,
) -> FrameSource:
    """The labelled frames of ``split`` (see :func:`frames_source_of` for ``source``). ``sensors`` tells how
    bags are read; ``lidar_sweeps`` how many LiDAR sweeps a dataroot frame accumulates (1: the key frame
    alone, x, y, z, intensity; more: earlier sweeps motion-compensated into it, with a time-lag column);
    ``with_points=False`` reads no LiDAR file (camera-only models)."""
    if frames_source_of(dataroot, source) == "bags":
        if lidar_sweeps != 1:
            raise UserError(
                f"{lidar_sweeps} LiDAR sweeps need the dataroot's sweeps/: read it with --frames-from samples"
            )
        return CachedFrames(load_split_frames(dataroot, split, version=version, sensors=sensors))
    return DatarootFrames(dataroot, version, split, lidar_sweeps=lidar_sweeps, with_points=with_points)
