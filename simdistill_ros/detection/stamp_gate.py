"""Time as ROS handles it, before the synchroniser.

A stamp far ahead of the node's clock is refused before it reaches the synchroniser (one such set would
make it wait for, or pass over, every later frame); when time jumps back (a bag loop, a restarted
simulation: the ROS clock or the reference camera's stamps), the synchroniser, the frame queue and the
transform history start afresh (:class:`LiveInput`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from simdistill_ros.detection.frame_queue import FrameQueue
from simdistill_ros.detection.live_stats import AHEAD, BEFORE_JUMP, NO_SET, TIME_JUMP, PipelineStats

# A stream never runs backwards by this much (messages of one topic arrive in order); a bag loop or a
# restarted simulation does. Smaller jumps recover by themselves within this time (the late stamps are
# refused by the synchroniser until the stamps pass the old ones).
JUMP_BACK_NS = 500_000_000
# Messages of the old timeline still in flight arrive within this many seconds after a jump back; a /clock
# jump this soon after the stamps jumped is the same jump (the images of a restarted simulation came
# before its /clock message): nothing more is reset.
LATE_S = 1.0


class StampGate:
    """Decides, per message, whether its stamp may enter the synchroniser. No ROS, no clock of its own.

    - More than ``max_ahead_ns`` ahead of the node's clock (``clock_ns``; skipped while the clock is 0, as
      ROS time is before the first /clock message; ``max_ahead_ns <= 0`` turns the check off): refused.
    - A stamp of the reference camera's image or CameraInfo more than ``jump_ns`` behind the newest one
      of the same topic: time jumped back; the caller resets, the message is kept and starts the new
      timeline. Each topic is judged against itself, as only within a topic do messages arrive in order
      (a reliable 4 MB image can arrive after the next, small, CameraInfo). From then on the new timeline
      is accepted whatever its frame spacing (tf2's behaviour: clear, then accept).
    - Only messages of the old timeline still in flight are refused, those stamped more than ``jump_ns``
      ahead of the new timeline (its newest stamp; after a clock jump, the clock) that are either the first
      of their topic since the jump and do not lie ``jump_ns`` behind its newest before it (they continue
      the old timeline), or arrive within ``late_s`` seconds of the jump stamped within ``jump_ns`` of the
      old timeline's newest. One of them would become the newest stamp of its stream in the synchroniser,
      which would then pass over every frame of the new timeline until it got there.
    """

    ACCEPT, RESET, REFUSE = "accept", "reset", "refuse"

    def __init__(
        self, reference: str, max_ahead_ns: int, jump_ns: int = JUMP_BACK_NS, late_s: float = LATE_S
    ) -> None:
        self.reference, self.max_ahead_ns, self.jump_ns = reference, int(max_ahead_ns), int(jump_ns)
        self.late_s = float(late_s)
        self._newest: dict[Any, int] = {}  # per topic (key): its newest stamp on the current timeline
        self._old: dict[Any, int] = {}  # per topic not yet seen since the last jump: its newest before it
        self._old_newest: int | None = None  # the old timeline's newest stamp
        self._jumped_at: float | None = None  # when (``now``) time last jumped back
        self._stamps_jumped_at: float | None = None  # ... seen from the stamps

    @property
    def newest_ns(self) -> int | None:
        """The newest stamp of the current timeline (None before the first)."""
        return max(self._newest.values(), default=None)

    def stamps_jumped_within(self, now: float) -> bool:
        """True within ``late_s`` seconds after the stamps jumped back."""
        return self._stamps_jumped_at is not None and now - self._stamps_jumped_at < self.late_s

    def forget(self, now: float = 0.0) -> None:
        """The clock jumped back: the next messages start a new timeline."""
        self._jump(now)

    def _jump(self, now: float) -> None:
        if self._newest:
            self._old_newest = self.newest_ns
        self._old = {**self._old, **self._newest}
        self._newest, self._jumped_at = {}, now

    def check(
        self, key: tuple[str, str], stamp_ns: int, clock_ns: int, now: float = 0.0
    ) -> tuple[str, str, str]:
        """(ACCEPT | RESET | REFUSE, reason, detail) for a message of ``key`` = (kind, camera) arriving at
        ``now`` (seconds, ``time.monotonic()``)."""
        if self.max_ahead_ns > 0 and clock_ns > 0 and stamp_ns - clock_ns > self.max_ahead_ns:
            ahead = (stamp_ns - clock_ns) / 1e9
            bound = f"max_stamp_ahead {self.max_ahead_ns / 1e9:g} s"
            detail = f"{_name(key)} stamped {ahead:.3f} s ahead of the clock ({bound})"
            return self.REFUSE, AHEAD, detail
        if self._jumped_at is not None:
            new = self.newest_ns if self._newest else (clock_ns or None)
            if new is not None and stamp_ns > new + self.jump_ns:
                first = key in self._old and stamp_ns >= self._old[key] - self.jump_ns
                late = (
                    now - self._jumped_at < self.late_s
                    and self._old_newest is not None
                    and abs(stamp_ns - self._old_newest) <= self.jump_ns
                )
                if first or late:
                    ahead = (stamp_ns - new) / 1e9
                    detail = f"{_name(key)} continues the old timeline ({ahead:.3f} s ahead of the new one)"
                    return self.REFUSE, BEFORE_JUMP, detail
            self._old.pop(key, None)  # on the new timeline from here on (a topic's messages arrive in order)
        own = self._newest.get(key)
        if key[1] == self.reference and own is not None and stamp_ns < own - self.jump_ns:
            self._jump(now)
            self._stamps_jumped_at = now
            del self._old[key]
            self._newest[key] = stamp_ns
            return self.RESET, TIME_JUMP, f"{_name(key)} stamps jumped back {(own - stamp_ns) / 1e9:.3f} s"
        self._newest[key] = stamp_ns if own is None else max(own, stamp_ns)
        return self.ACCEPT, "", ""


def _name(key: Any) -> str:
    return f"{key[1]} {key[0]}" if isinstance(key, tuple) and len(key) == 2 else str(key)


Log = tuple[int, str]  # (level, line) for the node's logger


class LiveInput:
    """Camera messages -> :class:`StampGate` -> synchroniser (:class:`CameraSync` or
    :class:`MessageFiltersSync`) -> :class:`FrameQueue`, counting every drop in ``stats``. A time jump
    (of the stamps, or of the ROS clock through :meth:`clock_jumped`) empties the synchroniser and the
    queue and calls ``on_jump`` (which clears the transforms and may return how many more frames it
    discarded). Thread-safe; methods return the lines to log."""

    def __init__(
        self,
        sync: Any,
        frames: FrameQueue,
        stats: PipelineStats,
        max_ahead_s: float,
        on_jump: Callable[[], int | None] = lambda: None,
    ) -> None:
        self.sync, self.frames, self.stats, self.on_jump = sync, frames, stats, on_jump
        self.gate = StampGate(sync.cameras[0], int(max_ahead_s * 1e9))
        self._lock = threading.Lock()

    def add(self, key: tuple[str, str], stamp_ns: int, msg: Any, clock_ns: int, now: float) -> list[Log]:
        """One image (``key`` ("image", camera)) or CameraInfo (("info", camera)) message."""
        logs: list[Log | None] = []
        if key[0] == "image":
            self.stats.image_seen(key[1], now)
        with self._lock:
            verdict, reason, detail = self.gate.check(key, stamp_ns, clock_ns, now)
            if verdict == StampGate.REFUSE:
                return [x for x in [self.stats.drop(reason, detail, now)] if x]
            if verdict == StampGate.RESET:
                logs.append(self._reset(detail, now))
            before = self.sync.dropped
            frames = self.sync.add(key, stamp_ns, msg, now)
            lost = self.sync.dropped - before
        if lost:
            detail = f"{lost} {self.sync.cameras[0]} image(s) found no image of every camera within sync_slop"
            logs.append(self.stats.drop(NO_SET, detail, now, n=lost))
        for f in frames:
            logs.append(self.stats.frame_synced(now, self.frames.put(f)))
        return [x for x in logs if x]

    def set_max_ahead(self, max_ahead_s: float) -> None:
        """A new ``max_stamp_ahead`` (a live parameter), for the next message."""
        with self._lock:
            self.gate.max_ahead_ns = int(max_ahead_s * 1e9)

    def clock_jumped(self, delta_ns: int, now: float, clock_ns: int | None = None) -> list[Log]:
        """The ROS clock jumped back by ``-delta_ns`` (rclpy's jump callback) to ``clock_ns``. When the
        stamps have already started the new timeline (its first images came before the /clock message),
        nothing is reset again: that would discard the new timeline's first frames."""
        with self._lock:
            newest = self.gate.newest_ns
            if (
                clock_ns is not None
                and self.gate.stamps_jumped_within(now)
                and newest is not None
                and newest <= clock_ns + self.gate.jump_ns
            ):
                return []
            self.gate.forget(now)
            log = self._reset(f"the ROS clock jumped back {-delta_ns / 1e9:.3f} s", now)
        return [log] if log else []

    def _reset(self, detail: str, now: float) -> Log | None:
        pending = self.sync.reset()
        queued = self.frames.clear() + (self.on_jump() or 0)
        lost = f"{queued} frames and {pending} messages discarded"
        return self.stats.drop(
            TIME_JUMP, f"{detail}: synchroniser, frame queue and transforms reset ({lost})", now
        )
