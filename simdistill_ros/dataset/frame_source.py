"""Labelled frames, one interface over two sources: the bags + tables (decoded once into the frame cache,
:class:`CachedFrames`), or a nuScenes dataroot's sensor files read through the devkit
(``dataset.dataroot.DatarootFrames``).

Training, evaluation and the probes see :class:`FrameSource`: ``len``, ``source[i]`` -> a
:class:`LabelledFrame`, and the camera names in model order. ``dataset.split_frames.open_split_frames``
picks the source.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from simdistill_ros.dataset.frame_cache import CachedScene
from simdistill_ros.errors import UserError


@dataclass
class LabelledFrame:
    """One sample: every camera, the LiDAR and the ground truth, in the base frame at the sample time."""

    token: str  # the nuScenes sample token
    key: str  # "<scene>/<stamp_ns>": names the frame in logs and target stores
    images: np.ndarray  # (N, H, W, 3) uint8 RGB, cameras in ``FrameSource.camera_names`` order
    intrinsics: np.ndarray  # (N, 3, 3)
    cam_to_base: np.ndarray  # (N, 4, 4)
    points: np.ndarray  # (P, 4) x, y, z, intensity; (P, 5) with a time lag (s) when sweeps are accumulated
    boxes: np.ndarray  # (M, 9), docs/design.md's box array
    labels: np.ndarray  # (M,) indices into NUSCENES_CLASSES


class FrameSource(ABC):
    """The labelled frames of one split."""

    camera_names: list[str]

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, i: int) -> LabelledFrame: ...


class CachedFrames(FrameSource):
    """Frames of the bags, decoded once per scene into the frame cache (``dataset.frame_cache``)."""

    def __init__(self, scenes: list[CachedScene]) -> None:
        self.scenes = scenes
        self.camera_names = list(scenes[0].camera_names) if scenes else []
        if any(s.camera_names != self.camera_names for s in scenes):
            raise UserError(
                "the scenes' cameras differ: "
                + "; ".join(
                    f"{s.scene}: {s.camera_names}" for s in scenes if s.camera_names != self.camera_names
                )
            )
        self.index = [(si, fi) for si, s in enumerate(scenes) for fi in range(len(s))]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> LabelledFrame:
        si, fi = self.index[i]
        scene = self.scenes[si]
        boxes, labels = scene.frame_boxes(fi)
        return LabelledFrame(
            token=scene.tokens[fi],
            key=f"{scene.scene}/{int(scene.stamps_ns[fi])}",
            images=scene.images[fi],
            intrinsics=scene.intrinsics[fi],
            cam_to_base=scene.cam_to_base[fi],
            points=scene.frame_points(fi),
            boxes=boxes,
            labels=labels,
        )
