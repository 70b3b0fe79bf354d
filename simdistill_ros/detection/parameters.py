"""The detector node's parameters, declared once: name, default and description (``PARAMETERS``), and
their checks (:func:`detector_params`). ``config/detector.yaml`` and the table in ``docs/detector_node.md``
must agree with ``PARAMETERS`` (``test/test_detector_parameters.py`` checks both). No ROS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from simdistill_ros.defaults import DEFAULT_MODEL, DEFAULT_SCORE_THRESHOLD
from simdistill_ros.detection.core import DetectorCore
from simdistill_ros.errors import UserError

NUSCENES_CAMERAS = [
    "CAM_FRONT",
    "CAM_FRONT_RIGHT",
    "CAM_BACK_RIGHT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_FRONT_LEFT",
]

# name -> (default, description); None: optional, a string array without a value unless the user gives one.
PARAMETERS: dict[str, tuple[Any, str]] = {
    "camera_names": (
        NUSCENES_CAMERAS,
        "Cameras in the order the model sees them (any number >= 1); the first is the sync reference.",
    ),
    "image_topic": ("/{camera}/image_rect_compressed", "Image topic template; {camera} is each camera name."),
    "camera_info_topic": (
        "/{camera}/camera_info",
        "CameraInfo topic template; {camera} is each camera name.",
    ),
    "image_topics": (None, "Optional explicit image topics, one per camera (override image_topic)."),
    "camera_info_topics": (
        None,
        "Optional explicit CameraInfo topics, one per camera (override the template).",
    ),
    "compressed": (True, "true: sensor_msgs/CompressedImage (jpeg/png); false: sensor_msgs/Image."),
    "base_frame": ("base_link", "Frame of the detections; camera extrinsics are looked up into it."),
    "model": (DEFAULT_MODEL, "Checkpoint directory or shipped model name (student_tiny, baseline_tiny)."),
    "device": ("auto", "auto | cuda | cpu; cuda without CUDA falls back to the CPU with a warning."),
    "backend": (
        "torch",
        "torch | onnxruntime (the model's ONNX export, made on first use and cached; or an .onnx model).",
    ),
    "fp16": (False, "Half-precision inference (CUDA only; ignored with a warning on the CPU)."),
    "score_threshold": (
        DEFAULT_SCORE_THRESHOLD,
        f"Minimum detection score published ({DEFAULT_SCORE_THRESHOLD} suits the shipped student).",
    ),
    "max_detections": (100, "At most this many detections per frame (highest scores)."),
    "sync_slop": (0.06, "Seconds: every image of a frame lies within this of the reference camera's."),
    "sync_queue_size": (10, "Messages kept per topic while waiting for a synchronised set."),
    "max_stamp_ahead": (
        10.0,
        "Seconds: images stamped further ahead of the node's clock are refused (0: no check).",
    ),
    "frame_queue_size": (2, "Synchronised frames waiting for the model; the oldest is dropped when full."),
    "detections_topic": ("~/detections", "vision_msgs/Detection3DArray output topic."),
    "markers_topic": ("~/markers", "visualization_msgs/MarkerArray output topic (RViz)."),
    "camera_timeout": (1.0, "Seconds without images before a camera is reported stale in /diagnostics."),
    "diagnostics_period": (1.0, "Seconds between /diagnostics messages."),
}


class StartupError(UserError):
    """The node cannot start (model, parameters): one line to stderr, non-zero exit."""


@dataclass
class DetectorParams:
    """The node's parameters, checked (see ``PARAMETERS`` for defaults and descriptions)."""

    camera_names: list[str]
    image_topics: list[str]
    camera_info_topics: list[str]
    compressed: bool
    base_frame: str
    model: str
    device: str
    backend: str
    fp16: bool
    score_threshold: float
    max_detections: int
    sync_slop: float
    sync_queue_size: int
    max_stamp_ahead: float
    frame_queue_size: int
    detections_topic: str
    markers_topic: str
    camera_timeout: float
    diagnostics_period: float


def expand_topics(template: str, names: list[str]) -> list[str]:
    """Per-camera topics from a ``{camera}`` template."""
    return [template.format(camera=n) for n in names]


def detector_params(values: dict[str, Any]) -> DetectorParams:
    """Check the parameter values (name -> value; optional ones as [] when unset) and expand the topic
    templates. Raises :class:`StartupError` naming the bad parameter."""
    values = dict(values)
    names = [str(n) for n in values["camera_names"]]
    if not names or any(not n for n in names):
        raise StartupError(f"camera_names must list at least one camera, got {names}")
    if len(set(names)) != len(names):
        raise StartupError(f"camera_names must be unique, got {names}")
    for key, template in (("image_topics", "image_topic"), ("camera_info_topics", "camera_info_topic")):
        if not values[key]:
            if "{camera}" not in values[template]:
                raise StartupError(f"{template} must contain {{camera}}, got {values[template]!r}")
            values[key] = expand_topics(values[template], names)
        elif len(values[key]) != len(names):
            raise StartupError(f"{key} has {len(values[key])} topics for {len(names)} cameras {names}")
    for key in ("sync_queue_size", "frame_queue_size", "max_detections"):
        if int(values[key]) < 1:
            raise StartupError(f"{key} must be >= 1, got {values[key]}")
    if float(values["max_stamp_ahead"]) < 0:
        raise StartupError(
            f"max_stamp_ahead must be >= 0 seconds (0: no check), got {values['max_stamp_ahead']}"
        )
    if values["device"] not in ("auto", "cpu") and not str(values["device"]).startswith("cuda"):
        raise StartupError(f"device must be auto, cpu or cuda[:N], got {values['device']!r}")
    return DetectorParams(
        camera_names=names,
        image_topics=[str(t) for t in values["image_topics"]],
        camera_info_topics=[str(t) for t in values["camera_info_topics"]],
        compressed=bool(values["compressed"]),
        base_frame=str(values["base_frame"]),
        model=str(values["model"]),
        device=str(values["device"]),
        backend=str(values["backend"]),
        fp16=bool(values["fp16"]),
        score_threshold=float(values["score_threshold"]),
        max_detections=int(values["max_detections"]),
        sync_slop=float(values["sync_slop"]),
        sync_queue_size=int(values["sync_queue_size"]),
        max_stamp_ahead=float(values["max_stamp_ahead"]),
        frame_queue_size=int(values["frame_queue_size"]),
        detections_topic=str(values["detections_topic"]),
        markers_topic=str(values["markers_topic"]),
        camera_timeout=float(values["camera_timeout"]),
        diagnostics_period=float(values["diagnostics_period"]),
    )


def load_core(p: DetectorParams, warn: Callable[[str], None] = print) -> DetectorCore:
    """The detector core the parameters ask for; CUDA asked for without CUDA falls back to the CPU (told
    through ``warn``). Any failure to load is a :class:`StartupError` in one line."""
    device = p.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        warn(f"device {device!r} asked for but CUDA is not available: using the CPU")
        device = "cpu"
    try:
        core = DetectorCore.from_checkpoint(
            p.model,
            device,
            p.backend,
            fp16=p.fp16,
            score_threshold=p.score_threshold,
            max_detections=p.max_detections,
            camera_names=p.camera_names,
        )
    except Exception as err:  # the model file, its type, the device: told in one line
        raise StartupError(f"cannot load model {p.model!r}: {err}") from None
    for note in core.notes:
        warn(note)
    return core
