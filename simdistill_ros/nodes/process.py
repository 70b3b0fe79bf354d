"""What every node process does around its node: ``--help`` answered from the parameter declarations
before rclpy, torch or a model is loaded, and shutdown on SIGINT/SIGTERM that leaves the rclpy context
valid until the node has logged its last line (so that line reaches /rosout, and rcl never reports
"Failed to publish log message to rosout: publisher's context is invalid").

The console scripts ``detector_node`` and ``teacher_replay_node`` start here; they import the node's
module (and with it rclpy and torch) only when the node is to run.
"""

from __future__ import annotations

import signal
import sys
import textwrap
import threading
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
        "detector_node --ros-args --params-file config/detector.yaml -p model:=student_v2 -p device:=cpu",
    )


def replay_usage() -> str:
    return usage(
        "teacher_replay_node",
        REPLAY_SUMMARY,
        REPLAY_PARAMETERS,
        "teacher_replay_node --ros-args -p bags:='[/data/a, /data/b]' -p output_store:=/data/targets",
    )


class StopSignal:
    """SIGINT and SIGTERM set :attr:`event` (and raise KeyboardInterrupt in the main thread with
    ``interrupt``), in place of rclpy's own handler, which shuts the context down at once. Use with
    ``rclpy.init(signal_handler_options=SignalHandlerOptions.NO)``."""

    def __init__(self, interrupt: bool = False) -> None:
        self.event = threading.Event()
        self.interrupt = interrupt

    def __enter__(self) -> StopSignal:
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.event.set()
        if self.interrupt:
            raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


def detector_node(argv: Sequence[str] | None = None) -> int:
    """Console script ``detector_node``."""
    if wants_help(argv):
        print(detector_usage())
        return 0
    from simdistill_ros.nodes import detector_node as node

    return node.main(argv)


def teacher_replay_node(argv: Sequence[str] | None = None) -> int:
    """Console script ``teacher_replay_node``."""
    if wants_help(argv):
        print(replay_usage())
        return 0
    from simdistill_ros.nodes import teacher_replay_node as node

    return node.main(argv)
