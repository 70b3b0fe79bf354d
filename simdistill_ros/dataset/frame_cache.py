"""Labelled frames of a dataset split, decoded once from the bags into per-scene safetensors files.

Training reads every frame many times; decoding jpeg, parsing PointCloud2 and composing tf once per scene
and then reading memory-mapped arrays keeps the data path cheap (see ``make bench``). Each frame is
matched to its ground-truth sample by stamp. A cache file is written atomically and keyed by the bag's
size and mtime, so a changed bag is re-read.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
from tqdm import tqdm

from simdistill_ros.dataset.ground_truth import GroundTruthIndex
from simdistill_ros.dataset.nuscenes_tables import load_split_samples
from simdistill_ros.frames.assembly import FrameReader
from simdistill_ros.frames.sensors import SensorConfig
from simdistill_ros.geometry import boxes_to_array

CACHE_VERSION = 1


@dataclass
class CachedScene:
    """All frames of one scene: arrays indexed by frame, ragged arrays by offsets."""

    scene: str
    camera_names: list[str]
    tokens: list[str]
    stamps_ns: np.ndarray  # (F,)
    images: np.ndarray  # (F, N, H, W, 3) uint8
    intrinsics: np.ndarray  # (F, N, 3, 3)
    cam_to_base: np.ndarray  # (F, N, 4, 4)
    points: np.ndarray  # (P, 4) float32, base frame
    point_offsets: np.ndarray  # (F + 1,)
    boxes: np.ndarray  # (M, 9)
    labels: np.ndarray  # (M,)
    box_offsets: np.ndarray  # (F + 1,)

    def __len__(self) -> int:
        return len(self.tokens)

    def frame_points(self, i: int) -> np.ndarray:
        return self.points[self.point_offsets[i] : self.point_offsets[i + 1]]

    def frame_boxes(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.box_offsets[i], self.box_offsets[i + 1]
        return self.boxes[a:b], self.labels[a:b]


def _bag_key(bag: Path, sensors: SensorConfig | None = None) -> str:
    """The bag's files (name, size, mtime) and the sensor configuration it was read with."""
    files = sorted(p for p in bag.rglob("*") if p.is_file())
    key: list = [[p.name, p.stat().st_size, int(p.stat().st_mtime)] for p in files]
    if sensors is not None and sensors != SensorConfig():
        key.append(repr(sensors))
    return json.dumps(key)


def build_scene_cache(
    bag: Path, samples: list, out: Path, sensors: SensorConfig | None = None
) -> CachedScene:
    """Read one scene's bag, match frames to ``samples`` (from ``load_split_samples``) and write ``out``."""
    ground_truth = GroundTruthIndex(samples)
    rows = []
    reader = FrameReader(bag, sensors, require_lidar=True)
    for frame in reader:
        sample = ground_truth.lookup(frame.stamp_ns)
        if sample is not None:
            rows.append((sample, frame))
    if not rows:
        raise ValueError(f"{bag}: no frame matches a ground-truth sample ({reader.stats})")
    names = rows[0][1].rig.names
    images, ks, extr, pts, boxes, labels, tokens, st = [], [], [], [], [], [], [], []
    for sample, frame in rows:
        if frame.rig.names != names:
            raise ValueError(f"{bag}: camera set changed within the scene ({frame.rig.names} vs {names})")
        images.append(np.stack([frame.images[n] for n in names]))
        ks.append(frame.rig.intrinsics_array())
        extr.append(frame.rig.cam_to_base_array())
        pts.append(frame.points.astype(np.float32))
        b, lbl = boxes_to_array(sample.boxes)
        boxes.append(b)
        labels.append(lbl)
        tokens.append(sample.token)
        st.append(frame.stamp_ns)
    tensors = {
        "stamps_ns": np.array(st, np.int64),
        "images": np.stack(images),
        "intrinsics": np.stack(ks).astype(np.float32),
        "cam_to_base": np.stack(extr).astype(np.float32),
        "points": np.concatenate(pts).astype(np.float32),
        "point_offsets": np.cumsum([0] + [len(p) for p in pts]).astype(np.int64),
        "boxes": np.concatenate(boxes).astype(np.float32).reshape(-1, 9),
        "labels": np.concatenate(labels).astype(np.int64),
        "box_offsets": np.cumsum([0] + [len(b) for b in boxes]).astype(np.int64),
    }
    meta = {
        "version": str(CACHE_VERSION),
        "scene": bag.name,
        "camera_names": json.dumps(names),
        "tokens": json.dumps(tokens),
        "bag_key": _bag_key(bag, sensors),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".partial")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return _from_tensors(tensors, meta)


def _from_tensors(t: dict, meta: dict) -> CachedScene:
    return CachedScene(
        scene=meta["scene"],
        camera_names=json.loads(meta["camera_names"]),
        tokens=json.loads(meta["tokens"]),
        **{
            k: t[k]
            for k in (
                "stamps_ns",
                "images",
                "intrinsics",
                "cam_to_base",
                "points",
                "point_offsets",
                "boxes",
                "labels",
                "box_offsets",
            )
        },
    )


def load_scene_cache(path: Path, bag: Path, sensors: SensorConfig | None = None) -> CachedScene | None:
    """The cached scene, or None when missing, stale or unreadable (it is then rebuilt)."""
    if not path.exists():
        return None
    try:
        with safe_open(str(path), "np") as f:
            meta = f.metadata()
        if meta.get("version") != str(CACHE_VERSION) or meta.get("bag_key") != _bag_key(bag, sensors):
            return None
        return _from_tensors(load_file(str(path)), meta)
    except Exception:  # a corrupt cache is rebuilt, never trusted
        return None


def load_split_frames(
    dataroot: str | Path, split: str, version: str = "v1.0-synth", sensors: SensorConfig | None = None
) -> list[CachedScene]:
    """Every labelled frame of ``split``, building missing or stale scene caches under DATAROOT/cache.
    ``sensors``: how the bags are read (default: their recognised layout, cameras in nuScenes order)."""
    dataroot = Path(dataroot)
    samples = load_split_samples(dataroot, split, version=version)
    by_scene: dict[str, list] = {}
    for s in samples:
        by_scene.setdefault(s.scene_name, []).append(s)
    scenes = []
    for name in tqdm(sorted(by_scene), desc=f"frames of {split}", leave=False):
        bag = dataroot / "bags" / name
        if not bag.exists():
            raise FileNotFoundError(f"scene {name!r} of split {split!r} has no bag at {bag}")
        path = dataroot / "cache" / f"frames-v{CACHE_VERSION}" / f"{name}.safetensors"
        scene = load_scene_cache(path, bag, sensors) or build_scene_cache(bag, by_scene[name], path, sensors)
        scenes.append(scene)
    return scenes
