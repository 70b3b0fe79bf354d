"""Offline teacher replay (ROS-free): bags -> frames -> teacher -> :class:`TargetStore`.

Used by ``simdistill replay`` and by the ``teacher_replay_node``. Bags are read directly (every message, in
bag order), frames are assembled by :class:`~simdistill_ros.frames.assembly.FrameReader` with LiDAR required,
and the teacher sees exactly the input the online-distillation training gives it (the plain resize of
:mod:`simdistill_ros.models.preprocess`, no augmentation), so stored targets equal the online teacher's
outputs on the same frames.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simdistill_ros.dataset.ground_truth import GroundTruthIndex
from simdistill_ros.defaults import REPLAY_SCORE_THRESHOLD
from simdistill_ros.errors import UserError
from simdistill_ros.frames.assembly import FrameReader
from simdistill_ros.frames.frame import Frame
from simdistill_ros.frames.sensors import SensorConfig
from simdistill_ros.frames.topics import TopicNames
from simdistill_ros.geometry import boxes_to_array
from simdistill_ros.models import CameraInputs, load_model, resolve_model_path
from simdistill_ros.models.preprocess import camera_input
from simdistill_ros.targets.store import FEATURES, FrameTargets, TargetStoreWriter, teacher_fingerprint
from simdistill_ros.training.batch import Sample, collate


def parse_shard(spec: str | None) -> tuple[int, int]:
    """``"I/N"`` -> (I, N). torchrun's RANK/WORLD_SIZE win when set and ``spec`` is the default."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if (spec in (None, "", "0/1")) and world > 1:
        return int(os.environ.get("RANK", "0")), world
    try:
        i, n = (int(x) for x in (spec or "0/1").split("/"))
    except ValueError:
        raise UserError(f"--shard must look like I/N (e.g. 0/4), got {spec!r}") from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {spec}: need 0 <= I < N")
    return i, n


def select_shard(bags: Sequence[str | os.PathLike], shard: tuple[int, int]) -> list[Path]:
    """Every N-th bag starting at I, after sorting by path (the same split on every machine)."""
    i, n = shard
    return sorted(Path(b) for b in bags)[i::n]


def bag_name(bag: Path) -> str:
    """The bag's name in frame keys: the rosbag2 directory (or .mcap file stem)."""
    return bag.stem if bag.suffix == ".mcap" else bag.name


class EncodedImageFrameReader(FrameReader):
    """A FrameReader that also keeps each camera's compressed bytes (``frame.encoded``), so the store holds
    the recorded jpeg rather than a re-encoded (lossy) copy or the 10x larger raw pixels."""

    def _assemble(self, synced: Any, *state: Any) -> Frame:
        frame = super()._assemble(synced, *state)
        encoded: dict[str, tuple[str, bytes]] = {}
        for name, (_, (_, msg)) in synced.messages.items():
            if hasattr(msg, "format"):
                encoded[name] = (str(msg.format), np.asarray(msg.data, np.uint8).tobytes())
        frame.encoded = encoded if len(encoded) == len(frame.images) else None  # type: ignore[attr-defined]
        return frame


def sample_from_frame(frame: Frame, input_hw: tuple[int, int]) -> Sample:
    """The un-augmented model input of a frame (:mod:`simdistill_ros.models.preprocess`), from float32 rig
    arrays as the frame cache stores them, so the teacher sees what online distillation gives it."""
    names = frame.rig.names
    images, ks = [], []
    intrinsics = frame.rig.intrinsics_array().astype(np.float32)
    for c, name in enumerate(names):
        img = frame.images[name]
        image, k = camera_input(img, intrinsics[c], input_hw)
        images.append(image)
        ks.append(k)
    points = None if frame.points is None else frame.points.astype(np.float32)
    return Sample(
        images=np.stack(images),
        intrinsics=np.stack(ks).astype(np.float32),
        cam_to_base=frame.rig.cam_to_base_array().astype(np.float32),
        points=points,
        boxes=np.zeros((0, 9), np.float32),
        labels=np.zeros((0,), np.int64),
        bev_aug=np.eye(4, dtype=np.float32),
        key=f"{bag_name(Path(frame.source))}/{frame.stamp_ns}",
    )


def points_in_view(frame: Frame) -> np.ndarray | None:
    """The frame's LiDAR returns (P, 3) base-frame x, y, z that land in some camera's image: what the
    student's depth supervision is made from (the returns no camera sees would only cost store space)."""
    if frame.points is None:
        return None
    xyz = np.asarray(frame.points[:, :3], np.float64)
    seen = np.zeros(len(xyz), bool)
    for camera in frame.rig.cameras:
        uv, depth = camera.project(xyz)
        seen |= camera.in_image(uv, depth)
    return xyz[seen].astype(np.float32)


def ground_truth_of(dataroot: str | os.PathLike, version: str = "v1.0-synth") -> GroundTruthIndex:
    """Every split's samples of ``--data``, looked up by frame stamp."""
    if not (Path(dataroot) / version).is_dir():
        raise UserError(f"--data {dataroot}: no {version}/ tables there")
    return GroundTruthIndex.from_dataset(dataroot, version=version)


@dataclass
class ReplaySummary:
    """What a replay did; ``str()`` is the printed summary."""

    bags: int = 0
    frames_stored: int = 0
    frames_already_stored: int = 0
    skipped: Counter = field(default_factory=Counter)
    skip_examples: dict[str, str] = field(default_factory=dict)
    frames_with_gt: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    teacher_seconds: float = 0.0
    layout: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def frames_per_s(self) -> float:
        return self.frames_stored / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        lines = [self.layout] if self.layout else []
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [
            f"replayed {self.bags} bags: {self.frames_stored} frames stored "
            f"({self.frames_with_gt} with ground truth), {self.frames_already_stored} already in the store, "
            f"{sum(self.skipped.values())} could not be assembled",
        ]
        for reason, n in sorted(self.skipped.items()):
            lines.append(f"  skipped {n}: {reason} (e.g. {self.skip_examples.get(reason, '')})")
        if self.frames_stored:
            lines.append(
                f"  {self.bytes_written / self.frames_stored / 1e6:.2f} MB per frame, "
                f"{self.frames_per_s:.2f} frames/s ({self.teacher_seconds:.1f} s of {self.seconds:.1f} s in "
                "the teacher)"
            )
        return "\n".join(lines)


# Called with (frame, stored targets) after each stored frame: the node publishes detections from it.
FrameCallback = Callable[[Frame, FrameTargets], None]


class TeacherReplayer:
    """Loads the teacher once, replays bags into a store. ``score_threshold`` is the decode threshold of
    the stored boxes (pseudo-labels are filtered further at training time)."""

    def __init__(
        self,
        teacher: str | os.PathLike,
        store: str | os.PathLike,
        device: str = "auto",
        shard: tuple[int, int] = (0, 1),
        data: str | os.PathLike | None = None,
        sensors: SensorConfig | TopicNames | None = None,
        frames_per_shard: int = 16,
        score_threshold: float = REPLAY_SCORE_THRESHOLD,
        verify: bool = True,
    ) -> None:
        path = resolve_model_path(teacher)
        self.model, self.config, meta, self.device = load_model(path, device, verify)
        if meta.get("model_type") != "teacher":
            raise UserError(f"{teacher} is a {meta.get('model_type')} checkpoint, not a teacher")
        self.model.freeze()
        self.fingerprint = teacher_fingerprint(path)
        self.shard = shard
        self.writer = TargetStoreWriter(
            store, self.fingerprint, f"shard-{shard[0]}-of-{shard[1]}", frames_per_shard
        )
        self.ground_truth = ground_truth_of(data) if data else None
        self.sensors = sensors
        # Camera order of the stored frames: configured, else the teacher's rig (meta.json), else nuScenes.
        self.model_cameras = list(meta.get("cameras") or []) or None
        self.score_threshold = score_threshold

    def close(self) -> None:
        self.writer.close()

    @torch.no_grad()
    def teacher_targets(self, frame: Frame) -> dict[str, Any]:
        """Teacher outputs of one frame: features and head maps (C, X, Y) fp16, decoded boxes float32."""
        batch = collate([sample_from_frame(frame, self.config.input_hw)]).to(self.device)
        out = self.model(CameraInputs.from_batch(batch), batch.points)
        det = self.model.head.decode(out.head, score_threshold=self.score_threshold)[0]

        def half(t: torch.Tensor) -> np.ndarray:
            return t[0].to(torch.float16).cpu().numpy()

        return {
            "features": {name: half(getattr(out, name)) for name in FEATURES},
            "head": {k: half(v) for k, v in out.head.items()},
            "det_boxes": det.boxes.float().cpu().numpy(),
            "det_scores": det.scores.float().cpu().numpy(),
            "det_labels": det.labels.cpu().numpy().astype(np.int64),
        }

    def replay(
        self, bags: Sequence[str | os.PathLike], on_frame: FrameCallback | None = None
    ) -> ReplaySummary:
        """Replay this shard's share of ``bags``; frames already in the store are skipped."""
        summary = ReplaySummary()
        t_start = time.perf_counter()
        for bag in select_shard(bags, self.shard):
            summary.bags += 1
            name = bag_name(bag)
            reader = EncodedImageFrameReader(
                bag, self.sensors, require_lidar=True, model_cameras=self.model_cameras
            )
            for frame in reader:
                key = f"{name}/{frame.stamp_ns}"
                if self.writer.has(key):
                    summary.frames_already_stored += 1
                    continue
                t0 = time.perf_counter()
                targets = self.teacher_targets(frame)
                summary.teacher_seconds += time.perf_counter() - t0
                stored = self._frame_targets(frame, key, name, targets)
                self.writer.add(stored)
                summary.frames_stored += 1
                summary.frames_with_gt += int(stored.has_gt)
                if on_frame is not None:
                    on_frame(frame, stored)
            self.writer.flush()  # a bag's frames are durable once the bag is done
            if reader.bag_sensors is not None and summary.bags == 1:
                summary.layout = reader.bag_sensors.describe()
            for warning in reader.stats.warnings:
                summary.warnings.append(warning)
            if self.ground_truth is not None and summary.frames_with_gt < summary.frames_stored:
                summary.warnings.append(
                    f"{name}: {summary.frames_stored - summary.frames_with_gt} frames so far match no "
                    "ground-truth sample (they train on teacher pseudo-labels)"
                )
            for reason, n in reader.stats.skipped.items():
                summary.skipped[reason] += n
                summary.skip_examples.setdefault(reason, f"{name}: {reader.stats.examples.get(reason, '')}")
        summary.bytes_written = self.writer.bytes_written
        summary.seconds = time.perf_counter() - t_start
        return summary

    def _frame_targets(self, frame: Frame, key: str, name: str, t: dict[str, Any]) -> FrameTargets:
        names = frame.rig.names
        encoded = getattr(frame, "encoded", None)
        if encoded:
            images: list[bytes] | np.ndarray = [encoded[n][1] for n in names]
            image_format = encoded[names[0]][0]
        else:
            images, image_format = frame.image_stack(), "rgb8"
        sample = self.ground_truth.lookup(frame.stamp_ns) if self.ground_truth else None
        gt = (sample.token, *boxes_to_array(sample.boxes)) if sample is not None else None
        return FrameTargets(
            key=key,
            bag=name,
            stamp_ns=frame.stamp_ns,
            index=frame.index,
            cameras=list(names),
            images=images,
            image_format=image_format,
            image_stamps_ns=np.array([frame.image_stamps_ns[n] for n in names], np.int64),
            intrinsics=frame.rig.intrinsics_array().astype(np.float32),
            cam_to_base=frame.rig.cam_to_base_array().astype(np.float32),
            features=t["features"],
            head=t["head"],
            det_boxes=t["det_boxes"],
            det_scores=t["det_scores"],
            det_labels=t["det_labels"],
            has_gt=gt is not None,
            gt_boxes=gt[1] if gt else np.zeros((0, 9), np.float32),
            gt_labels=gt[2] if gt else np.zeros((0,), np.int64),
            sample_token=gt[0] if gt else "",
            assumed=dict(frame.assumed),
            depth_points=points_in_view(frame),
        )
