"""The detector node's parameters, declared once: name, default, description and whether it can change
while the node runs (``PARAMETERS``), and their checks (:func:`detector_params`, :func:`check_live`).
``config/detector.yaml`` and the table in ``docs/detector_node.md`` must agree with ``PARAMETERS``
(``test/test_detector_parameters.py`` checks both). No ROS, no torch: ``detector_node --help`` reads this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from simdistill_ros.defaults import DEFAULT_MODEL, DEFAULT_SCORE_THRESHOLD
from simdistill_ros.errors import UserError
from simdistill_ros.frames.sensors import NUSCENES_CAMERAS, SensorConfig, SensorConfigError
from simdistill_ros.outputs import DEFAULT_OUTPUTS, OutputsError, parse_outputs
from simdistill_ros.outputs.autoware import DEFAULT_ORIENTATION, orientation_availability

__all__ = [
    "NUSCENES_CAMERAS",
    "PARAMETERS",
    "DetectorParams",
    "StartupError",
    "detector_params",
    "with_cameras",
]


# camera_qos_reliability values (rclpy's ReliabilityPolicy names, lower case)
BEST_EFFORT, RELIABLE = "best_effort", "reliable"
RELIABILITIES = (BEST_EFFORT, RELIABLE)

# Third entry of a declaration: the parameter can be set while the node runs (`ros2 param set`), checked by
# check_live. Every other parameter is read-only: it shapes subscriptions, publishers or the model, which
# are built once at start-up, so a set would change nothing and is refused with a reason instead.
LIVE = True
# The ROS value of an optional string array that is unset. Not []: a parameter file cannot hold an empty
# list (no type), and rclpy's get_parameters service answers nothing when one asked-for parameter has no
# value (`ros2 param dump` would print an empty dict). [''] is typed, dumps, and reloads.
UNSET = [""]


class Param(NamedTuple):
    """One declared parameter. ``default`` None: an optional string array, ``UNSET`` until given."""

    default: Any
    description: str
    live: bool = False

    @property
    def ros_default(self) -> Any:
        return list(UNSET) if self.default is None else self.default


# name -> (default, description[, LIVE]); None: optional, a string array without a value unless given.
_DECLARED: dict[str, tuple] = {
    "camera_names": (
        None,
        "Cameras in the order the model sees them (any number >= 1); the first is the sync reference. "
        "Unset: the cameras the model was trained on (its meta.json), else the 6 nuScenes cameras.",
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
    "image_rectification": (
        "auto",
        "auto | rectified | raw: rectified images use CameraInfo's P (the rectified camera matrix), raw "
        "ones K (a distortion is warned of); auto: rectified where the image topic's name says so "
        "(image_rect, image_rect_color, ...).",
    ),
    "camera_qos_reliability": (
        BEST_EFFORT,
        "QoS reliability of the image and CameraInfo subscriptions: best_effort (sensor data: a late "
        "image is dropped, not resent) or reliable (needed for large raw images, which best-effort delivery "
        "loses whole; a best-effort publisher then does not connect).",
    ),
    "camera_qos_depth": (5, "QoS history depth (keep last) of the image and CameraInfo subscriptions."),
    "base_frame": ("base_link", "Frame of the detections; camera extrinsics are looked up into it."),
    "model": (
        DEFAULT_MODEL,
        "Checkpoint directory or shipped model name (baseline_v3, baseline_depth_v3, student_v2, ...).",
    ),
    "device": ("auto", "auto | cuda | cpu; cuda without CUDA falls back to the CPU with a warning."),
    "backend": (
        "torch",
        "torch | onnxruntime (the model's ONNX export, made on first use and cached; or an .onnx model).",
    ),
    "fp16": (False, "Half-precision inference (CUDA only; ignored with a warning on the CPU)."),
    "score_threshold": (
        DEFAULT_SCORE_THRESHOLD,
        f"Minimum detection score published ({DEFAULT_SCORE_THRESHOLD} suits the shipped student).",
        LIVE,
    ),
    "max_detections": (100, "At most this many detections per frame (highest scores).", LIVE),
    "sync_slop": (0.06, "Seconds: every image of a frame lies within this of the reference camera's."),
    "sync_queue_size": (10, "Messages kept per topic while waiting for a synchronised set."),
    "max_stamp_ahead": (
        10.0,
        "Seconds: images stamped further ahead of the node's clock are refused (0: no check).",
        LIVE,
    ),
    "frame_queue_size": (
        2,
        "Synchronised frames waiting for the model; the oldest is dropped when full.",
        LIVE,
    ),
    "outputs": (
        list(DEFAULT_OUTPUTS),
        "Detection messages to publish: vision_msgs (Detection3DArray on detections_topic), autoware "
        "(autoware_perception_msgs/DetectedObjects with velocity on objects_topic), or both.",
    ),
    "detections_topic": ("~/detections", "vision_msgs/Detection3DArray output topic."),
    "objects_topic": ("~/objects", "autoware_perception_msgs/DetectedObjects output topic."),
    "orientation_availability": (
        DEFAULT_ORIENTATION,
        "DetectedObjects' orientation_availability: available | sign_unknown | unavailable "
        "(sign_unknown: the shipped models reverse about a third of the cars).",
    ),
    "markers_topic": ("~/markers", "visualization_msgs/MarkerArray output topic (RViz)."),
    "camera_timeout": (
        1.0,
        "Seconds without images before a camera is reported stale in /diagnostics.",
        LIVE,
    ),
    "diagnostics_period": (1.0, "Seconds between /diagnostics messages.", LIVE),
    "debug_image_rate": (
        1.0,
        "At most this many ~/debug/image pictures per second (0: off); drawn only while subscribed.",
        LIVE,
    ),
}
PARAMETERS: dict[str, Param] = {name: Param(*entry) for name, entry in _DECLARED.items()}

# The checks of the live parameters, at start-up and on every `ros2 param set`: (test, what it must be).
_LIVE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "score_threshold": (lambda v: 0.0 <= v <= 1.0, "between 0 and 1"),
    "max_detections": (lambda v: v >= 1, ">= 1"),
    "frame_queue_size": (lambda v: v >= 1, ">= 1"),
    "max_stamp_ahead": (lambda v: v >= 0, ">= 0 seconds (0: no check)"),
    "camera_timeout": (lambda v: v > 0, "> 0 seconds"),
    "diagnostics_period": (lambda v: v > 0, "> 0 seconds"),
    "debug_image_rate": (lambda v: v >= 0, ">= 0 (0: off)"),
}


class StartupError(UserError):
    """The node cannot start (model, parameters): one line to stderr, non-zero exit."""


@dataclass
class DetectorParams:
    """The node's parameters, checked (see ``PARAMETERS`` for defaults and descriptions). The sensor
    parameters are ``sensors`` (the :class:`SensorConfig` every entry point takes); ``camera_names`` and
    the per-camera topics are filled by :func:`with_cameras` once the model says which cameras it knows."""

    sensors: SensorConfig
    camera_names: list[str]
    image_topics: list[str]
    camera_info_topics: list[str]
    compressed: bool
    camera_qos_reliability: str
    camera_qos_depth: int
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
    outputs: tuple[str, ...]
    detections_topic: str
    objects_topic: str
    orientation_availability: str
    markers_topic: str
    camera_timeout: float
    diagnostics_period: float
    debug_image_rate: float


def expand_topics(template: str, names: list[str]) -> list[str]:
    """Per-camera topics from a ``{camera}`` template."""
    return [template.format(camera=n) for n in names]


def check_live(name: str, value: Any) -> str:
    """Why ``value`` is refused for the live parameter ``name``; "" when it is accepted."""
    if not PARAMETERS[name].live:
        return f"{name} is read-only: it is used once at start-up (restart the node to change it)"
    test, wanted = _LIVE_CHECKS[name]
    return "" if test(value) else f"{name} must be {wanted}, got {value}"


def is_unset(value: Any) -> bool:
    """An optional string array without a value: ``UNSET`` (or empty)."""
    return not value or list(value) == UNSET


def detector_params(values: dict[str, Any]) -> DetectorParams:
    """Check the parameter values (name -> value; optional ones ``UNSET`` or [] when unset). Raises
    :class:`StartupError` naming the bad parameter. With ``camera_names`` set, the topic templates are
    expanded here; unset, :func:`with_cameras` does it with the model's cameras."""
    values = {k: ([] if PARAMETERS[k].default is None and is_unset(v) else v) for k, v in values.items()}
    if any(not str(n) for n in values["camera_names"] or []):
        raise StartupError(f"camera_names must not hold empty names, got {values['camera_names']}")
    try:
        sensors = SensorConfig.from_parameters(values)
    except SensorConfigError as err:
        raise StartupError(str(err)) from None
    if (reliability := values["camera_qos_reliability"]) not in RELIABILITIES:
        raise StartupError(
            f"camera_qos_reliability must be {' or '.join(RELIABILITIES)}, got {reliability!r}"
        )
    if int(values["camera_qos_depth"]) < 1:
        raise StartupError(f"camera_qos_depth must be >= 1, got {values['camera_qos_depth']}")
    if int(values["sync_queue_size"]) < 1:
        raise StartupError(f"sync_queue_size must be >= 1, got {values['sync_queue_size']}")
    for key in _LIVE_CHECKS:
        if reason := check_live(key, values[key]):
            raise StartupError(reason)
    try:
        outputs = parse_outputs(values["outputs"])
        orientation_availability(str(values["orientation_availability"]))
    except OutputsError as err:
        raise StartupError(f"{err} (parameters outputs, orientation_availability)") from None
    if values["device"] not in ("auto", "cpu") and not str(values["device"]).startswith("cuda"):
        raise StartupError(f"device must be auto, cpu or cuda[:N], got {values['device']!r}")
    params = DetectorParams(
        sensors=sensors,
        camera_names=[],
        image_topics=[],
        camera_info_topics=[],
        compressed=bool(values["compressed"]),
        camera_qos_reliability=str(values["camera_qos_reliability"]),
        camera_qos_depth=int(values["camera_qos_depth"]),
        base_frame=sensors.base_frame,
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
        outputs=outputs,
        detections_topic=str(values["detections_topic"]),
        objects_topic=str(values["objects_topic"]),
        orientation_availability=str(values["orientation_availability"]),
        markers_topic=str(values["markers_topic"]),
        camera_timeout=float(values["camera_timeout"]),
        diagnostics_period=float(values["diagnostics_period"]),
        debug_image_rate=float(values["debug_image_rate"]),
    )
    return with_cameras(params, None) if sensors.cameras else params


def with_cameras(p: DetectorParams, model_cameras: Sequence[str] | None) -> DetectorParams:
    """``p`` with its cameras (configured, else the model's, else nuScenes) and their topics."""
    names = p.sensors.camera_order(model_cameras) or list(NUSCENES_CAMERAS)
    s = p.sensors
    images = list(s.image_topics) if s.image_topics else expand_topics(s.image_topic or "", names)
    infos = (
        list(s.camera_info_topics)
        if s.camera_info_topics
        else expand_topics(s.camera_info_topic or "", names)
    )
    return replace(p, camera_names=names, image_topics=images, camera_info_topics=infos)
