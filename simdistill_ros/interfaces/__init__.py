"""Message types for reading and writing bags without ROS: a rosbags typestore with vision_msgs added.

rosbags ships sensor_msgs, geometry_msgs, tf2_msgs, visualization_msgs and diagnostic_msgs but not
vision_msgs; its 4.x definitions (the same files the pip-only environment builds) live beside this module.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

VISION_MSGS_DIR = Path(__file__).with_name("vision_msgs")
# The current ROS 2 LTS; rosbags 0.11 also ships KILTED and LYRICAL (identical to JAZZY for the std, geometry,
# sensor, tf2 and visualization msgs); HUMBLE differs only in visualization_msgs/Marker (fields added in Iron)
STORE = Stores.ROS2_JAZZY


@cache
def typestore() -> Typestore:
    """rosbags typestore with the standard ROS 2 messages plus vision_msgs/msg/*."""
    store = get_typestore(STORE)
    types = {}
    for path in sorted(VISION_MSGS_DIR.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"vision_msgs/msg/{path.stem}"))
    store.register(types)
    return store
