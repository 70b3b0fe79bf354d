"""Why a camera's messages do not arrive, without ROS: the node asks the graph who publishes each silent
camera's image topic and with which reliability (``get_publishers_info_by_topic``), and this module names
the likely cause and the fix for /diagnostics and the log.

Two causes are common and invisible otherwise (the camera only looks "stale"):

- a QoS mismatch: a best-effort publisher never connects to a reliable subscription (ROS' QoS rules);
- size: a reliable publisher connects to the node's best-effort subscription, but a large message (a raw
  1600x900 rgb8 image is 4.3 MB) travels as many fragments, and best-effort delivery drops the whole
  message when one fragment is lost. With Fast DDS here, a best-effort subscriber got every message up to
  about 480 KB and none of 1.28 MB.
"""

from __future__ import annotations

from dataclasses import dataclass

from simdistill_ros.detection.parameters import BEST_EFFORT, RELIABLE


@dataclass(frozen=True)
class PublisherQos:
    """One publisher of a topic, as the ROS graph reports it."""

    node: str  # fully qualified node name; "" while the graph does not know it yet
    reliability: str  # BEST_EFFORT or RELIABLE (anything else: unknown)
    message_type: str = ""  # e.g. sensor_msgs/msg/Image


def silent_camera_reason(
    camera: str,
    topic: str,
    publishers: list[PublisherQos],
    ours: str,
    silent_s: float | None,
    message_type: str = "",
) -> str:
    """One line: why ``camera``'s images on ``topic`` (published by ``publishers``) have not arrived for
    ``silent_s`` seconds (None: never) at a subscription of reliability ``ours`` and type
    ``message_type``, and what to do."""
    since = "no image has arrived" if silent_s is None else f"no image for {silent_s:.1f} s"
    if not publishers:
        return f"{camera}: {since}: nothing publishes {topic}"
    names = ", ".join(sorted({p.node for p in publishers if p.node}))
    count = f"{len(publishers)} publisher{'s' if len(publishers) > 1 else ''}" + (
        f" ({names})" if names else ""
    )
    if message_type and all(p.message_type and p.message_type != message_type for p in publishers):
        theirs = ", ".join(sorted({p.message_type for p in publishers}))
        return (
            f"{camera}: {since} although {topic} has {count}: they publish {theirs} and this node "
            f"subscribes {message_type}; set the compressed parameter to match"
        )
    best_effort = [p for p in publishers if p.reliability == BEST_EFFORT]
    if ours == RELIABLE and len(best_effort) == len(publishers):
        return (
            f"{camera}: {since} although {topic} has {count}: QoS mismatch, they publish best effort and "
            "this node subscribes reliable, so they never connect; set camera_qos_reliability to "
            "best_effort (or publish reliable)"
        )
    if ours == BEST_EFFORT:
        return (
            f"{camera}: {since} although {topic} has {count}: likely lost in transport, as best-effort "
            "delivery drops a large message (a raw image of a few MB) whole when one of its fragments is "
            "lost; set camera_qos_reliability to reliable"
        )
    return f"{camera}: {since} although {topic} has {count}, connected reliably: they publish nothing now"
