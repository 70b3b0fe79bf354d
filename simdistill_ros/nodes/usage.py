"""The nodes' ``--help``: usage, what the node does and each parameter from its declaration, answered
before rclpy, torch or a model is loaded."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from simdistill_ros.detection.parameters import PARAMETERS as DETECTOR_PARAMETERS
from simdistill_ros.detection.parameters import UNSET, Param
from simdistill_ros.replay.parameters import PARAMETERS as REPLAY_PARAMETERS

DETECTOR_SUMMARY = (
    "Live camera-only 3D detection: N synchronised cameras (image + CameraInfo) in, vision_msgs/"
    "Detection3DArray and/or autoware_perception_msgs/DetectedObjects (parameter outputs), a MarkerArray "
    "and an annotated ~/debug/image out (docs/detector_node.md)."
)
REPLAY_SUMMARY = (
    "The LiDAR-camera teacher over rosbag2 bags into a target store; each frame's teacher boxes are "
    "published on ~/teacher_detections (docs/teacher_replay.md). Exits when the bags are done."
)


def wants_help(argv: Sequence[str] | None) -> bool:
    """-h/--help among the arguments before ``--ros-args`` (``argv[0]`` is the program)."""
    args = list(sys.argv if argv is None else argv)[1:]
    if "--ros-args" in args:
        args = args[: args.index("--ros-args")]
    return "-h" in args or "--help" in args


def _value_text(value: Any) -> str:
    if value is None:
        value = UNSET
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(repr(v) if v == "" else str(v) for v in value) + "]"
    return repr(value) if value == "" else str(value)


def usage(prog: str, summary: str, parameters: Mapping[str, Param], example: str) -> str:
    """The ``--help`` text: usage, what the node does, each parameter (default, live or read-only, what
    it means), and an example."""
    lines = [
        f"usage: {prog} [-h] [--ros-args [-p NAME:=VALUE]... [--params-file FILE] [-r OLD:=NEW]...]",
        "",
        *textwrap.wrap(summary, 100),
        "",
    ]
    if any(p.live for p in parameters.values()):
        lines += [
            "parameters (-p NAME:=VALUE; live ones can also be changed with `ros2 param set` while the node",
            "runs; `ros2 param set` refuses read-only ones with a reason):",
        ]
    else:
        lines.append("parameters (-p NAME:=VALUE; all read-only: read once at start-up):")
    for name, p in parameters.items():
        kind = "live" if p.live else "read-only"
        lines.append(f"  {name} (default {_value_text(p.default)}; {kind})")
        lines += textwrap.wrap(p.description, 96, initial_indent="      ", subsequent_indent="      ")
    lines += ["", "example:", f"  {example}"]
    return "\n".join(lines)


def detector_usage() -> str:
    return usage(
        "detector_node",
        DETECTOR_SUMMARY,
        DETECTOR_PARAMETERS,
        "detector_node --ros-args --params-file config/detector.yaml -p model:=baseline_v3 -p device:=cpu",
    )


def replay_usage() -> str:
    return usage(
        "teacher_replay_node",
        REPLAY_SUMMARY,
        REPLAY_PARAMETERS,
        "teacher_replay_node --ros-args -p bags:='[/data/a, /data/b]' -p output_store:=/data/targets",
    )
