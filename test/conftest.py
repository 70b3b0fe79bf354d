"""Every test process runs its ROS traffic on its own domain, on this host only (see ros_isolation.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ros_isolation import isolate_ros  # noqa: E402

isolate_ros()
