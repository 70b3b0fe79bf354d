"""The live pipeline's statistics: every dropped frame or message counted under its reason, the reason's
first occurrence logged (later ones at most every ``LOG_THROTTLE_S``), the timing of published frames and
the /diagnostics status built from them.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

# Diagnostic levels (diagnostic_msgs/DiagnosticStatus: OK, WARN, ERROR)
OK, WARN, ERROR = 0, 1, 2
LOG_THROTTLE_S = 5.0  # a drop reason is logged when first seen, then at most this often
RECENT_S = 5.0  # a drop reason keeps /diagnostics at WARN/ERROR this long after it last happened

# Why frames or messages are dropped (the /diagnostics keys and log lines name these).
AHEAD = "stamp ahead of the clock"
BEFORE_JUMP = "stamp from before a time jump"
TIME_JUMP = "time jumped back"
NO_SET = "no complete camera set"
BUSY = "model busy (frame queue full)"
BAD_INPUT = "bad input"
NO_TF = "missing transform"
FAILED = "processing error"


@dataclass
class _Reason:
    level: int
    count: int = 0
    last: float = 0.0  # time.monotonic() of the last occurrence
    detail: str = ""
    logged: float | None = None  # when it was last logged
    unlogged: int = 0  # occurrences since then


@dataclass
class PipelineStats:
    """Counters shared by the callbacks and the worker (guarded by ``lock``)."""

    cameras: list[str]
    window: int = 50
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    synced: int = 0
    published: int = 0
    failed: int = 0
    last_error: str = ""

    def __post_init__(self) -> None:
        self.sync_times: deque[float] = deque(maxlen=self.window)
        self.processing_ms: deque[float] = deque(maxlen=self.window)
        self.latency_ms: deque[float] = deque(maxlen=self.window)
        self.last_image: dict[str, float] = {c: 0.0 for c in self.cameras}
        self.reasons: dict[str, _Reason] = {}
        self.assumed: dict[str, str] = {}  # topic -> what is assumed of an input its messages lack

    def assume(self, topic: str, note: str) -> str | None:
        """Record an assumption about ``topic``'s messages; the line to log the first time, else None."""
        with self.lock:
            if topic in self.assumed:
                return None
            self.assumed[topic] = note
        return f"{topic}: {note}"

    @property
    def dropped_busy(self) -> int:
        return self.dropped(BUSY)

    def dropped(self, reason: str) -> int:
        """How many frames or messages were dropped for ``reason`` so far."""
        with self.lock:
            r = self.reasons.get(reason)
            return r.count if r else 0

    def drop(
        self, reason: str, detail: str, now: float, level: int = WARN, n: int = 1
    ) -> tuple[int, str] | None:
        """Count ``n`` drops for ``reason``; (level, log line) when it is to be logged now: its first
        occurrence, then at most every ``LOG_THROTTLE_S`` (saying how many happened in between)."""
        if n <= 0:
            return None
        with self.lock:
            r = self.reasons.setdefault(reason, _Reason(level))
            r.level, r.count, r.last, r.detail = max(r.level, level), r.count + n, now, detail
            r.unlogged += n
            if r.logged is not None and now - r.logged < LOG_THROTTLE_S:
                return None
            more = (
                f" ({r.unlogged - 1} more since the last report)"
                if r.logged is not None and r.unlogged > 1
                else ""
            )
            r.logged, r.unlogged = now, 0
            return r.level, f"{reason}: {detail}{more}"

    def image_seen(self, camera: str, now: float) -> None:
        with self.lock:
            self.last_image[camera] = now

    def frame_synced(self, now: float, dropped: bool) -> tuple[int, str] | None:
        """A synchronised frame was queued (``dropped``: the queue's oldest frame made room for it)."""
        with self.lock:
            self.synced += 1
            self.sync_times.append(now)
        if dropped:
            return self.drop(
                BUSY, "the model is slower than the input: the oldest waiting frame was dropped", now
            )
        return None

    def frame_published(self, processing_ms: float, latency_ms: float) -> None:
        with self.lock:
            self.published += 1
            self.processing_ms.append(processing_ms)
            self.latency_ms.append(latency_ms)

    def frames_dropped(self, n: int, detail: str, now: float) -> tuple[int, str] | None:
        """Frames dropped by a smaller ``frame_queue_size`` (counted as dropped while busy)."""
        return self.drop(BUSY, detail, now, n=n)

    def frame_failed(self, error: str, now: float, reason: str = FAILED) -> tuple[int, str] | None:
        """A frame the worker could not finish: ``reason`` NO_TF, BAD_INPUT or FAILED (an exception)."""
        with self.lock:
            self.failed += 1
            self.last_error = error
        return self.drop(reason, error, now, ERROR if reason in (NO_TF, FAILED) else WARN)

    def summary(self) -> str:
        """One line of counts, for the log when the node stops."""
        with self.lock:
            drops = ", ".join(f"{r.count} {name}" for name, r in self.reasons.items())
            counts = f"{self.synced} frames synced, {self.published} published, {self.failed} failed"
            return f"{counts}, dropped: {drops or 'none'}"

    def stale_cameras(self, now: float, camera_timeout: float) -> dict[str, float | None]:
        """Cameras without an image for ``camera_timeout`` s: name -> seconds since the last (None: never)."""
        with self.lock:
            return {
                c: (now - t if t else None) for c, t in self.last_image.items() if now - t > camera_timeout
            }

    def diagnostics(
        self, now: float, camera_timeout: float, model: str, silent: dict[str, str] | None = None
    ) -> tuple[int, str, dict[str, str]]:
        """(level, message, key-value pairs) of the pipeline's state for /diagnostics: the worst drop
        reason of the last ``RECENT_S`` seconds (WARN or ERROR, with its last detail), else stale
        cameras (WARN), else OK. ``silent``: camera -> why its images do not arrive, said for each stale
        camera (WARN at least)."""
        with self.lock:
            rate = 0.0
            recent = [t for t in self.sync_times if now - t < 5.0]
            if len(recent) >= 2 and recent[-1] > recent[0]:
                rate = (len(recent) - 1) / (recent[-1] - recent[0])
            stale = [c for c, t in self.last_image.items() if now - t > camera_timeout]
            values = {
                "frames synced": self.synced,
                "frames published": self.published,
                "frames failed": self.failed,
                "input rate (Hz)": f"{rate:.2f}",
                "processing time (ms)": f"{np.mean(self.processing_ms):.1f}" if self.processing_ms else "n/a",
                "pipeline latency (ms)": f"{np.mean(self.latency_ms):.1f}" if self.latency_ms else "n/a",
                "stale cameras": ", ".join(stale) or "none",
                "inputs assumed": "; ".join(f"{t}: {n}" for t, n in self.assumed.items()) or "none",
                "model": model,
                "last error": self.last_error or "none",
            }
            values.update({f"dropped: {name}": r.count for name, r in self.reasons.items()})
            active = sorted(
                ((r.level, name, r.detail) for name, r in self.reasons.items() if now - r.last < RECENT_S),
                key=lambda x: -x[0],
            )
        why = [silent[c] for c in stale if silent and c in silent]
        if active:
            level = active[0][0]
            message = "; ".join([f"{name}: {detail}" for _, name, detail in active] + why)
        elif why:
            level, message = WARN, "; ".join(why)
        elif stale:
            level, message = WARN, f"stale cameras: {', '.join(stale)}"
        else:
            level, message = OK, "ok"
        return level, message, {k: str(v) for k, v in values.items()}
