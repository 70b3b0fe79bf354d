"""Message types for reading and writing bags without ROS: a rosbags typestore with vision_msgs and
autoware_perception_msgs added.

rosbags ships sensor_msgs, geometry_msgs, tf2_msgs, visualization_msgs and diagnostic_msgs but neither
vision_msgs nor autoware_perception_msgs. Their definitions are read from the one copy in ``msgs/<pkg>/msg``
(the files the pip-only environment builds the rclpy packages from), installed to
``share/simdistill_ros/msgs``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

# The current ROS 2 LTS; rosbags 0.11 also ships KILTED and LYRICAL (identical to JAZZY for the std, geometry,
# sensor, tf2 and visualization msgs); HUMBLE differs only in visualization_msgs/Marker (fields added in Iron)
STORE = Stores.ROS2_JAZZY
# The interface packages this project carries definitions of (msgs/<name>/msg/*.msg).
PACKAGES = ("vision_msgs", "autoware_perception_msgs")


def _msgs_dir(package: str) -> Path:
    """The source checkout's ``msgs/<package>/msg``, else the installed copy under ``share/``."""
    subdir = Path("msgs") / package / "msg"
    here = Path(__file__).resolve()
    checkout = here.parents[2] / subdir
    if checkout.is_dir():
        return checkout
    try:  # optional: only a ROS install has ament_index_python
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory("simdistill_ros")) / subdir
        if share.is_dir():
            return share
    except Exception:  # not installed with ament, or no sourced environment
        pass
    # <prefix>/lib/pythonX.Y/site-packages/simdistill_ros/interfaces/__init__.py -> <prefix>/share/...
    return here.parents[5] / "share" / "simdistill_ros" / subdir


MSGS_DIRS = {package: _msgs_dir(package) for package in PACKAGES}
VISION_MSGS_DIR = MSGS_DIRS["vision_msgs"]
AUTOWARE_PERCEPTION_MSGS_DIR = MSGS_DIRS["autoware_perception_msgs"]


@cache
def typestore() -> Typestore:
    """rosbags typestore with the standard ROS 2 messages plus vision_msgs/msg/* and
    autoware_perception_msgs/msg/* (the detection messages)."""
    store = get_typestore(STORE)
    types = {}
    for package, folder in MSGS_DIRS.items():
        found = sorted(folder.glob("*.msg"))
        if not found:
            raise FileNotFoundError(f"no {package} definitions (*.msg) in {folder}")
        for path in found:
            types.update(get_types_from_msg(path.read_text(), f"{package}/msg/{path.stem}"))
    store.register(types)
    return store
