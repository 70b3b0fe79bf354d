"""The detector node's own ROS 2 messages besides its detections (those are :mod:`simdistill_ros.outputs`):
the debug picture and the diagnostics.

Imported only where rclpy's message packages exist; the imports are inside the functions so that importing
this module costs nothing.
"""

from __future__ import annotations

from typing import Any

from simdistill_ros.outputs.ros import header_msg


def image_msg(rgb: Any, stamp_ns: int, frame_id: str) -> Any:
    """sensor_msgs/Image (rgb8) of an (H, W, 3) uint8 array."""
    from sensor_msgs.msg import Image

    h, w = rgb.shape[:2]
    data = rgb.tobytes() if rgb.flags.c_contiguous else rgb.copy().tobytes()
    return Image(
        header=header_msg(stamp_ns, frame_id), height=h, width=w, encoding="rgb8", step=w * 3, data=data
    )


def diagnostic_array_msg(
    level: int, name: str, message: str, hardware_id: str, values: dict[str, str], stamp_ns: int
) -> Any:
    """diagnostic_msgs/DiagnosticArray with one status; ``level`` 0 OK, 1 WARN, 2 ERROR."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus(
        level=(DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR)[level],
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in values.items()],
    )
    return DiagnosticArray(header=header_msg(stamp_ns, ""), status=[status])
