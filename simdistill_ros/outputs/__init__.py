"""boxes -> messages: what the detector publishes and bags, one module per message family.

- :mod:`.vision`: vision_msgs/Detection3DArray (box, class name, score; no velocity field);
- :mod:`.autoware`: autoware_perception_msgs/DetectedObjects (box, Autoware label, existence probability,
  the velocity in ``twist_with_covariance``), the message Autoware's camera and LiDAR detectors publish;
- :mod:`.markers`: visualization_msgs/MarkerArray for RViz/Foxglove (boxes, labels, velocity arrows);
- :mod:`.records`: the JSON records the detection recorder writes.

These build plain field dataclasses from :class:`~simdistill_ros.geometry.Box3D` lists and read messages back
(attribute access only: rclpy and rosbags messages alike), without ROS. :mod:`.ros` copies the fields into
rclpy message classes at the edge (the node, ``simdistill detect``, the teacher replay node).
"""

from __future__ import annotations

from collections.abc import Sequence

from simdistill_ros.errors import UserError

# The values of the node parameter `outputs` and of `simdistill detect --outputs`.
VISION_MSGS = "vision_msgs"
AUTOWARE = "autoware"
OUTPUTS = (VISION_MSGS, AUTOWARE)
DEFAULT_OUTPUTS = (VISION_MSGS,)
# Message type names (rosbag2 / rosbags spelling)
DETECTION_ARRAY = "vision_msgs/msg/Detection3DArray"
DETECTED_OBJECTS = "autoware_perception_msgs/msg/DetectedObjects"
MARKER_ARRAY = "visualization_msgs/msg/MarkerArray"
MESSAGE_TYPE = {VISION_MSGS: DETECTION_ARRAY, AUTOWARE: DETECTED_OBJECTS}
# The node's topics under its default name: what `simdistill detect` writes, the recorder and
# `simdistill evaluate --detections` read
DETECTIONS_TOPIC = "/simdistill_detector/detections"
OBJECTS_TOPIC = "/simdistill_detector/objects"
MARKERS_TOPIC = "/simdistill_detector/markers"
OUTPUT_TOPIC = {VISION_MSGS: DETECTIONS_TOPIC, AUTOWARE: OBJECTS_TOPIC}


class OutputsError(UserError):
    """An output that cannot be made: an unknown name, or a message package that is not installed."""


def parse_outputs(values: Sequence[str] | str) -> tuple[str, ...]:
    """The chosen outputs in ``OUTPUTS`` order, each once; ``values`` a list or a comma-separated string.
    Raises :class:`OutputsError` on an unknown name or an empty choice."""
    items = values.split(",") if isinstance(values, str) else list(values)
    names = {str(v).strip() for v in items if str(v).strip()}
    unknown = sorted(names - set(OUTPUTS))
    if unknown:
        raise OutputsError(f"unknown output {', '.join(unknown)}: choose from {', '.join(OUTPUTS)}")
    if not names:
        raise OutputsError(f"choose at least one output of {', '.join(OUTPUTS)}")
    return tuple(o for o in OUTPUTS if o in names)
