"""Transforms for the live pipeline: the tf tree where tf2_ros is not installed, the /tf and /tf_static
messages added to it, and the frames kept while their transforms have not arrived (a late /tf_static).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from simdistill_ros.frames.messages import transform_from_msg
from simdistill_ros.frames.tf_tree import TransformTree
from simdistill_ros.geometry import Transform

TF_WAIT_FRAMES = 16  # frames kept while their transforms have not arrived (a late /tf_static)


class Transforms:
    """The tf tree where tf2_ros is not installed: /tf_static, and /tf for sensors that move (a dynamic
    camera mount, or converters that repeat every extrinsic on /tf). Thread-safe."""

    def __init__(self, tolerance_ns: int = 50_000_000) -> None:
        self._tree = TransformTree()
        self._lock = threading.Lock()
        self.tolerance_ns = int(tolerance_ns)

    def add(self, parent: str, child: str, transform: Transform) -> None:
        """A static transform; raises ValueError for one the tree cannot take."""
        with self._lock:
            self._tree.add_static(parent, child, transform)

    def clear(self) -> None:
        """Forget the dynamic transforms (a time jump); the static ones stay, as in tf2."""
        with self._lock:
            self._tree.clear()

    def add_dynamic(self, parent: str, child: str, transform: Transform, stamp_ns: int) -> None:
        """A /tf sample; raises ValueError for one the tree cannot take."""
        with self._lock:
            self._tree.add(parent, child, transform, stamp_ns)

    def lookup(self, base: str, frame_id: str, stamp_ns: int) -> np.ndarray:
        """(4, 4) ``frame_id`` -> ``base``; LookupError when the tree does not connect them (yet)."""
        with self._lock:
            return self._tree.lookup(base, frame_id, stamp_ns, self.tolerance_ns).matrix()


StaticTransforms = Transforms  # the name the node used before /tf was read too


class TfWaitQueue:
    """Frames whose transforms have not arrived yet (a /tf_static published after the first images):
    kept, oldest first, and retried when more transforms arrive, instead of being dropped. Bounded: when
    full the oldest frame is dropped (and counted). Thread-safe."""

    def __init__(self, maxsize: int = 16) -> None:
        self.maxsize = int(maxsize)
        self._items: deque[Any] = deque()
        self._lock = threading.Lock()
        self.dropped = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def put(self, item: Any) -> None:
        with self._lock:
            if len(self._items) >= self.maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)

    def take_all(self) -> list[Any]:
        """Every waiting frame, oldest first; the queue is then empty."""
        with self._lock:
            items, self._items = list(self._items), deque()
            return items


def add_tf_message(
    transforms: Transforms, msg: Any, static: bool, stamp_of: Callable[[Any], int]
) -> list[str]:
    """Add a tf2_msgs/TFMessage to ``transforms``; the problems of the transforms it could not take."""
    problems = []
    for t in msg.transforms:
        try:
            transform = transform_from_msg(t.transform)
            if static:
                transforms.add(t.header.frame_id, t.child_frame_id, transform)
            else:
                transforms.add_dynamic(
                    t.header.frame_id, t.child_frame_id, transform, stamp_of(t.header.stamp)
                )
        except ValueError as err:
            problems.append(str(err))
    return problems
