"""Where the package's data lives: ``package.xml``, ``config/``, ``launch/``, ``models/`` (the shipped
checkpoints) and ``msgs/vision_msgs``. In a source checkout that is the checkout's root; installed (a wheel,
colcon, ``pip install --user``), it is ``<prefix>/share/simdistill_ros`` of the prefix the code was
installed to, found from this file's own location, so it needs no sourced ROS environment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from simdistill_ros.errors import UserError

PACKAGE = "simdistill_ros"
_HERE = Path(__file__).resolve().parent  # .../simdistill_ros


class PackageDataMissing(UserError, FileNotFoundError):
    """No directory with the package's data (package.xml) was found: an incomplete install."""


def _candidates() -> list[Path]:
    found = [_HERE.parent]  # the source checkout (also an editable install)
    # <prefix>/lib/pythonX.Y/site-packages/simdistill_ros -> <prefix>/share/simdistill_ros: the install
    # this code came from (a venv, colcon's install/<pkg>, ~/.local, /usr/local)
    if len(_HERE.parents) > 3:
        found.append(_HERE.parents[3] / "share" / PACKAGE)
    # a ROS environment's index (AMENT_PREFIX_PATH), for layouts other than the above
    ament = os.environ.get("AMENT_PREFIX_PATH", "")
    found += [Path(p) / "share" / PACKAGE for p in ament.split(os.pathsep) if p]
    found.append(Path(sys.prefix) / "share" / PACKAGE)
    return found


def share_dir() -> Path:
    """The directory holding package.xml and the package's data (see the module docstring); the first of:
    the source checkout, the code's install prefix, each AMENT_PREFIX_PATH entry, ``sys.prefix``."""
    candidates = _candidates()
    for candidate in candidates:
        if (candidate / "package.xml").is_file() and (candidate / "models").is_dir():
            return candidate
    looked = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise PackageDataMissing(
        f"the data of {PACKAGE} (package.xml, models/, msgs/) is not installed: looked in {looked}; "
        "reinstall the package (pip install of the wheel, or colcon build)"
    )
