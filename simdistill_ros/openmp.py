"""OpenMP waiting bounded for processes that share their cores with others.

PyTorch's CPU kernels run on GNU OpenMP, whose threads spin (busy-wait) for up to 300 000 iterations at
the end of every parallel region before they sleep. On cores of their own that is the fastest way to wait;
on a robot computer, whose cores the drivers, the planner and the other nodes also use, a spinning thread
holds a core that the thread it waits for needs, and a forward of hundreds of small parallel regions
crawls. Measured on the 2-core machine (the ``tiny_v2`` student, 2 torch threads, two single-threaded
trainings beside it): 4.4 s per forward with the default spinning, 0.39-0.42 s with ``GOMP_SPINCOUNT``
1000, 0.31 s with one thread; with the cores to itself all three spin counts tried (1000, 3000, 30 000)
ran as fast as the default (0.21-0.24 s) while not spinning at all (``OMP_WAIT_POLICY=PASSIVE``) was
15-45 % slower (README, Speed). The entry points (the ``simdistill`` command, the node processes) call
:func:`bound_openmp_spin` before torch is imported; a user's own ``GOMP_SPINCOUNT`` or
``OMP_WAIT_POLICY`` is left alone.
"""

from __future__ import annotations

import os
import sys

SPIN_COUNT = 1000


def bound_openmp_spin(spin_count: int = SPIN_COUNT) -> bool:
    """Set ``GOMP_SPINCOUNT`` for this process and its children; True when it took effect. Does nothing
    when the user chose a wait policy or torch is loaded already (OpenMP read its environment then)."""
    if "torch" in sys.modules or "GOMP_SPINCOUNT" in os.environ or "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["GOMP_SPINCOUNT"] = str(spin_count)
    return True
