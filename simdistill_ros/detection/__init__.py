"""The detector without ROS: one synchronised multi-camera frame in, Box3D detections out
(:mod:`simdistill_ros.outputs` turns them into messages). Imports no rclpy.

The names below load :mod:`~simdistill_ros.detection.core` (and torch) on first use only, so that
``detection.parameters`` (read by ``detector_node --help``) imports in well under a second.
"""

from typing import Any

__all__ = ["CameraFrame", "DetectorCore", "FrameInputError", "FrameResult"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from simdistill_ros.detection import core

        return getattr(core, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
