"""Keeps the ROS tests of one pytest process to themselves: discovery limited to this host and a DDS domain
id that no other test process on the machine holds (claimed with a lock file, released when the process
exits), so a second copy of the suite, or anything else on the network, cannot add or take messages."""

from __future__ import annotations

import atexit
import fcntl
import os
import tempfile
from pathlib import Path

# 0-101 keep Fast DDS's default port mapping valid for many participants per domain; 0 is everyone's default
DOMAIN_IDS = range(1, 102)
_claim: tuple[int, object] | None = None


def claim_domain_id() -> int:
    """The domain id of this process: the first free one from a pid-dependent start, held by an exclusive
    lock on a file in the temp directory until the process ends (a crashed process frees it too)."""
    global _claim
    if _claim is not None:
        return _claim[0]
    lock_dir = Path(tempfile.gettempdir()) / "simdistill-ros-domains"
    lock_dir.mkdir(exist_ok=True)
    start = os.getpid() % len(DOMAIN_IDS)
    for k in range(len(DOMAIN_IDS)):
        domain = DOMAIN_IDS[(start + k) % len(DOMAIN_IDS)]
        f = open(lock_dir / f"{domain}.lock", "w")  # noqa: SIM115 - held open for the process's lifetime
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        _claim = (domain, f)
        atexit.register(f.close)  # closed (and unlocked) explicitly: no ResourceWarning at exit
        return domain
    raise RuntimeError(f"all ROS domain ids {DOMAIN_IDS.start}-{DOMAIN_IDS.stop - 1} are held by other tests")


def isolate_ros() -> int:
    """Set this process's (and so its children's) ROS environment; returns the domain id."""
    domain = claim_domain_id()
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # Iron and later (the pip wheels: Kilted)
    os.environ.pop("ROS_STATIC_PEERS", None)
    if os.environ.get("ROS_DISTRO", "") in ("foxy", "galactic", "humble"):
        os.environ["ROS_LOCALHOST_ONLY"] = "1"  # the older switch, removed after Jazzy
    return domain
