"""Message types for reading and writing bags without ROS: a rosbags typestore with vision_msgs added.

rosbags ships sensor_msgs, geometry_msgs, tf2_msgs, visualization_msgs and diagnostic_msgs but not
vision_msgs. Its 4.x definitions are read from the one copy in ``msgs/vision_msgs/msg`` (the files the
pip-only environment builds the rclpy package from), installed to ``share/simdistill_ros/msgs``.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from simdistill_ros.package_share import PACKAGE, PackageDataMissing, share_dir

# The current ROS 2 LTS; rosbags 0.11 also ships KILTED and LYRICAL (identical to JAZZY for the std, geometry,
# sensor, tf2 and visualization msgs); HUMBLE differs only in visualization_msgs/Marker (fields added in Iron)
STORE = Stores.ROS2_JAZZY
_SUBDIR = Path("msgs") / "vision_msgs" / "msg"


def _vision_msgs_dir() -> Path:
    """The source checkout's ``msgs/vision_msgs/msg``, else the installed copy under ``share/``."""
    try:
        return share_dir() / _SUBDIR
    except PackageDataMissing:  # an incomplete install: typestore() names the directory it lacks
        return Path(sys.prefix) / "share" / PACKAGE / _SUBDIR


VISION_MSGS_DIR = _vision_msgs_dir()


@cache
def typestore() -> Typestore:
    """rosbags typestore with the standard ROS 2 messages plus vision_msgs/msg/*."""
    store = get_typestore(STORE)
    types = {}
    for path in sorted(VISION_MSGS_DIR.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"vision_msgs/msg/{path.stem}"))
    if not types:
        raise FileNotFoundError(f"no vision_msgs definitions (*.msg) in {VISION_MSGS_DIR}")
    store.register(types)
    return store
