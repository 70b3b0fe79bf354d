"""The frame queue and the worker thread that empties it.

Real time: when the model is busy, a newer frame is worth more than an old one, so a full queue drops its
oldest frame. One failing frame is counted and reported, never fatal: the worker keeps serving.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simdistill_ros.detection.live_stats import PipelineStats


@dataclass
class SyncedFrame:
    """One synchronised set of camera messages waiting for the model."""

    stamp_ns: int
    images: list[Any]  # image messages in camera order
    infos: list[Any]  # CameraInfo messages in camera order
    received: float  # time.monotonic() when the set's last message arrived


class FrameQueue:
    """A bounded queue of frames; ``put`` on a full queue drops the oldest. Thread-safe."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"frame queue size must be >= 1, got {maxsize}")
        self.maxsize = int(maxsize)
        self._items: deque[Any] = deque()
        self._cv = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        with self._cv:
            return len(self._items)

    def put(self, item: Any) -> bool:
        """Append ``item``; True when the oldest frame was dropped to make room."""
        with self._cv:
            dropped = len(self._items) >= self.maxsize
            if dropped:
                self._items.popleft()
            self._items.append(item)
            self._cv.notify()
            return dropped

    def resize(self, maxsize: int) -> int:
        """A new bound (a live ``frame_queue_size``); the oldest frames beyond it are dropped, counted."""
        if maxsize < 1:
            raise ValueError(f"frame queue size must be >= 1, got {maxsize}")
        with self._cv:
            self.maxsize = int(maxsize)
            dropped = 0
            while len(self._items) > self.maxsize:
                self._items.popleft()
                dropped += 1
            return dropped

    def get(self, timeout: float | None = None) -> Any | None:
        """The oldest frame, waiting up to ``timeout`` seconds; None when closed or timed out."""
        with self._cv:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._items and not self._closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cv.wait(left)
            if self._closed:
                return None
            return self._items.popleft()

    def clear(self) -> int:
        """Drop every waiting frame; returns how many."""
        with self._cv:
            n = len(self._items)
            self._items.clear()
            return n

    def close(self) -> None:
        """Wake every waiting ``get`` (which then returns None)."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()


class Worker:
    """Takes frames from a :class:`FrameQueue` and calls ``process`` on each, on its own thread. An
    exception from ``process`` is counted in ``stats`` and passed to ``on_error``; the loop goes on."""

    def __init__(
        self,
        frames: FrameQueue,
        process: Callable[[Any], None],
        stats: PipelineStats,
        on_error: Callable[[Any, BaseException], None] = lambda item, err: None,
    ) -> None:
        self.frames, self.process, self.stats, self.on_error = frames, process, stats, on_error
        self._thread = threading.Thread(target=self._run, name="detector", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self.frames.get()
            if item is None:
                return
            try:
                self.process(item)
            except Exception as err:  # noqa: BLE001 - one frame must never take the pipeline down
                self.stats.frame_failed(f"{type(err).__name__}: {err}", time.monotonic())
                self.on_error(item, err)

    def stop(self, timeout: float = 5.0) -> None:
        self.frames.close()
        self._thread.join(timeout=timeout)
