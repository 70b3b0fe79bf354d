"""The console scripts ``detector_node`` and ``teacher_replay_node``: ``--help`` answered from the parameter
declarations (``nodes.usage``) before rclpy, torch or a model is loaded; the node's module (and with it
rclpy and torch) is imported only when the node is to run. The nodes themselves never import this module
(their ``--help`` and SIGINT/SIGTERM handling live in ``nodes.usage`` and ``nodes.stop_signal``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from simdistill_ros.errors import missing_package_error
from simdistill_ros.nodes.usage import detector_usage, replay_usage, wants_help


def _missing_ros_package(prog: str, exc: ModuleNotFoundError) -> int:
    """One line and exit status 1 for a missing ROS 2 package; any other missing module is re-raised."""
    missing = missing_package_error(exc)
    if missing is None:
        raise exc
    print(f"{prog}: error: {missing}", file=sys.stderr)
    return 1


def detector_node(argv: Sequence[str] | None = None) -> int:
    """Console script ``detector_node``."""
    if wants_help(argv):
        print(detector_usage())
        return 0
    try:
        from simdistill_ros.nodes import detector_node as node
    except ModuleNotFoundError as exc:
        return _missing_ros_package("detector_node", exc)
    return node.main(argv)


def teacher_replay_node(argv: Sequence[str] | None = None) -> int:
    """Console script ``teacher_replay_node``."""
    if wants_help(argv):
        print(replay_usage())
        return 0
    try:
        from simdistill_ros.nodes import teacher_replay_node as node
    except ModuleNotFoundError as exc:
        return _missing_ros_package("teacher_replay_node", exc)
    return node.main(argv)
