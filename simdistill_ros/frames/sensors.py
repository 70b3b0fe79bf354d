"""The sensor configuration: which cameras (in which order), where their images and CameraInfo live, the
LiDAR and tf topics and the base frame. One ROS-free object that ``detector_node``, ``teacher_replay_node``,
``simdistill detect``, ``simdistill replay`` and the training data path all take.

It is built from the same ``ros__parameters`` YAML the node reads (:func:`load_parameters_file`) plus the
command-line flags. Every field left unset (None) is filled from the bag (see
:mod:`simdistill_ros.frames.layouts`) or, for the camera order, from the checkpoint the model was trained
with: the camera order never comes from a bag's topic order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from simdistill_ros.defaults import IMAGE_RECTIFICATIONS
from simdistill_ros.errors import UserError
from simdistill_ros.geometry.camera import NUSCENES_CAMERAS as NUSCENES_RIG

# The nuScenes rig's camera names, in the order nuScenes and the synthetic world list them.
NUSCENES_CAMERAS = [name for name, *_ in NUSCENES_RIG]

# ROS' names of rectified image topics (image_rect, image_rect_color, ..., and their transports' topics)
_RECTIFIED_SEGMENT = re.compile(r"(^|_)rect(ified)?(_|$)")


class SensorConfigError(UserError):
    """A sensor configuration that cannot be used (bad YAML, topics not matching the cameras)."""


def _names(value: Any, what: str) -> tuple[str, ...] | None:
    """A list (or comma-separated string) of names; None or empty: unset."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    items = tuple(str(v) for v in value if str(v))
    if not items:
        return None
    if len(set(items)) != len(items):
        raise SensorConfigError(f"{what} must be unique, got {list(items)}")
    return items


@dataclass(frozen=True)
class SensorConfig:
    """Where the sensors are. None: taken from the bag's recognised layout (topics) or the model (cameras).

    ``image_topic``/``camera_info_topic`` are templates with ``{camera}``; ``image_topics``/
    ``camera_info_topics`` are explicit lists, one per camera of ``cameras`` (they win over templates).
    ``compressed``: prefer sensor_msgs/CompressedImage (True) or Image (False) where a camera has both.
    ``image_rectification``: whether the images are rectified (their camera matrix is CameraInfo's P) or
    raw (K); "auto" reads it from each image topic's name (:meth:`rectified`).
    """

    cameras: tuple[str, ...] | None = None
    image_topic: str | None = None
    camera_info_topic: str | None = None
    image_topics: tuple[str, ...] | None = None
    camera_info_topics: tuple[str, ...] | None = None
    compressed: bool | None = None
    base_frame: str = "base_link"
    lidar_topic: str | None = None
    tf_topic: str = "/tf"
    tf_static_topic: str = "/tf_static"
    image_rectification: str = "auto"

    def __post_init__(self) -> None:
        if self.image_rectification not in IMAGE_RECTIFICATIONS:
            raise SensorConfigError(
                f"image_rectification must be one of {', '.join(IMAGE_RECTIFICATIONS)}, "
                f"got {self.image_rectification!r}"
            )
        for key in ("image_topic", "camera_info_topic"):
            value = getattr(self, key)
            if value is not None and "{camera}" not in value:
                raise SensorConfigError(f"{key} must contain {{camera}}, got {value!r}")
        for key in ("image_topics", "camera_info_topics"):
            value = getattr(self, key)
            if value is None:
                continue
            if self.cameras is None:
                raise SensorConfigError(f"{key} needs camera_names (one camera per topic)")
            if len(value) != len(self.cameras):
                raise SensorConfigError(
                    f"{key} has {len(value)} topics for {len(self.cameras)} cameras {list(self.cameras)}"
                )
        if not self.base_frame:
            raise SensorConfigError("base_frame must not be empty")

    @classmethod
    def from_parameters(cls, values: Mapping[str, Any]) -> SensorConfig:
        """From ``ros__parameters`` names (camera_names, image_topic, camera_info_topic, image_topics,
        camera_info_topics, compressed, base_frame, lidar_topic, tf_topic, tf_static_topic,
        image_rectification); other names are ignored; empty values are unset."""
        v = dict(values)
        cameras = _names(v.get("camera_names"), "camera_names")
        image_topics = _names(v.get("image_topics"), "image_topics")
        info_topics = _names(v.get("camera_info_topics"), "camera_info_topics")
        compressed = v.get("compressed")
        return cls(
            cameras=cameras,
            image_topic=v.get("image_topic") or None,
            camera_info_topic=v.get("camera_info_topic") or None,
            image_topics=image_topics,
            camera_info_topics=info_topics,
            compressed=None if compressed is None else bool(compressed),
            base_frame=str(v.get("base_frame") or "base_link"),
            lidar_topic=v.get("lidar_topic") or None,
            tf_topic=str(v.get("tf_topic") or "/tf"),
            tf_static_topic=str(v.get("tf_static_topic") or "/tf_static"),
            image_rectification=str(v.get("image_rectification") or "auto"),
        )

    def with_flags(
        self,
        cameras: str | Sequence[str] | None = None,
        image_topic: str | None = None,
        camera_info_topic: str | None = None,
        lidar_topic: str | None = None,
        base_frame: str | None = None,
        image_rectification: str | None = None,
    ) -> SensorConfig:
        """The command-line flags over this configuration. ``image_topic``/``camera_info_topic``: a
        ``{camera}`` template or a comma-separated list of topics, one per camera."""
        changes: dict[str, Any] = {}
        if cameras:
            changes["cameras"] = _names(cameras, "--cameras")
        for flag, template_key, list_key in (
            (image_topic, "image_topic", "image_topics"),
            (camera_info_topic, "camera_info_topic", "camera_info_topics"),
        ):
            if not flag:
                continue
            if "{camera}" in flag:
                changes[template_key], changes[list_key] = flag, None
            else:
                changes[list_key], changes[template_key] = (
                    _names(flag, f"--{template_key.replace('_', '-')}"),
                    None,
                )
        if lidar_topic:
            changes["lidar_topic"] = lidar_topic
        if base_frame:
            changes["base_frame"] = base_frame
        if image_rectification:
            changes["image_rectification"] = image_rectification
        return replace(self, **changes) if changes else self

    def rectified(self, image_topic: str) -> bool:
        """Whether the images of ``image_topic`` are rectified: as configured, or ("auto") by ROS' naming:
        a topic with a segment such as image_rect, image_rect_color or image_rect_compressed carries
        rectified images (image_proc's), image_raw, image and image_color raw ones."""
        if self.image_rectification != "auto":
            return self.image_rectification == "rectified"
        return any(_RECTIFIED_SEGMENT.search(seg.lower()) for seg in image_topic.split("/"))

    def camera_order(self, model_cameras: Sequence[str] | None) -> list[str] | None:
        """The configured cameras, else the model's (checkpoint), else None (the nuScenes order of the
        cameras the bag has)."""
        if self.cameras:
            return list(self.cameras)
        return list(model_cameras) if model_cameras else None


def load_parameters_file(path: str | Path) -> dict[str, Any]:
    """The ``ros__parameters`` of a ROS 2 parameter YAML (``/**:`` or a node name as the top key)."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SensorConfigError(f"--params {path}: no such file") from None
    except yaml.YAMLError as err:
        raise SensorConfigError(f"--params {path}: not valid YAML ({str(err).splitlines()[0]})") from None
    found = []
    if isinstance(doc, dict):
        for value in doc.values():
            if isinstance(value, dict) and isinstance(value.get("ros__parameters"), dict):
                found.append(value["ros__parameters"])
    if not found:
        raise SensorConfigError(
            f"--params {path}: no ros__parameters (expected '/**:' or a node name, then 'ros__parameters:')"
        )
    merged: dict[str, Any] = {}
    for params in found:
        merged.update(params)
    return merged


def sensor_config_from_args(args: Any) -> SensorConfig:
    """The sensor configuration of a command line: ``--params FILE`` then the common flags."""
    params = getattr(args, "params", None)
    config = SensorConfig.from_parameters(load_parameters_file(params)) if params else SensorConfig()
    return config.with_flags(
        cameras=getattr(args, "cameras", None),
        image_topic=getattr(args, "image_topic", None),
        camera_info_topic=getattr(args, "camera_info_topic", None),
        lidar_topic=getattr(args, "lidar_topic", None),
        base_frame=getattr(args, "base_frame", None),
        image_rectification=getattr(args, "image_rectification", None),
    )
