"""Approximate-time synchronisation of several message streams, without ROS.

Same purpose as ``message_filters.ApproximateTimeSynchronizer`` (ROS 2 message_filters): emit one message
per stream such that all of them lie within ``slop`` of each other, each message used at most once. It
differs in how a set is chosen. message_filters' Python synchroniser searches combinations of the queued
messages of all topics (a product over the queues); its C++ ApproximateTime policy runs an adaptive search
minimising each set's time span. This one pivots on a *reference* key (default: the first key): for every
reference message it takes, per other key, the queued message nearest to the reference stamp, provided
it is within ``slop`` of it. The cost per emitted set is linear in the number of keys. The sets it emits
have every message within ``slop`` of the reference (so within ``2 * slop`` of each other), which is what
a camera rig firing in a known order around a reference camera needs.

Decisions are made as soon as they are final under the usual assumption that each stream's stamps
increase: a candidate is final once its stream has produced a stamp at least as far past the reference
as the candidate is from it (no later message can be nearer). Messages arriving out of order within a
stream are accepted as long as no emitted set has passed them. Messages that can no longer be part of a
set are dropped and counted in ``dropped[key]``. Call :meth:`flush` at the end of a stream to decide
what is still pending.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SyncedSet:
    """One synchronised set: the reference stamp and, per key, (stamp_ns, item)."""

    stamp_ns: int
    messages: dict[Hashable, tuple[int, Any]] = field(default_factory=dict)

    def stamp(self, key: Hashable) -> int:
        return self.messages[key][0]

    def item(self, key: Hashable) -> Any:
        return self.messages[key][1]

    @property
    def span_ns(self) -> int:
        stamps = [s for s, _ in self.messages.values()]
        return max(stamps) - min(stamps)


class ApproximateTimeSync:
    """Synchronise messages of ``keys`` on the stamps of ``reference`` (default ``keys[0]``).

    ``queue_size`` bounds the messages kept per key (the oldest is dropped and counted when exceeded).
    """

    def __init__(
        self,
        keys: Sequence[Hashable],
        slop_ns: int,
        queue_size: int = 10,
        reference: Hashable | None = None,
    ) -> None:
        self.keys = list(keys)
        if not self.keys:
            raise ValueError("ApproximateTimeSync needs at least one key")
        if len(set(self.keys)) != len(self.keys):
            raise ValueError(f"keys must be unique, got {self.keys}")
        if slop_ns < 0:
            raise ValueError(f"slop_ns must be >= 0, got {slop_ns}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.reference = self.keys[0] if reference is None else reference
        if self.reference not in self.keys:
            raise ValueError(f"reference key {self.reference!r} is not one of {self.keys}")
        self.slop_ns = int(slop_ns)
        self.queue_size = int(queue_size)
        self.dropped: dict[Hashable, int] = {k: 0 for k in self.keys}
        self.emitted = 0
        # Per key: queued (stamp, arrival sequence, item), sorted by stamp then arrival.
        self._queues: dict[Hashable, list[tuple[int, int, Any]]] = {k: [] for k in self.keys}
        self._latest: dict[Hashable, int | None] = {k: None for k in self.keys}
        # Newest stamp used or passed per key: anything at or before it arrived too late.
        self._horizon: dict[Hashable, int | None] = {k: None for k in self.keys}
        self._seq = 0

    @property
    def oldest_reference_ns(self) -> int | None:
        """Stamp of the oldest reference message still waiting for a set (None when none waits)."""
        queue = self._queues[self.reference]
        return queue[0][0] if queue else None

    @property
    def latest_reference_ns(self) -> int | None:
        """Newest reference stamp received so far."""
        return self._latest[self.reference]

    @property
    def pending(self) -> dict[Hashable, int]:
        """Messages currently queued per key."""
        return {k: len(q) for k, q in self._queues.items()}

    def add(self, key: Hashable, stamp_ns: int, item: Any) -> list[SyncedSet]:
        """Queue one message; returns the sets this completes (oldest first, usually zero or one)."""
        if key not in self._queues:
            raise KeyError(f"unknown key {key!r}; keys are {self.keys}")
        stamp_ns = int(stamp_ns)
        horizon = self._horizon[key]
        if horizon is not None and stamp_ns <= horizon:
            self.dropped[key] += 1  # arrived after a set was emitted past it
            return []
        queue = self._queues[key]
        self._seq += 1
        bisect.insort(queue, (stamp_ns, self._seq, item), key=lambda e: (e[0], e[1]))
        if len(queue) > self.queue_size:
            queue.pop(0)
            self.dropped[key] += 1
        latest = self._latest[key]
        self._latest[key] = stamp_ns if latest is None else max(latest, stamp_ns)
        return self._process(final=False)

    def reset(self) -> int:
        """Forget every queued message and stamp (after a backwards time jump: the horizons of the old
        timeline would otherwise refuse every new message until the stamps catch up). Returns the messages
        discarded; they are counted in ``dropped``, and the counters are kept."""
        discarded = 0
        for k, q in self._queues.items():
            self.dropped[k] += len(q)
            discarded += len(q)
            q.clear()
            self._latest[k] = None
            self._horizon[k] = None
        return discarded

    def flush(self) -> list[SyncedSet]:
        """End of input: emit every set that can still be completed, drop (and count) the rest."""
        out = self._process(final=True)
        for k, q in self._queues.items():
            self.dropped[k] += len(q)
            q.clear()
        return out

    # internals -----------------------------------------------------------------------------------------
    def _nearest(self, key: Hashable, ref_stamp: int) -> int | None:
        """Index of the queued message of ``key`` nearest to ``ref_stamp`` within slop (ties: earlier)."""
        queue = self._queues[key]
        i = bisect.bisect_left(queue, ref_stamp, key=lambda e: e[0])
        best, best_d = None, None
        for j in (i - 1, i):  # the nearest lies on one side of the insertion point
            if 0 <= j < len(queue):
                d = abs(queue[j][0] - ref_stamp)
                if d <= self.slop_ns and (best_d is None or d < best_d):
                    best, best_d = j, d
        # Equal stamps: bisect_left points at the first, so the earliest arrival wins.
        return best

    def _drop_before(self, key: Hashable, stamp: int) -> None:
        """Drop (and count) queued messages of ``key`` stamped before ``stamp``."""
        queue = self._queues[key]
        n = bisect.bisect_left(queue, stamp, key=lambda e: e[0])
        if n:
            del queue[:n]
            self.dropped[key] += n

    def _process(self, final: bool) -> list[SyncedSet]:
        out: list[SyncedSet] = []
        ref_queue = self._queues[self.reference]
        others = [k for k in self.keys if k != self.reference]
        while ref_queue:
            ref_stamp = ref_queue[0][0]
            picks: dict[Hashable, int] = {}
            status = "ready"
            for k in others:
                j = self._nearest(k, ref_stamp)
                latest = self._latest[k]
                if j is None:
                    # Nothing in the window: hopeless once the stream has moved past it (or ended).
                    if final or (latest is not None and latest > ref_stamp + self.slop_ns):
                        status = "hopeless"
                        break
                    status = "wait"
                    continue
                d = abs(self._queues[k][j][0] - ref_stamp)
                if not final and (latest is None or latest < ref_stamp + d):
                    status = "wait"  # a nearer message may still come
                picks[k] = j
            if status == "wait":
                break
            if status == "hopeless":
                ref_queue.pop(0)
                self.dropped[self.reference] += 1
                self._horizon[self.reference] = ref_stamp
                continue
            stamp, _, item = ref_queue.pop(0)
            synced = SyncedSet(ref_stamp, {self.reference: (stamp, item)})
            self._horizon[self.reference] = ref_stamp
            for k, j in picks.items():
                s, _, it = self._queues[k].pop(j)
                synced.messages[k] = (s, it)
                self._drop_before(k, s)  # older ones were passed over for good
                self._horizon[k] = s
            synced.messages = {k: synced.messages[k] for k in self.keys}  # keys in the configured order
            out.append(synced)
            self.emitted += 1
        # Non-reference messages too old for any current or future reference can go.
        if ref_queue:
            oldest_ref = ref_queue[0][0]
        elif self._latest[self.reference] is not None:
            oldest_ref = self._latest[self.reference]  # future references come later (in-order streams)
        else:
            return out
        for k in others:
            self._drop_before(k, oldest_ref - self.slop_ns)
        return out
