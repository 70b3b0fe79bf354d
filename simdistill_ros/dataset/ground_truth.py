"""Ground truth by timestamp: the one rule that matches a frame to its nuScenes sample.

A frame and its sample share the first camera's stamp (docs/design.md), so a frame takes the sample nearest
in time, if that lies within ``STAMP_TOLERANCE_NS``. ``simdistill detect``, the teacher replay, the
detection recorder and the training frame cache all look ground truth up here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from simdistill_ros.dataset.nuscenes_tables import (
    DEFAULT_VERSION,
    SampleLabels,
    load_split_samples,
    read_splits,
)

STAMP_TOLERANCE_NS = 5_000_000  # a camera cycle is 83 ms: 5 ms cannot reach the neighbouring sample


class GroundTruthIndex:
    """Samples (``SampleLabels``) looked up by a frame's stamp in nanoseconds."""

    def __init__(self, samples: Iterable[SampleLabels], tolerance_ns: int = STAMP_TOLERANCE_NS) -> None:
        self.samples: dict[int, SampleLabels] = {int(s.timestamp_us) * 1000: s for s in samples}
        self.tolerance_ns = int(tolerance_ns)
        self._stamps = np.array(sorted(self.samples), np.int64)

    @classmethod
    def from_dataset(
        cls, dataroot: str | Path, split: str | None = None, version: str = DEFAULT_VERSION
    ) -> GroundTruthIndex:
        """The samples of ``split``, or of every split when ``split`` is None."""
        splits = [split] if split is not None else list(read_splits(dataroot, version))
        return cls(s for name in splits for s in load_split_samples(dataroot, name, version=version))

    def __len__(self) -> int:
        return len(self.samples)

    def lookup(self, stamp_ns: int) -> SampleLabels | None:
        """The sample nearest to ``stamp_ns`` within the tolerance, or None."""
        if not len(self._stamps):
            return None
        j = int(np.searchsorted(self._stamps, stamp_ns))
        best = min(
            (k for k in (j - 1, j) if 0 <= k < len(self._stamps)),
            key=lambda k: abs(int(self._stamps[k]) - stamp_ns),
        )
        if abs(int(self._stamps[best]) - stamp_ns) > self.tolerance_ns:
            return None
        return self.samples[int(self._stamps[best])]
