"""nuScenes-format tables (``<dataroot>/<version>/*.json``) for the synthetic world, and a devkit-free reader.

:class:`NuScenesTableWriter` collects scenes (calibration, per-sample sensor records with their own stamps
and ego poses, boxes in the base frame) and writes the 13 nuScenes tables plus ``splits.json`` and the map
file the devkit wants, atomically: everything goes into a hidden temporary folder that is renamed into
place at the end, so a half-written dataset never looks complete.

:func:`load_split_samples` reads the labels of one split back (boxes in the base frame) without the devkit.

Conventions of the tables written here (see docs/design.md):
- tokens are deterministic 32-hex-digit digests of (scene name, role, ids), so a rerun gives equal tables;
- the sample's annotations are the world at the sample timestamp, expressed with the ego pose at that
  instant (``SampleInput.ego_pose``). When no key-frame sample_data is stamped at the sample time, that
  pose is stored as an extra ego_pose record whose token is ``sample_pose_token(sample_token)``;
- the schema has no velocity field: the devkit estimates GT velocities from the annotation chain
  (``NuScenes.box_velocity``), so the reader does the same and ``Box3D.velocity`` given to the writer is
  not stored;
- nuScenes' own split names (train, val, ...) are hard-wired in the devkit to the 1000 official scenes,
  so splits.json also carries every such split under :func:`eval_split_name` (``custom_val``, ...), the
  name the evaluation hands to the devkit.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simdistill_ros.classes import CATEGORY_NAME, DEFAULT_ATTRIBUTE, NUSCENES_CLASSES
from simdistill_ros.geometry import Box3D, Transform

DEFAULT_VERSION = "v1.0-synth"
MAP_FILENAME = "maps/synth.png"
LIDAR_CHANNEL = "LIDAR_TOP"  # the devkit measures ego distances from this channel's key-frame ego pose
TABLES = (
    "attribute",
    "calibrated_sensor",
    "category",
    "ego_pose",
    "instance",
    "log",
    "map",
    "sample",
    "sample_annotation",
    "sample_data",
    "scene",
    "sensor",
    "visibility",
)
# The devkit maps these split names to the official nuScenes scenes (nuscenes/utils/splits.py).
PREDEFINED_SPLITS = frozenset(
    {"train", "val", "test", "mini_train", "mini_val", "train_detect", "train_track"}
)
EVAL_SPLIT_PREFIX = "custom_"

ATTRIBUTES: dict[str, str] = {
    "vehicle.moving": "Vehicle is moving.",
    "vehicle.stopped": "Vehicle, with a driver/rider in/on it, is currently stationary but has an intent to "
    "move.",
    "vehicle.parked": "Vehicle is stationary (usually for longer duration) with no immediate intent to move.",
    "cycle.with_rider": "There is a rider on the bicycle or motorcycle.",
    "cycle.without_rider": "There is NO rider on the bicycle or motorcycle.",
    "pedestrian.sitting_lying_down": "The human is sitting or lying down.",
    "pedestrian.standing": "The human is standing.",
    "pedestrian.moving": "The human is moving.",
}
VISIBILITY: dict[str, tuple[str, str]] = {
    "1": ("v0-40", "visibility of whole object is between 0 and 40%"),
    "2": ("v40-60", "visibility of whole object is between 40 and 60%"),
    "3": ("v60-80", "visibility of whole object is between 60 and 80%"),
    "4": ("v80-100", "visibility of whole object is between 80 and 100%"),
}
MODALITIES = ("camera", "lidar", "radar")
FILEFORMAT = {"camera": "jpg", "lidar": "pcd", "radar": "pcd"}

# Category -> detection class, as the devkit's category_to_detection_name does, so the reader also
# understands tables written by other tools (real nuScenes).
_DEVKIT_CATEGORY_TO_CLASS = {
    "movable_object.barrier": "barrier",
    "vehicle.bicycle": "bicycle",
    "vehicle.bus.bendy": "bus",
    "vehicle.bus.rigid": "bus",
    "vehicle.car": "car",
    "vehicle.construction": "construction_vehicle",
    "vehicle.motorcycle": "motorcycle",
    "human.pedestrian.adult": "pedestrian",
    "human.pedestrian.child": "pedestrian",
    "human.pedestrian.construction_worker": "pedestrian",
    "human.pedestrian.police_officer": "pedestrian",
    "movable_object.trafficcone": "traffic_cone",
    "vehicle.trailer": "trailer",
    "vehicle.truck": "truck",
}


def category_to_class(category_name: str) -> str | None:
    """Detection class of a nuScenes category name, or None for categories the detection task ignores."""
    return _DEVKIT_CATEGORY_TO_CLASS.get(category_name)


def eval_split_name(split: str) -> str:
    """The splits.json key the devkit must be given for ``split`` (nuScenes' own names are hard-wired)."""
    return EVAL_SPLIT_PREFIX + split if split in PREDEFINED_SPLITS else split


def make_token(*parts: object) -> str:
    """A deterministic nuScenes-style token (32 hex digits)."""
    return hashlib.md5("/".join(str(p) for p in parts).encode()).hexdigest()


def sample_pose_token(sample_token: str) -> str:
    """Token of the extra ego_pose record holding a sample's annotation pose (when one is written)."""
    return make_token("sample_pose", sample_token)


# Inputs ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SensorCalibration:
    """One sensor's mounting: ``sensor_to_base`` maps sensor-frame points into base_link."""

    sensor_to_base: Transform
    intrinsics: np.ndarray | None  # (3, 3) for cameras, None otherwise
    modality: str  # camera | lidar | radar
    width: int = 0  # image size for cameras (sample_data width/height)
    height: int = 0

    @classmethod
    def coerce(cls, channel: str, value: SensorCalibration | tuple) -> SensorCalibration:
        """Accept a SensorCalibration or a tuple (sensor_to_base, intrinsics | None, modality[, w, h])."""
        cal = value if isinstance(value, SensorCalibration) else cls(*value)
        if cal.modality not in MODALITIES:
            raise ValueError(f"sensor {channel!r}: modality {cal.modality!r} is not one of {MODALITIES}")
        if cal.modality == "camera":
            k = None if cal.intrinsics is None else np.asarray(cal.intrinsics, np.float64)
            if k is None or k.shape != (3, 3):
                raise ValueError(f"camera {channel!r} needs 3x3 intrinsics, got {cal.intrinsics!r}")
        return cal


@dataclass
class SensorDataInput:
    """One sensor message (key frame of a sample, or a sweep in between) with its own stamp and ego pose."""

    channel: str
    timestamp_us: int
    ego_pose: Transform  # base_link in map at timestamp_us
    filename: str = ""  # default: bags/<scene>#<channel>@<timestamp_us> (the devkit's eval never reads it)
    is_key_frame: bool = True
    width: int | None = None  # default: the calibration's
    height: int | None = None
    fileformat: str = ""  # default: jpg for cameras, pcd otherwise


@dataclass
class SampleInput:
    """One sample (frame): its annotations and the sensor data attached to it."""

    timestamp_us: int
    ego_pose: Transform  # base_link in map at timestamp_us: the frame the boxes are given in
    sensor_data: list[SensorDataInput]
    boxes: list[Box3D]  # base frame at timestamp_us; instance_id names the object within the scene
    num_lidar_pts: Sequence[int]  # true counts: the devkit drops GT boxes with no LiDAR/radar points
    visibility: Sequence[str | int] | None = None  # '1'..'4' per box (default '4')
    attributes: Sequence[str] | None = None  # nuScenes attribute per box ("" none; default per class)
    num_radar_pts: Sequence[int] | None = None  # default 0


SampleAnnotationInput = SampleInput  # the name used in the design notes


@dataclass
class _Scene:
    name: str
    log_name: str
    description: str
    calibration: dict[str, SensorCalibration]
    samples: list[SampleInput]


# Writer ----------------------------------------------------------------------------------------------------
class NuScenesTableWriter:
    """Accumulates scenes, then writes ``<dataroot>/<version>/`` (13 tables + splits.json) atomically."""

    def __init__(
        self, dataroot: str | Path, version: str = DEFAULT_VERSION, map_filename: str = MAP_FILENAME
    ) -> None:
        self.dataroot = Path(dataroot)
        self.version = version
        self.map_filename = map_filename
        self._scenes: dict[str, _Scene] = {}
        self._modality: dict[str, str] = {}

    @property
    def scene_names(self) -> list[str]:
        return list(self._scenes)

    def add_scene(
        self,
        name: str,
        log_name: str,
        calibration: dict[str, SensorCalibration | tuple],
        samples: list[SampleInput],
        description: str = "",
    ) -> None:
        """Add one scene; checks everything the tables and the devkit's eval rely on."""
        if not name or name in self._scenes:
            raise ValueError(f"scene name {name!r} is empty or already added")
        if not samples:
            raise ValueError(f"scene {name!r} has no samples")
        cal = {ch: SensorCalibration.coerce(ch, v) for ch, v in calibration.items()}
        for ch, c in cal.items():
            if self._modality.setdefault(ch, c.modality) != c.modality:
                raise ValueError(
                    f"sensor {ch!r} is {c.modality} in scene {name!r} but {self._modality[ch]} before"
                )
        stamps = [int(s.timestamp_us) for s in samples]
        if any(b <= a for a, b in zip(stamps, stamps[1:])):
            raise ValueError(f"scene {name!r}: sample timestamps must be strictly increasing")
        labels: dict[str, str] = {}
        for k, s in enumerate(samples):
            where = f"scene {name!r} sample {k}"
            key_channels = [d.channel for d in s.sensor_data if d.is_key_frame]
            if len(set(key_channels)) != len(key_channels):
                raise ValueError(f"{where}: more than one key frame for a channel ({key_channels})")
            if LIDAR_CHANNEL not in key_channels:
                raise ValueError(f"{where}: no {LIDAR_CHANNEL} key frame (the devkit's eval needs it)")
            missing = {d.channel for d in s.sensor_data} - set(cal)
            if missing:
                raise ValueError(f"{where}: sensor data for uncalibrated channels {sorted(missing)}")
            n = len(s.boxes)
            for what, seq in (
                ("num_lidar_pts", s.num_lidar_pts),
                ("visibility", s.visibility),
                ("attributes", s.attributes),
                ("num_radar_pts", s.num_radar_pts),
            ):
                if seq is not None and len(seq) != n:
                    raise ValueError(f"{where}: {len(seq)} {what} for {n} boxes")
            ids = [b.instance_id for b in s.boxes]
            if any(not i for i in ids) or len(set(ids)) != n:
                raise ValueError(f"{where}: every box needs an instance_id, unique within the sample")
            for b in s.boxes:
                if labels.setdefault(b.instance_id, b.label) != b.label:
                    raise ValueError(f"scene {name!r}: instance {b.instance_id!r} changes class")
            for v in s.visibility or ():
                if str(v) not in VISIBILITY:
                    raise ValueError(f"{where}: visibility {v!r} is not one of {list(VISIBILITY)}")
            for a in s.attributes or ():
                if a and a not in ATTRIBUTES:
                    raise ValueError(f"{where}: unknown attribute {a!r}")
        self._scenes[name] = _Scene(name, log_name, description, cal, list(samples))

    # Table assembly ---------------------------------------------------------------------------------------
    def build_tables(self) -> dict[str, list[dict]]:
        """All 13 tables as lists of records (what :meth:`write` serialises)."""
        t: dict[str, list[dict]] = {name: [] for name in TABLES}
        t["attribute"] = [
            {"token": make_token("attribute", a), "name": a, "description": d} for a, d in ATTRIBUTES.items()
        ]
        attr_token = {r["name"]: r["token"] for r in t["attribute"]}
        t["visibility"] = [{"token": k, "level": lv, "description": d} for k, (lv, d) in VISIBILITY.items()]
        t["category"] = [
            {
                "token": make_token("category", CATEGORY_NAME[c]),
                "name": CATEGORY_NAME[c],
                "description": f"{c} (synthetic)",
            }
            for c in NUSCENES_CLASSES
        ]
        cat_token = {c: make_token("category", CATEGORY_NAME[c]) for c in NUSCENES_CLASSES}
        t["sensor"] = [
            {"token": make_token("sensor", ch), "channel": ch, "modality": m}
            for ch, m in self._modality.items()
        ]
        logs: dict[str, str] = {}
        for scene in self._scenes.values():
            if scene.log_name not in logs:
                logs[scene.log_name] = make_token("log", scene.log_name)
                t["log"].append(
                    {
                        "token": logs[scene.log_name],
                        "logfile": scene.log_name,
                        "vehicle": "synth",
                        "date_captured": "2024-01-01",
                        "location": "synth",
                    }
                )
            self._scene_tables(scene, logs[scene.log_name], t, attr_token, cat_token)
        t["map"] = [
            {
                "token": make_token("map", self.map_filename),
                "log_tokens": list(logs.values()),
                "category": "semantic_prior",
                "filename": self.map_filename,
            }
        ]
        return t

    def _scene_tables(
        self,
        scene: _Scene,
        log_token: str,
        t: dict[str, list[dict]],
        attr_token: dict[str, str],
        cat_token: dict[str, str],
    ) -> None:
        name = scene.name
        scene_token = make_token("scene", name)
        cs_token = {ch: make_token(name, "calibrated_sensor", ch) for ch in scene.calibration}
        for ch, c in scene.calibration.items():
            t["calibrated_sensor"].append(
                {
                    "token": cs_token[ch],
                    "sensor_token": make_token("sensor", ch),
                    "translation": c.sensor_to_base.translation.tolist(),
                    "rotation": c.sensor_to_base.quat_wxyz.tolist(),
                    "camera_intrinsic": []
                    if c.intrinsics is None
                    else np.asarray(c.intrinsics, float).tolist(),
                }
            )
        sample_tokens = [make_token(name, "sample", s.timestamp_us) for s in scene.samples]
        for k, (tok, s) in enumerate(zip(sample_tokens, scene.samples)):
            t["sample"].append(
                {
                    "token": tok,
                    "timestamp": int(s.timestamp_us),
                    "prev": sample_tokens[k - 1] if k > 0 else "",
                    "next": sample_tokens[k + 1] if k + 1 < len(sample_tokens) else "",
                    "scene_token": scene_token,
                }
            )
        t["scene"].append(
            {
                "token": scene_token,
                "log_token": log_token,
                "nbr_samples": len(sample_tokens),
                "first_sample_token": sample_tokens[0],
                "last_sample_token": sample_tokens[-1],
                "name": name,
                "description": scene.description,
            }
        )
        # sample_data: chained per channel in time order over the whole scene.
        per_channel: dict[str, list[tuple[int, str, SensorDataInput]]] = {}
        for tok, s in zip(sample_tokens, scene.samples):
            for d in s.sensor_data:
                per_channel.setdefault(d.channel, []).append((int(d.timestamp_us), tok, d))
            if not any(d.is_key_frame and int(d.timestamp_us) == int(s.timestamp_us) for d in s.sensor_data):
                t["ego_pose"].append(_ego_pose_record(sample_pose_token(tok), s.timestamp_us, s.ego_pose))
        for ch, rows in per_channel.items():
            rows.sort(key=lambda r: (r[0], not r[2].is_key_frame))
            cal = scene.calibration[ch]
            toks = [make_token(name, "sample_data", ch, i, ts) for i, (ts, _, _) in enumerate(rows)]
            for i, (ts, sample_token, d) in enumerate(rows):
                pose_token = make_token(name, "ego_pose", ch, i, ts)
                t["ego_pose"].append(_ego_pose_record(pose_token, ts, d.ego_pose))
                t["sample_data"].append(
                    {
                        "token": toks[i],
                        "sample_token": sample_token,
                        "ego_pose_token": pose_token,
                        "calibrated_sensor_token": cs_token[ch],
                        "timestamp": ts,
                        "fileformat": d.fileformat or FILEFORMAT[cal.modality],
                        "is_key_frame": bool(d.is_key_frame),
                        "height": int(cal.height if d.height is None else d.height),
                        "width": int(cal.width if d.width is None else d.width),
                        "filename": d.filename or f"bags/{name}#{ch}@{ts}",
                        "prev": toks[i - 1] if i > 0 else "",
                        "next": toks[i + 1] if i + 1 < len(toks) else "",
                    }
                )
        # sample_annotation: chained per instance in sample order; boxes go to map with the sample pose.
        chains: dict[str, list[dict]] = {}
        for tok, s in zip(sample_tokens, scene.samples):
            n = len(s.boxes)
            vis = s.visibility if s.visibility is not None else ["4"] * n
            radar = s.num_radar_pts if s.num_radar_pts is not None else [0] * n
            for j, b in enumerate(s.boxes):
                attr = s.attributes[j] if s.attributes is not None else DEFAULT_ATTRIBUTE[b.label]
                g = b.to_nuscenes(s.ego_pose)
                chains.setdefault(b.instance_id, []).append(
                    {
                        "token": make_token(name, "sample_annotation", b.instance_id, s.timestamp_us),
                        "sample_token": tok,
                        "instance_token": make_token(name, "instance", b.instance_id),
                        "visibility_token": str(vis[j]),
                        "attribute_tokens": [attr_token[attr]] if attr else [],
                        "translation": g["translation"],
                        "size": g["size"],
                        "rotation": g["rotation"],
                        "prev": "",
                        "next": "",
                        "num_lidar_pts": int(s.num_lidar_pts[j]),
                        "num_radar_pts": int(radar[j]),
                        "_label": b.label,
                    }
                )
        for instance_id, anns in chains.items():
            for a, b in zip(anns, anns[1:]):
                a["next"], b["prev"] = b["token"], a["token"]
            label = anns[0].pop("_label")
            for a in anns[1:]:
                a.pop("_label")
            t["sample_annotation"].extend(anns)
            t["instance"].append(
                {
                    "token": make_token(name, "instance", instance_id),
                    "category_token": cat_token[label],
                    "nbr_annotations": len(anns),
                    "first_annotation_token": anns[0]["token"],
                    "last_annotation_token": anns[-1]["token"],
                }
            )

    # Output ----------------------------------------------------------------------------------------------
    def write(self, split: dict[str, list[str]], overwrite: bool = False) -> Path:
        """Write the tables, ``splits.json`` and the map file; returns ``<dataroot>/<version>``.

        ``split`` maps split names to scene names. Nothing appears at the final path until every file is
        written (temporary folder + rename); an existing dataset is replaced only with ``overwrite``.
        """
        if not self._scenes:
            raise ValueError("no scenes added")
        unknown = sorted({s for names in split.values() for s in names} - set(self._scenes))
        if unknown:
            raise ValueError(f"split names scenes that were never added: {unknown}")
        final = self.dataroot / self.version
        if final.exists() and not overwrite:
            raise FileExistsError(f"{final} exists (pass overwrite=True to replace it)")
        splits = {k: list(v) for k, v in split.items()}
        for k, v in split.items():
            splits.setdefault(eval_split_name(k), list(v))
        tables = self.build_tables()
        self.dataroot.mkdir(parents=True, exist_ok=True)
        map_path = self.dataroot / self.map_filename
        map_path.parent.mkdir(parents=True, exist_ok=True)
        map_path.touch(exist_ok=True)  # the devkit opens the map lazily; an empty file is enough
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.version}.partial-", dir=self.dataroot))
        try:
            for name in TABLES:
                _write_json(tmp / f"{name}.json", tables[name])
            _write_json(tmp / "splits.json", splits)
            old = None
            if final.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{self.version}.old-", dir=self.dataroot))
                os.replace(final, old / self.version)
            os.replace(tmp, final)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final


def _ego_pose_record(token: str, timestamp_us: int, pose: Transform) -> dict:
    return {
        "token": token,
        "timestamp": int(timestamp_us),
        "rotation": pose.quat_wxyz.tolist(),
        "translation": pose.translation.tolist(),
    }


def _write_json(path: Path, obj: object) -> None:
    with open(path, "w") as f:
        json.dump(obj, f)


# Reader ----------------------------------------------------------------------------------------------------
@dataclass
class SampleLabels:
    """Ground truth of one sample, boxes in the base frame at the sample time."""

    token: str
    scene_name: str
    timestamp_us: int
    ego_pose: Transform  # base_link in map at timestamp_us: the frame of ``boxes``
    lidar_ego_pose: Transform  # the LIDAR_TOP key frame's ego pose (the devkit's ego-distance reference)
    boxes: list[Box3D]  # instance_id = instance token; velocity as the devkit estimates it, in base frame
    attributes: list[str] = field(default_factory=list)
    num_lidar_pts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    num_radar_pts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    visibility: list[str] = field(default_factory=list)
    annotation_tokens: list[str] = field(default_factory=list)


def read_splits(dataroot: str | Path, version: str = DEFAULT_VERSION) -> dict[str, list[str]]:
    path = Path(dataroot) / version / "splits.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (write the dataset with NuScenesTableWriter)")
    return json.loads(path.read_text())


def _load(root: Path, name: str) -> list[dict]:
    with open(root / f"{name}.json") as f:
        return json.load(f)


def _velocity(
    ann: dict, anns: dict[str, dict], stamp: dict[str, int], max_time_diff: float = 1.5
) -> np.ndarray:
    """Global (vx, vy) of an annotation from its neighbours, as ``NuScenes.box_velocity`` estimates it;
    NaN where the devkit gives none (single annotation, or neighbours too far apart in time)."""
    first = anns[ann["prev"]] if ann["prev"] else ann
    last = anns[ann["next"]] if ann["next"] else ann
    if first is last:
        return np.full(2, np.nan)
    dt = 1e-6 * (stamp[last["sample_token"]] - stamp[first["sample_token"]])
    if dt > (2 * max_time_diff if ann["prev"] and ann["next"] else max_time_diff):
        return np.full(2, np.nan)
    return (np.asarray(last["translation"][:2]) - np.asarray(first["translation"][:2])) / dt


def official_split_scenes(split: str) -> list[str] | None:
    """The scene names of one of nuScenes' own splits (the devkit's ``create_splits_scenes``), or None."""
    if split not in PREDEFINED_SPLITS:
        return None
    from nuscenes.utils.splits import create_splits_scenes

    return list(create_splits_scenes(verbose=False).get(split, [])) or None


def split_scene_names(
    dataroot: str | Path, split: str, version: str = DEFAULT_VERSION, present: Sequence[str] | None = None
) -> list[str]:
    """The scenes of ``split``: from ``<dataroot>/<version>/splits.json`` when it names the split, else
    nuScenes' official split of that name restricted to the scenes ``present`` in the tables (v1.0-mini
    holds 10 of the 850 trainval scenes). KeyError when neither knows the split."""
    path = Path(dataroot) / version / "splits.json"
    splits = read_splits(dataroot, version) if path.is_file() else {}
    if split in splits:
        return list(splits[split])
    official = official_split_scenes(split)
    if official is None:
        known = sorted(k for k in splits if not k.startswith(EVAL_SPLIT_PREFIX))
        where = f"it has {known}" if path.is_file() else "it does not exist"
        raise KeyError(f"split {split!r} is neither one of nuScenes' splits nor in {path} ({where})")
    if present is not None:
        have = set(present)
        official = [n for n in official if n in have]
    return official


def load_split_samples(
    dataroot: str | Path,
    split: str,
    version: str = DEFAULT_VERSION,
    tables: Callable[[str], list[dict]] | None = None,
    scene_names: Sequence[str] | None = None,
) -> list[SampleLabels]:
    """Every sample of ``split`` (scene order of splits.json, then time) with its GT boxes in the base frame.

    Boxes of categories outside the 10 detection classes are skipped. Velocities the devkit cannot
    estimate (a single annotation) are 0 here (``Box3D.from_nuscenes``). ``tables`` gives a table's
    records by name (default: read the JSON; the dataroot reader passes the devkit's loaded tables);
    ``scene_names`` the split's scenes (default: :func:`split_scene_names`)."""
    root = Path(dataroot) / version
    if tables is None:

        def tables(name: str) -> list[dict]:
            return _load(root, name)

    scenes = {r["name"]: r for r in tables("scene")}
    if scene_names is None:
        scene_names = split_scene_names(dataroot, split, version, present=list(scenes))
    missing = [n for n in scene_names if n not in scenes]
    if missing:
        raise ValueError(f"split {split!r} names scenes missing from scene.json: {missing}")
    samples = {r["token"]: r for r in tables("sample")}
    poses = {r["token"]: r for r in tables("ego_pose")}
    sensors = {r["token"]: r["channel"] for r in tables("sensor")}
    cs_channel = {r["token"]: sensors[r["sensor_token"]] for r in tables("calibrated_sensor")}
    key_data: dict[str, list[dict]] = {}
    for r in tables("sample_data"):
        if r["is_key_frame"]:
            key_data.setdefault(r["sample_token"], []).append(r)
    category = {r["token"]: r["name"] for r in tables("category")}
    inst_class = {r["token"]: category_to_class(category[r["category_token"]]) for r in tables("instance")}
    attribute = {r["token"]: r["name"] for r in tables("attribute")}
    anns = {r["token"]: r for r in tables("sample_annotation")}
    by_sample: dict[str, list[dict]] = {}
    for a in anns.values():
        by_sample.setdefault(a["sample_token"], []).append(a)
    stamp = {t: int(r["timestamp"]) for t, r in samples.items()}

    def pose_of(record: dict) -> Transform:
        return Transform.from_quat(record["translation"], record["rotation"])

    out: list[SampleLabels] = []
    for scene_name in scene_names:
        tok = scenes[scene_name]["first_sample_token"]
        while tok:
            s = samples[tok]
            keys = key_data.get(tok, [])
            lidar = [d for d in keys if cs_channel[d["calibrated_sensor_token"]] == LIDAR_CHANNEL]
            if not lidar:
                raise ValueError(f"sample {tok} of scene {scene_name!r} has no {LIDAR_CHANNEL} key frame")
            lidar_pose = pose_of(poses[lidar[0]["ego_pose_token"]])
            if sample_pose_token(tok) in poses:
                pose = pose_of(poses[sample_pose_token(tok)])
            else:  # a key frame stamped at the sample time carries the annotation pose (LIDAR in nuScenes)
                same = [d for d in keys if int(d["timestamp"]) == stamp[tok]]
                same.sort(key=lambda d: cs_channel[d["calibrated_sensor_token"]] != LIDAR_CHANNEL)
                pose = pose_of(poses[same[0]["ego_pose_token"]]) if same else lidar_pose
            labels = SampleLabels(tok, scene_name, stamp[tok], pose, lidar_pose, [])
            for a in sorted(by_sample.get(tok, []), key=lambda a: a["token"]):
                label = inst_class[a["instance_token"]]
                if label is None:
                    continue
                record = dict(a, velocity=_velocity(a, anns, stamp).tolist())
                labels.boxes.append(Box3D.from_nuscenes(record, pose, label, 1.0, a["instance_token"]))
                labels.attributes.append(attribute[a["attribute_tokens"][0]] if a["attribute_tokens"] else "")
                labels.visibility.append(a["visibility_token"])
                labels.annotation_tokens.append(a["token"])
            used = [anns[t] for t in labels.annotation_tokens]
            labels.num_lidar_pts = np.array([a["num_lidar_pts"] for a in used], np.int64).reshape(-1)
            labels.num_radar_pts = np.array([a["num_radar_pts"] for a in used], np.int64).reshape(-1)
            out.append(labels)
            tok = s["next"]
    return out
