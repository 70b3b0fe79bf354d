"""Which topic holds which camera: the common nuScenes bag layouts, recognised from a bag's topics and
types, or the topics a :class:`~simdistill_ros.frames.sensors.SensorConfig` names.

Recognised without configuration (docs/bag_layouts.md):

- ``nuscenes2bag``: ``/CAM_FRONT/image_rect_compressed`` (or ``/CAM_FRONT/image_rect``),
  ``/CAM_FRONT/camera_info``, ``/LIDAR_TOP`` (the synthetic world's layout);
- ``ros2_dataset_bridge``: ``/nuscenes/CAM_FRONT/image`` (sensor_msgs/Image),
  ``/nuscenes/CAM_FRONT/camera_info``;
- ``nuscenes2mcap``: Foxglove's converter, lowercase ``/cam_front/image_rect_compressed`` with foxglove
  protobuf schemas, every transform on ``/tf``;
- ``driver``: lowercase driver-style topics such as ``/camera/front/image_raw/compressed`` with a
  ``camera_info`` beside (or above) the image, the camera named by a path segment (``front_left``, ``rear``).

The camera order is never the bag's topic order: it is the configured one, else the model's, else the
nuScenes order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from simdistill_ros.frames import messages as m
from simdistill_ros.frames.sensors import NUSCENES_CAMERAS, SensorConfig, SensorConfigError

FOXGLOVE_COMPRESSED_IMAGE = "foxglove.CompressedImage"
FOXGLOVE_RAW_IMAGE = "foxglove.RawImage"
FOXGLOVE_CALIBRATION = "foxglove.CameraCalibration"
FOXGLOVE_TRANSFORM = "foxglove.FrameTransform"
FOXGLOVE_TRANSFORMS = "foxglove.FrameTransforms"
FOXGLOVE_POINT_CLOUD = "foxglove.PointCloud"

COMPRESSED_TYPES = (m.COMPRESSED_IMAGE, FOXGLOVE_COMPRESSED_IMAGE)
IMAGE_TYPES = (*m.IMAGE_TYPES, FOXGLOVE_COMPRESSED_IMAGE, FOXGLOVE_RAW_IMAGE)
INFO_TYPES = (m.CAMERA_INFO, FOXGLOVE_CALIBRATION)
LIDAR_TYPES = (m.POINT_CLOUD2, FOXGLOVE_POINT_CLOUD)
TF_TYPES = (m.TF_MESSAGE, FOXGLOVE_TRANSFORM, FOXGLOVE_TRANSFORMS)

# Camera position words -> nuScenes channel; "rear" is a common synonym of "back".
_POSITIONS = {
    "front": "CAM_FRONT",
    "back": "CAM_BACK",
    "front_left": "CAM_FRONT_LEFT",
    "front_right": "CAM_FRONT_RIGHT",
    "back_left": "CAM_BACK_LEFT",
    "back_right": "CAM_BACK_RIGHT",
}


class LayoutError(SensorConfigError):
    """The bag's sensors cannot be matched to the cameras asked for."""


@dataclass(frozen=True)
class CameraTopics:
    """The topics of one camera in a bag."""

    name: str
    image_topic: str
    info_topic: str
    compressed: bool


@dataclass(frozen=True)
class BagSensors:
    """The sensors of one bag: layout name, cameras in model order (the first is the sync reference)."""

    layout: str
    cameras: list[CameraTopics]
    lidar_topic: str | None
    tf_topic: str | None
    tf_static_topic: str | None
    warnings: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line per camera, for the user: which layout was recognised and which topic is which."""
        lines = [f"bag layout: {self.layout}"]
        lines += [f"  {c.name}: {c.image_topic} + {c.info_topic}" for c in self.cameras]
        lines.append(f"  LiDAR: {self.lidar_topic or 'none'}; tf: {self.tf_topic}, {self.tf_static_topic}")
        return "\n".join(lines)


def camera_name_of(segment: str) -> str | None:
    """The nuScenes channel a topic segment names: ``CAM_FRONT``, ``cam_front``, ``front``, ``front-left``,
    ``rear_left``, ``left_front`` all match; anything else is None."""
    s = segment.lower().replace("-", "_")
    for prefix in ("cam_", "camera_"):
        if s.startswith(prefix):
            s = s[len(prefix) :]
    s = s.replace("rear", "back")
    parts = s.split("_")
    if len(parts) == 2 and parts[0] in ("left", "right"):
        s = f"{parts[1]}_{parts[0]}"
    return _POSITIONS.get(s)


def _layout_name(image_topic: str, msgtype: str) -> str:
    if msgtype.startswith("foxglove."):
        return "nuscenes2mcap (Foxglove)"
    segments = image_topic.strip("/").split("/")
    if segments[0] == "nuscenes":
        return "ros2_dataset_bridge"
    if re.fullmatch(r"/CAM_[A-Z_]+/image_rect(_compressed)?", image_topic):
        return "nuscenes2bag"
    return "driver-style topics"


def _info_beside(topic: str, topics: dict[str, str]) -> str | None:
    """The CameraInfo topic next to an image topic: ``camera_info`` (or the only CameraInfo topic) in its
    namespace or one above it (``/camera/front/image_raw/compressed`` -> ``/camera/front/camera_info``)."""
    parts = topic.strip("/").split("/")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = "/" + "/".join(parts[:cut])
        named = prefix + "/camera_info"
        if topics.get(named) in INFO_TYPES:
            return named
        beside = [t for t, ty in topics.items() if ty in INFO_TYPES and t.rsplit("/", 1)[0] == prefix]
        if len(beside) == 1:
            return beside[0]
    return None


def _match_template(template: str, topic: str) -> str | None:
    """The ``{camera}`` part of ``topic`` if it matches ``template`` (case-insensitively), else None."""
    head, _, tail = template.partition("{camera}")
    match = re.fullmatch(re.escape(head) + "(?P<c>[^/]+)" + re.escape(tail), topic, flags=re.IGNORECASE)
    return match.group("c") if match else None


def _find(topics: dict[str, str], name: str) -> str | None:
    """The bag's spelling of ``name``: exact first, then case-insensitive when unambiguous."""
    if name in topics:
        return name
    hits = [t for t in topics if t.lower() == name.lower()]
    return hits[0] if len(hits) == 1 else None


def _candidates(
    topics: dict[str, str], config: SensorConfig, known: Sequence[str] | None
) -> tuple[dict[str, list[CameraTopics]], list[str]]:
    """camera name -> candidate topics, and the image topics no camera name could be read from."""
    lower = {c.lower(): c for c in known or ()}

    def match_name(seg: str) -> str | None:
        """A configured name (any case) first, then a nuScenes channel read from the segment."""
        return lower.get(seg.lower()) or camera_name_of(seg)

    found: dict[str, list[CameraTopics]] = {}
    unnamed = []
    for topic, msgtype in sorted(topics.items()):
        if msgtype not in IMAGE_TYPES:
            continue
        compressed = msgtype in COMPRESSED_TYPES
        if config.image_topic is not None:
            seg = _match_template(config.image_topic, topic)
            if seg is None:
                continue
            name = match_name(seg) or seg
        else:
            name = next((n for s in topic.strip("/").split("/") if (n := match_name(s))), None)
        if name is None:
            unnamed.append(topic)
            continue
        if config.camera_info_topic is not None:
            info = _find(topics, config.camera_info_topic.format(camera=seg if config.image_topic else name))
            if info is None:
                info = _find(topics, config.camera_info_topic.format(camera=name))
        else:
            info = _info_beside(topic, topics)
        if info is None or topics[info] not in INFO_TYPES:
            unnamed.append(f"{topic} (no camera_info beside it)")
            continue
        found.setdefault(name, []).append(CameraTopics(name, topic, info, compressed))
    return found, unnamed


def resolve_sensors(
    topics: dict[str, str],
    config: SensorConfig | None = None,
    model_cameras: Sequence[str] | None = None,
    where: str = "bag",
) -> BagSensors:
    """The cameras (in model order), LiDAR and tf topics of a bag with ``topics`` (name -> type).

    Camera order: ``config.cameras``, else ``model_cameras`` (the checkpoint's rig), else the nuScenes
    order. Cameras the order names but the bag lacks are a warning when some remain (fewer cameras than
    trained), an error when none does; cameras the bag has beyond them are ignored with a warning.
    """
    config = config or SensorConfig()
    order = config.camera_order(model_cameras)
    listing = ", ".join(f"{t} [{ty}]" for t, ty in sorted(topics.items())) or "no topics"
    if config.image_topics is not None:
        cams = _explicit(topics, config, where, listing)
    else:
        found, unnamed = _candidates(topics, config, order)
        if not found:
            raise LayoutError(
                f"{where}: no camera topics recognised (nuscenes2bag, ros2_dataset_bridge, nuscenes2mcap or "
                f"driver-style names; unmatched image topics: {unnamed or 'none'}); name them with --cameras "
                f"and --image-topic/--camera-info-topic or a --params YAML (docs/bag_layouts.md). "
                f"The bag has: {listing}"
            )
        cams_by_name = {n: _prefer(c, config.compressed) for n, c in found.items()}
        if order is None:
            rank = {c: i for i, c in enumerate(NUSCENES_CAMERAS)}
            order = sorted(cams_by_name, key=lambda n: (rank.get(n, len(rank)), n))
        cams = [cams_by_name[n] for n in order if n in cams_by_name]
        missing = [n for n in order if n not in cams_by_name]
        extra = sorted(set(cams_by_name) - set(order))
        warnings = []
        if not cams:
            raise LayoutError(
                f"{where}: none of the cameras {order} is in the bag (missing: {missing}; the bag has "
                f"cameras {sorted(cams_by_name)}); give --cameras to use the bag's cameras"
            )
        if missing:
            warnings.append(
                f"{where}: {len(cams)} of {len(order)} cameras (missing: {', '.join(missing)}); detecting "
                "with fewer cameras than the model was trained on"
            )
        if extra:
            warnings.append(
                f"{where}: ignoring cameras the model was not trained on (extra: {', '.join(extra)})"
            )
        layout = _layout_name(cams[0].image_topic, topics[cams[0].image_topic])
        if config.image_topic is not None:
            layout = f"configured ({config.image_topic})"
        return BagSensors(layout, cams, *_other_topics(topics, config), tuple(warnings))
    return BagSensors("configured (explicit topics)", cams, *_other_topics(topics, config))


def _prefer(cands: list[CameraTopics], compressed: bool | None) -> CameraTopics:
    """One topic per camera: the asked-for compression (default compressed), then the shortest name."""
    want = True if compressed is None else compressed
    return sorted(cands, key=lambda c: (c.compressed != want, len(c.image_topic), c.image_topic))[0]


def _explicit(topics: dict[str, str], config: SensorConfig, where: str, listing: str) -> list[CameraTopics]:
    cams = []
    assert config.cameras is not None and config.image_topics is not None  # checked by SensorConfig
    for i, (name, image) in enumerate(zip(config.cameras, config.image_topics)):
        topic = _find(topics, image)
        if topic is None or topics[topic] not in IMAGE_TYPES:
            raise LayoutError(
                f"{where}: has no image topic {image!r} for camera {name!r}; the bag has: {listing}"
            )
        if config.camera_info_topics is not None:
            info = _find(topics, config.camera_info_topics[i])
        elif config.camera_info_topic is not None:
            info = _find(topics, config.camera_info_topic.format(camera=name))
        else:
            info = _info_beside(topic, topics)
        if info is None or topics[info] not in INFO_TYPES:
            raise LayoutError(
                f"{where}: no camera_info topic for camera {name!r} ({image}); the bag has: {listing}"
            )
        cams.append(CameraTopics(name, topic, info, topics[topic] in COMPRESSED_TYPES))
    return cams


def _other_topics(topics: dict[str, str], config: SensorConfig) -> tuple[str | None, str | None, str | None]:
    """(LiDAR, /tf, /tf_static) topics: configured, else ``/LIDAR_TOP``-like, else the only point cloud."""
    lidar = None
    if config.lidar_topic is not None:
        lidar = _find(topics, config.lidar_topic)
    else:
        clouds = [t for t, ty in sorted(topics.items()) if ty in LIDAR_TYPES]
        named = [
            t for t in clouds if t.rstrip("/").split("/")[-1].lower() in ("lidar_top", "points", "lidar")
        ]
        lidar = (named or clouds or [None])[0] if len(named) == 1 or len(clouds) == 1 else None
    if lidar is not None and topics.get(lidar) not in LIDAR_TYPES:
        lidar = None
    tf = _find(topics, config.tf_topic)
    tf_static = _find(topics, config.tf_static_topic)
    return (
        lidar,
        tf if tf is not None and topics[tf] in TF_TYPES else None,
        tf_static if tf_static is not None and topics[tf_static] in TF_TYPES else None,
    )
