"""Assemble synchronised :class:`Frame` s from a sensor bag, streaming.

Images of all cameras are synchronised with :class:`ApproximateTimeSync` (reference: the first camera);
each camera is paired with its latest CameraInfo; the LiDAR sweep nearest to the reference stamp within
``slop`` is attached; tf (static and dynamic) gives the extrinsics at each image's stamp. A set is turned
into a frame once the bag has moved ``latency_ns`` past its reference stamp, so the LiDAR sweep and the
tf samples that bracket it have been read: memory stays bounded by a few frames whatever the bag's size.

Frames that cannot be assembled (a camera missing, no LiDAR sweep in the window with
``require_lidar=True``, a frame unknown to tf, a corrupt jpeg, intrinsics outside a physical range) are
skipped, counted in :class:`FrameStats` and the first of each reason is logged as a warning. Problems of
the bag itself (unreadable, images of an unsupported encoding or layout) raise :class:`BagError`.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from simdistill_ros.frames import messages as m
from simdistill_ros.frames.bag_reader import (
    BagError,
    BagReader,
    IntrinsicsError,
    add_tf_message,
    camera_from_info,
    decode_image,
    points_from_msg,
    stamp_of,
)
from simdistill_ros.frames.frame import Frame
from simdistill_ros.frames.images import CorruptImageError
from simdistill_ros.frames.layouts import BagSensors, CameraTopics
from simdistill_ros.frames.pointcloud import NO_INTENSITY, intensity_field
from simdistill_ros.frames.sensors import SensorConfig
from simdistill_ros.frames.sync import ApproximateTimeSync, SyncedSet
from simdistill_ros.frames.tf_tree import TransformTree
from simdistill_ros.frames.topics import TopicNames
from simdistill_ros.geometry import CameraRig, Transform

DEFAULT_SLOP_NS = 50_000_000
LOG = logging.getLogger(__name__)
MAX_BUFFERED_SWEEPS = 64  # safety cap; sweeps are normally pruned by stamp long before this


@dataclass
class FrameStats:
    """What a :class:`FrameReader` did: frames produced, skipped (per reason, with a first example)."""

    frames: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    dropped_images: dict[str, int] = field(default_factory=dict)
    frames_without_lidar: int = 0
    lidar_sweeps: int = 0
    messages: int = 0
    cameras: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    assumed: dict[str, str] = field(default_factory=dict)  # topic -> what its messages lack was taken as

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def __str__(self) -> str:
        parts = [f"{self.frames} frames", f"{self.messages} messages"]
        if self.skipped:
            detail = "; ".join(
                f"{k}: {v} (e.g. {self.examples.get(k, '')})" for k, v in sorted(self.skipped.items())
            )
            parts.append(f"skipped {self.skipped_total} [{detail}]")
        dropped = {k: v for k, v in self.dropped_images.items() if v}
        if dropped:
            parts.append(f"unmatched images {dropped}")
        if self.frames_without_lidar:
            parts.append(f"{self.frames_without_lidar} frames without LiDAR")
        return ", ".join(parts)


class _Skip(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class FrameReader:
    """Iterate the frames of one bag; ``stats`` summarises the last (or current) iteration.

    ``cameras`` names the cameras to use (None: discover them); ``base_frame`` is the frame extrinsics and
    points are expressed in; ``world_frame`` the one ``ego_pose`` is given in. ``tf_tolerance_ns`` (default
    ``slop_ns``) lets a dynamic transform be used up to that far outside its recorded history.
    """

    def __init__(
        self,
        bag_path: str | Path,
        sensors: SensorConfig | TopicNames | None = None,
        cameras: Sequence[str] | None = None,
        slop_ns: int = DEFAULT_SLOP_NS,
        require_lidar: bool = False,
        base_frame: str | None = None,
        world_frame: str = "map",
        queue_size: int = 10,
        latency_ns: int | None = None,
        tf_tolerance_ns: int | None = None,
        model_cameras: Sequence[str] | None = None,
        topics: TopicNames | None = None,
    ) -> None:
        self.bag_path = Path(bag_path)
        sensors = sensors if sensors is not None else topics
        if isinstance(sensors, TopicNames):
            sensors = sensor_config_of_topics(sensors)
        self.sensors = sensors or SensorConfig()
        if cameras is not None:
            self.sensors = replace(self.sensors, cameras=tuple(cameras))
        if base_frame is not None:
            self.sensors = replace(self.sensors, base_frame=base_frame)
        self.model_cameras = list(model_cameras) if model_cameras else None
        self.slop_ns = int(slop_ns)
        self.require_lidar = require_lidar
        self.base_frame = self.sensors.base_frame
        self.bag_sensors: BagSensors | None = None
        self.world_frame = world_frame
        self.queue_size = queue_size
        self.latency_ns = max(2 * self.slop_ns, 100_000_000) if latency_ns is None else int(latency_ns)
        self.tf_tolerance_ns = self.slop_ns if tf_tolerance_ns is None else int(tf_tolerance_ns)
        self.stats = FrameStats()

    def __iter__(self) -> Iterator[Frame]:
        self.stats = FrameStats()
        with BagReader(self.bag_path) as bag:
            yield from self._frames(bag)

    # streaming -----------------------------------------------------------------------------------------
    def _frames(self, bag: BagReader) -> Iterator[Frame]:
        self.bag_sensors = found = bag.sensors(self.sensors, self.model_cameras)
        cams = found.cameras
        self.stats.cameras = [c.name for c in cams]
        self.stats.warnings = list(found.warnings)
        lidar_topic, tf_topic, tf_static_topic = found.lidar_topic, found.tf_topic, found.tf_static_topic
        if self.require_lidar and lidar_topic is None:
            wanted_lidar = repr(self.sensors.lidar_topic or "/LIDAR_TOP")
            raise BagError(
                f"{self.bag_path}: has no LiDAR topic {wanted_lidar} (PointCloud2; nor a single other point "
                f"cloud) and require_lidar is set; the bag has: {bag.topic_list()}"
            )
        image_cam = {c.image_topic: c for c in cams}
        info_cam = {c.info_topic: c for c in cams}
        wanted = set(image_cam) | set(info_cam) | {t for t in (lidar_topic, tf_topic, tf_static_topic) if t}

        sync = ApproximateTimeSync([c.name for c in cams], self.slop_ns, self.queue_size)
        tree = TransformTree()
        infos: dict[str, tuple[str, Any]] = {}
        sweeps: deque[tuple[int, Any]] = deque(maxlen=MAX_BUFFERED_SWEEPS)
        pending: deque[SyncedSet] = deque()
        watermark: int | None = None
        state = (cams, tree, infos, sweeps, lidar_topic)
        # Static transforms hold for the whole bag: read them all first, wherever they were recorded.
        if tf_static_topic is not None:
            for _, _, msg in bag.messages([tf_static_topic]):
                add_tf_message(tree, msg, static=True)
        try:
            for topic, _, msg in bag.messages(wanted - {tf_static_topic}):
                self.stats.messages += 1
                stamp = None
                if topic == tf_topic:
                    add_tf_message(tree, msg, static=False)
                    stamp = max((m.stamp_to_ns(t.header.stamp) for t in msg.transforms), default=None)
                elif topic in info_cam:
                    infos[info_cam[topic].name] = (topic, msg)
                elif topic in image_cam:
                    stamp = stamp_of(msg)
                    pending.extend(sync.add(image_cam[topic].name, stamp, (topic, msg)))
                elif topic == lidar_topic:
                    stamp = stamp_of(msg)
                    sweeps.append((stamp, msg))
                    self.stats.lidar_sweeps += 1
                if stamp is not None:  # header stamps, not bag times: converters often write wall time
                    watermark = stamp if watermark is None else max(watermark, stamp)
                while (
                    pending and watermark is not None and pending[0].stamp_ns + self.latency_ns <= watermark
                ):
                    yield from self._finish(pending.popleft(), state)
                self._prune(sweeps, pending, sync)
            pending.extend(sync.flush())
            while pending:
                yield from self._finish(pending.popleft(), state)
        finally:
            self.stats.dropped_images = dict(sync.dropped)
            if sync.dropped[sync.reference]:
                self._skip(
                    "camera missing",
                    f"images of {sync.reference!r} without every camera within {self.slop_ns} ns",
                    sync.dropped[sync.reference],
                )

    def _prune(self, sweeps: deque, pending: deque, sync: ApproximateTimeSync) -> None:
        """Forget sweeps too old for any frame still to come (references only move forward)."""
        refs = [pending[0].stamp_ns if pending else None, sync.oldest_reference_ns, sync.latest_reference_ns]
        refs = [s for s in refs if s is not None]
        if not refs:
            return  # no reference image yet: keep the (capped) buffer
        horizon = min(refs) - self.slop_ns
        while len(sweeps) > 1 and sweeps[0][0] < horizon:
            sweeps.popleft()

    def _finish(self, synced: SyncedSet, state: tuple) -> Iterator[Frame]:
        try:
            frame = self._assemble(synced, *state)
        except _Skip as skip:
            self._skip(skip.reason, str(skip))
            return
        except BagError as err:  # name the bag and the instant, not only the topic
            raise BagError(f"{self.bag_path}: {err} (frame at {synced.stamp_ns} ns)") from None
        self.stats.frames += 1
        yield frame

    def _skip(self, reason: str, detail: str, count: int = 1) -> None:
        if reason not in self.stats.skipped:
            LOG.warning("%s: skipping frames (%s): %s", self.bag_path, reason, detail)
        self.stats.skipped[reason] += count
        self.stats.examples.setdefault(reason, detail)

    def _assemble(
        self,
        synced: SyncedSet,
        cams: list[CameraTopics],
        tree: TransformTree,
        infos: dict[str, tuple[str, Any]],
        sweeps: deque,
        lidar_topic: str | None,
    ) -> Frame:
        images: dict[str, np.ndarray] = {}
        stamps: dict[str, int] = {}
        assumed: dict[str, str] = {}
        cameras = []
        for cam in cams:
            stamp, (topic, msg) = synced.messages[cam.name]
            if cam.name not in infos:
                raise _Skip(
                    "no camera_info", f"camera {cam.name!r} has no CameraInfo on {cam.info_topic!r} yet"
                )
            info_topic, info = infos[cam.name]
            rectified = self.sensors.rectified(cam.image_topic)
            if (note := m.distortion_assumed(info, rectified)) is not None:
                assumed[info_topic] = self._assume(info_topic, note)
            try:
                rgb = decode_image(msg, topic)
            except CorruptImageError as err:  # a damaged image: this frame is not detected on
                raise _Skip("corrupt image", str(err)) from None
            frame_id = msg.header.frame_id or info.header.frame_id or cam.name
            cam_to_base = self._lookup(tree, frame_id, stamp)
            try:
                camera = camera_from_info(
                    cam.name, info, cam_to_base, rgb.shape, info_topic, frame_id, rectified
                )
            except IntrinsicsError as err:  # one bad CameraInfo refuses the frames it calibrates
                raise _Skip("bad intrinsics", str(err)) from None
            images[cam.name], stamps[cam.name] = rgb, stamp
            cameras.append(camera)

        points = lidar_stamp = lidar_to_base = None
        lidar_frame = "LIDAR_TOP"
        sweep = self._nearest_sweep(sweeps, synced.stamp_ns) if lidar_topic else None
        if sweep is None:
            if self.require_lidar:
                raise _Skip(
                    "no LiDAR sweep in window",
                    f"no sweep on {lidar_topic!r} within {self.slop_ns} ns of {synced.stamp_ns}",
                )
            self.stats.frames_without_lidar += 1
        else:
            lidar_stamp, cloud = sweep
            lidar_frame = cloud.header.frame_id or lidar_frame
            lidar_to_base = self._lookup(tree, lidar_frame, lidar_stamp)
            points = lidar_to_base.apply(points_from_msg(cloud, lidar_topic)).astype(np.float32)
            if intensity_field(cloud) is None:
                fields = ", ".join(f.name for f in cloud.fields)
                assumed[lidar_topic] = self._assume(lidar_topic, f"PointCloud2 ({fields}) {NO_INTENSITY}")

        ego_pose: Transform | None = None
        if tree.has_frame(self.world_frame):
            try:
                ego_pose = tree.lookup(
                    self.world_frame, self.base_frame, synced.stamp_ns, self.tf_tolerance_ns
                )
            except LookupError:
                ego_pose = None
        rig = CameraRig(tuple(cameras), lidar_to_base, base_frame=self.base_frame, lidar_frame=lidar_frame)
        return Frame(
            stamp_ns=synced.stamp_ns,
            images=images,
            image_stamps_ns=stamps,
            rig=rig,
            points=points,
            lidar_stamp_ns=lidar_stamp,
            ego_pose=ego_pose,
            source=str(self.bag_path),
            index=self.stats.frames,
            assumed=assumed,
        )

    def _assume(self, topic: str, note: str) -> str:
        """Warn of an assumption (logged once per topic and bag, kept in ``stats.assumed``); returns it."""
        if topic not in self.stats.assumed:
            self.stats.assumed[topic] = note
            LOG.warning("%s: %s: %s", self.bag_path, topic, note)
        return note

    def _lookup(self, tree: TransformTree, frame_id: str, stamp_ns: int) -> Transform:
        try:
            return tree.lookup(self.base_frame, frame_id, stamp_ns, self.tf_tolerance_ns)
        except LookupError as err:
            raise _Skip("tf lookup failed", str(err)) from None

    def _nearest_sweep(self, sweeps: deque, stamp_ns: int) -> tuple[int, Any] | None:
        best = None
        for s, msg in sweeps:
            d = abs(s - stamp_ns)
            if d <= self.slop_ns and (best is None or d < abs(best[0] - stamp_ns)):
                best = (s, msg)
        return best


def sensor_config_of_topics(topics: TopicNames) -> SensorConfig:
    """The sensor configuration that reads what a :class:`TopicNames` writes."""
    return SensorConfig(
        image_topic=topics.image_template,
        camera_info_topic=topics.camera_info_template,
        compressed=topics.compressed,
        lidar_topic=topics.lidar,
        tf_topic=topics.tf,
        tf_static_topic=topics.tf_static,
    )


def read_frames(
    bag_path: str | Path,
    sensors: SensorConfig | TopicNames | None = None,
    cameras: Sequence[str] | None = None,
    slop_ns: int = DEFAULT_SLOP_NS,
    require_lidar: bool = False,
    base_frame: str | None = None,
) -> Iterator[Frame]:
    """Stream the frames of a bag (see :class:`FrameReader`, which also offers the skip statistics)."""
    return iter(FrameReader(bag_path, sensors, cameras, slop_ns, require_lidar, base_frame))


def summary_line(command: str, frames: int, skipped: Counter, gt_matched: int | None = None) -> str:
    """The last line of ``detect``/``replay``: frames done, and frames skipped per reason."""
    total = sum(skipped.values())
    text = f"{command} summary: {frames} frames done, {total} skipped"
    if skipped:
        text += " (" + "; ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items())) + ")"
    if gt_matched is not None:
        text += f", {gt_matched} of {frames} with ground truth"
    return text
