"""A nuScenes dataroot (``samples/``, ``sweeps/``, ``<version>/*.json``) as labelled frames, through the
official devkit (``NuScenes(version, dataroot)``): v1.0-mini, v1.0-trainval, or the synthetic world's
v1.0-synth that ``simdistill synth`` writes next to its bags.

Per sample: the key-frame image of every camera, calibrated and placed with its own ego pose; the LiDAR key
frame plus ``lidar_sweeps - 1`` earlier sweeps, each moved into the base frame at the sample time with its
own ego pose (motion compensation), with the time lag (s) as a fifth column when sweeps are accumulated; the
ground truth of ``load_split_samples`` (the one reading of annotations, by sample token).

Memory stays bounded whatever the split's size: the index keeps file names, matrices and boxes, and a frame
reads its jpeg and pcd.bin files when it is asked for. Opening checks every file the split needs (exists,
pcd.bin a whole number of points), so a bad dataset fails before any training step, in one line naming the
file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simdistill_ros.dataset.frame_source import FrameSource, LabelledFrame
from simdistill_ros.dataset.nuscenes_tables import (
    LIDAR_CHANNEL,
    TABLES,
    load_split_samples,
    split_scene_names,
)
from simdistill_ros.errors import UserError
from simdistill_ros.frames.images import ImageDecodeError, decode_compressed
from simdistill_ros.geometry import Transform, boxes_to_array
from simdistill_ros.geometry.camera import NUSCENES_CAMERAS

PCD_FLOATS = 5  # a nuScenes LiDAR file: x, y, z, intensity, ring index (float32), in the sensor frame
NUSCENES_VERSIONS = ("v1.0-mini", "v1.0-trainval", "v1.0-synth")


class DatasetError(UserError, ValueError):
    """A dataroot that cannot be read as nuScenes; the message names the file."""


def dataroot_versions(dataroot: str | Path) -> list[str]:
    """The version folders of a dataroot (those holding a sample.json)."""
    root = Path(dataroot)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "sample.json").is_file())


def open_nuscenes(dataroot: str | Path, version: str):
    """The devkit's ``NuScenes`` of ``dataroot``/``version``; DatasetError naming what is missing."""
    root = Path(dataroot)
    table_root = root / version
    if not table_root.is_dir():
        have = dataroot_versions(root)
        raise DatasetError(
            f"unknown version {version!r}: {table_root} does not exist (the dataroot has "
            f"{', '.join(have) if have else 'no version folder'}; nuScenes' are "
            f"{', '.join(NUSCENES_VERSIONS)})"
        )
    for name in TABLES:
        if not (table_root / f"{name}.json").is_file():
            raise DatasetError(
                f"{table_root / (name + '.json')} is missing (a nuScenes version has 13 tables)"
            )
    from nuscenes.nuscenes import NuScenes

    try:
        return NuScenes(version=version, dataroot=str(root), verbose=False)
    except Exception as exc:  # the devkit asserts and raises KeyError on broken tables; name the folder
        raise DatasetError(
            f"the nuScenes devkit cannot load {table_root}: {type(exc).__name__}: {exc}"
        ) from None


@dataclass
class _Sweep:
    filename: str
    to_base: np.ndarray  # (4, 4) sensor frame -> base frame at the sample time
    time_lag: float  # seconds before the key frame


@dataclass
class _Sample:
    token: str
    key: str
    images: list[str]  # filenames, camera order
    intrinsics: np.ndarray  # (N, 3, 3) float32
    cam_to_base: np.ndarray  # (N, 4, 4) float32
    sweeps: list[_Sweep]  # key frame first
    boxes: np.ndarray
    labels: np.ndarray


def _pose(record: dict) -> Transform:
    return Transform.from_quat(record["translation"], record["rotation"])


class DatarootFrames(FrameSource):
    """The labelled frames of ``split`` in ``dataroot``/``version`` (a ``FrameSource``).

    ``split``: a key of ``<version>/splits.json``, else one of nuScenes' splits (mini_train, mini_val, train,
    val, ...) restricted to the version's scenes. ``lidar_sweeps``: LiDAR sweeps per frame (key frame
    included; fewer when a scene starts). ``with_points=False`` reads no LiDAR (camera-only models)."""

    def __init__(
        self,
        dataroot: str | Path,
        version: str,
        split: str,
        lidar_sweeps: int = 1,
        with_points: bool = True,
    ) -> None:
        if lidar_sweeps < 1:
            raise DatasetError(f"lidar_sweeps must be at least 1, got {lidar_sweeps}")
        self.dataroot = Path(dataroot)
        self.version = version
        self.split = split
        self.lidar_sweeps = int(lidar_sweeps)
        self.with_points = with_points
        nusc = open_nuscenes(self.dataroot, version)
        try:
            scenes = split_scene_names(self.dataroot, split, version, present=[s["name"] for s in nusc.scene])
        except KeyError as err:
            raise DatasetError(err.args[0]) from None
        if not scenes:
            raise DatasetError(f"split {split!r} has no scene in {self.dataroot / version}")
        try:
            labels = load_split_samples(
                self.dataroot, split, version, tables=lambda name: getattr(nusc, name), scene_names=scenes
            )
        except (KeyError, ValueError) as err:
            raise DatasetError(f"{self.dataroot / version}: {err}") from None
        present = {s["channel"] for s in nusc.sensor if s["modality"] == "camera"}
        order = [name for name, *_ in NUSCENES_CAMERAS]
        self.camera_names = [c for c in order if c in present] + sorted(present - set(order))
        self.samples = [self._index(nusc, s) for s in labels]
        self._check_files()

    # index ------------------------------------------------------------------------------------------------
    def _index(self, nusc, labels) -> _Sample:
        sample = nusc.get("sample", labels.token)
        to_base = labels.ego_pose.inverse()  # map -> base frame at the sample time
        images, ks, extr = [], [], []
        for channel in self.camera_names:
            token = sample["data"].get(channel)
            if token is None:
                raise DatasetError(
                    f"{self.dataroot / self.version}/sample_data.json: sample {labels.token} of scene "
                    f"{labels.scene_name!r} has no {channel} key frame"
                )
            sd = nusc.get("sample_data", token)
            cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
            place = to_base @ _pose(nusc.get("ego_pose", sd["ego_pose_token"])) @ _pose(cs)
            images.append(sd["filename"])
            ks.append(np.asarray(cs["camera_intrinsic"], np.float32).reshape(3, 3))
            extr.append(place.matrix().astype(np.float32))
        sweeps: list[_Sweep] = []
        if self.with_points:
            token = sample["data"].get(LIDAR_CHANNEL)
            if token is None:
                raise DatasetError(
                    f"sample {labels.token} of scene {labels.scene_name!r} has no {LIDAR_CHANNEL}"
                )
            key_time = None
            while token and len(sweeps) < self.lidar_sweeps:
                sd = nusc.get("sample_data", token)
                key_time = sd["timestamp"] if key_time is None else key_time
                cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
                place = to_base @ _pose(nusc.get("ego_pose", sd["ego_pose_token"])) @ _pose(cs)
                lag = 1e-6 * (key_time - sd["timestamp"])
                sweeps.append(_Sweep(sd["filename"], place.matrix(), lag))
                token = sd["prev"]
        boxes, box_labels = boxes_to_array(labels.boxes)
        return _Sample(
            token=labels.token,
            key=f"{labels.scene_name}/{int(labels.timestamp_us) * 1000}",
            images=images,
            intrinsics=np.stack(ks),
            cam_to_base=np.stack(extr),
            sweeps=sweeps,
            boxes=boxes,
            labels=box_labels,
        )

    def _check_files(self) -> None:
        """Every file the split reads exists; every pcd.bin holds whole points."""
        table = self.dataroot / self.version / "sample_data.json"
        for s in self.samples:
            for name in s.images + [w.filename for w in s.sweeps]:
                path = self.dataroot / name
                try:
                    size = os.stat(path).st_size
                except OSError:
                    raise DatasetError(
                        f"{table} names {name}, which does not exist under {self.dataroot}"
                    ) from None
                if name.endswith(".pcd.bin"):
                    _check_pcd_size(path, size)

    # FrameSource ------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> LabelledFrame:
        s = self.samples[i]
        images = [read_image(self.dataroot / name) for name in s.images]
        shapes = {im.shape for im in images}
        if len(shapes) != 1:
            raise DatasetError(
                f"the images of sample {s.token} differ in size ({sorted(shapes)}): {s.images}"
            )
        return LabelledFrame(
            token=s.token,
            key=s.key,
            images=np.stack(images),
            intrinsics=s.intrinsics,
            cam_to_base=s.cam_to_base,
            points=self._points(s) if self.with_points else np.zeros((0, 4), np.float32),
            boxes=s.boxes,
            labels=s.labels,
        )

    def _points(self, s: _Sample) -> np.ndarray:
        parts = []
        for w in s.sweeps:
            raw = read_pcd_bin(self.dataroot / w.filename)
            xyz = raw[:, :3].astype(np.float64) @ w.to_base[:3, :3].T + w.to_base[:3, 3]
            cols = [xyz.astype(np.float32), raw[:, 3:4]]
            if self.lidar_sweeps > 1:
                cols.append(np.full((len(raw), 1), w.time_lag, np.float32))
            parts.append(np.concatenate(cols, 1))
        return (
            np.concatenate(parts) if parts else np.zeros((0, 5 if self.lidar_sweeps > 1 else 4), np.float32)
        )


def _check_pcd_size(path: Path, size: int) -> None:
    if size % (4 * PCD_FLOATS):
        raise DatasetError(
            f"{path} is truncated: {size} bytes is not a whole number of points ({PCD_FLOATS} float32 each)"
        )


def read_pcd_bin(path: Path) -> np.ndarray:
    """(P, 5) float32 of a nuScenes LiDAR file (x, y, z, intensity, ring index; sensor frame)."""
    try:
        data = np.fromfile(path, np.float32)
    except OSError as err:
        raise DatasetError(f"{path} cannot be read: {err}") from None
    _check_pcd_size(path, data.nbytes)
    return data.reshape(-1, PCD_FLOATS)


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a jpg (or png) sensor file."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DatasetError(f"{path} cannot be read: {err}") from None
    try:
        return decode_compressed("jpeg", np.frombuffer(data, np.uint8))
    except ImageDecodeError as err:
        raise DatasetError(f"{path}: {err}") from None
