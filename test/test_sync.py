"""ApproximateTimeSync: ROS-free approximate-time synchronisation pivoting on a reference key."""

from __future__ import annotations

import numpy as np
import pytest

from simdistill_ros.frames.sync import ApproximateTimeSync

MS = 1_000_000


def feed(sync: ApproximateTimeSync, events) -> list:
    out = []
    for key, stamp in events:
        out.extend(sync.add(key, stamp, f"{key}@{stamp}"))
    return out


def rig_events(cycles: int, keys=("a", "b", "c"), period=83 * MS, offset=8 * MS, t0=1000 * MS):
    """Cameras firing in order: key i at cycle start + i * offset."""
    return sorted(
        ((k, t0 + n * period + i * offset) for n in range(cycles) for i, k in enumerate(keys)),
        key=lambda e: e[1],
    )


def test_in_order_rig_emits_one_set_per_cycle_without_waiting():
    sync = ApproximateTimeSync(["a", "b", "c"], slop_ns=50 * MS)
    events = rig_events(5)
    sets = []
    for i, (key, stamp) in enumerate(events):
        new = sync.add(key, stamp, stamp)
        if key == "c":  # the set is complete as soon as the last camera of the cycle arrives
            assert len(new) == 1, i
        sets.extend(new)
    assert [s.stamp_ns for s in sets] == [1000 * MS + n * 83 * MS for n in range(5)]
    for s in sets:
        assert list(s.messages) == ["a", "b", "c"]
        assert s.stamp("b") - s.stamp_ns == 8 * MS and s.stamp("c") - s.stamp_ns == 16 * MS
        assert s.item("a") == s.stamp_ns
        assert s.span_ns == 16 * MS
    assert sync.dropped == {"a": 0, "b": 0, "c": 0}
    assert sync.flush() == []


def test_out_of_order_arrival_across_keys():
    sync = ApproximateTimeSync(["a", "b", "c"], slop_ns=50 * MS)
    events = rig_events(4)
    # Deliver each cycle backwards: c, b, then the reference a.
    shuffled = []
    for n in range(4):
        shuffled.extend(reversed(events[3 * n : 3 * n + 3]))
    sets = feed(sync, shuffled) + sync.flush()
    assert [s.stamp_ns for s in sets] == [1000 * MS + n * 83 * MS for n in range(4)]
    assert all(s.span_ns == 16 * MS for s in sets)
    assert sum(sync.dropped.values()) == 0


def test_out_of_order_within_a_key_before_the_set_is_decided():
    sync = ApproximateTimeSync(["a", "b"], slop_ns=20 * MS)
    # b@80 arrives after b@85, but before the set of a@100 is decided: it is queued, not dropped.
    assert feed(sync, [("a", 100 * MS), ("b", 85 * MS), ("b", 80 * MS)]) == []
    assert sync.dropped["b"] == 0 and sync.pending["b"] == 2
    out = feed(sync, [("b", 118 * MS)])  # proves no b nearer than 85 can come
    assert len(out) == 1 and out[0].stamp("b") == 85 * MS
    assert sync.dropped["b"] == 1  # b@80 was passed over; b@118 waits for the next reference
    assert sync.pending["b"] == 1


def test_late_message_after_set_is_dropped_and_counted():
    sync = ApproximateTimeSync(["a", "b"], slop_ns=20 * MS)
    out = feed(sync, [("a", 100 * MS), ("b", 101 * MS), ("b", 99 * MS)])
    assert len(out) == 1 and out[0].stamp("b") == 101 * MS
    assert sync.dropped["b"] == 1


def test_missing_key_never_emits():
    sync = ApproximateTimeSync(["a", "b", "c"], slop_ns=50 * MS, queue_size=5)
    events = [e for e in rig_events(20) if e[0] != "c"]
    assert feed(sync, events) == []
    assert sync.flush() == []
    # Every reference message was dropped in the end, and the queues stayed bounded meanwhile.
    assert sync.dropped["a"] == 20
    assert sync.pending == {"a": 0, "b": 0, "c": 0}


def test_queue_size_bounds_memory():
    sync = ApproximateTimeSync(["a", "b"], slop_ns=10 * MS, queue_size=3)
    feed(sync, [("a", i * 100 * MS) for i in range(10)])  # b never comes: a cannot be decided
    assert sync.pending["a"] == 3
    assert sync.dropped["a"] == 7


def test_jittered_stamps_pick_nearest_and_use_each_message_once():
    rng = np.random.default_rng(0)
    sync = ApproximateTimeSync(["a", "b", "c"], slop_ns=30 * MS)
    events = []
    for n in range(200):
        base = 10_000 * MS + n * 100 * MS
        for k in ("a", "b", "c"):
            events.append((k, base + int(rng.integers(-10 * MS, 10 * MS))))
    events.sort(key=lambda e: e[1])
    sets = feed(sync, events) + sync.flush()
    assert len(sets) == 200
    used = [(k, s.stamp(k)) for s in sets for k in s.messages]
    assert len(used) == len(set(used)) == 600
    for s in sets:
        assert all(abs(s.stamp(k) - s.stamp_ns) <= 30 * MS for k in s.messages)
    assert sum(sync.dropped.values()) == 0


def test_nearest_candidate_wins_over_earlier_one():
    sync = ApproximateTimeSync(["a", "b"], slop_ns=50 * MS)
    out = feed(sync, [("b", 60 * MS), ("a", 100 * MS), ("b", 95 * MS)])
    assert out == []  # b@95 is nearer than b@60 but a later b might be nearer still
    out = feed(sync, [("b", 140 * MS)])
    assert len(out) == 1 and out[0].stamp("b") == 95 * MS
    assert sync.dropped["b"] == 1  # b@60 was passed over


def test_drop_counting_for_unmatched_messages():
    sync = ApproximateTimeSync(["a", "b"], slop_ns=10 * MS)
    events = [("a", 100 * MS), ("b", 150 * MS), ("a", 152 * MS), ("b", 300 * MS), ("a", 400 * MS)]
    sets = feed(sync, events)
    assert [s.stamp_ns for s in sets] == [152 * MS]
    assert sync.dropped["a"] == 1  # a@100 had no b within 10 ms
    tail = sync.flush()
    assert tail == []
    assert sync.dropped == {"a": 2, "b": 1}  # a@400 and b@300 never matched


def test_reference_key_is_configurable():
    sync = ApproximateTimeSync(["a", "b"], slop_ns=50 * MS, reference="b")
    out = feed(sync, [("a", 100 * MS), ("b", 120 * MS), ("a", 130 * MS)])
    assert len(out) == 1 and out[0].stamp_ns == 120 * MS and out[0].stamp("a") == 130 * MS
    assert list(out[0].messages) == ["a", "b"]  # configured key order, whatever the reference


def test_single_key_passes_through():
    sync = ApproximateTimeSync(["only"], slop_ns=0)
    assert [s.stamp_ns for s in feed(sync, [("only", 5), ("only", 9)])] == [5, 9]


def test_forty_keys_emit_every_cycle_complete_and_in_order():
    # (how the cost grows with the number of keys is a benchmark question, not a unit test's)
    keys = [f"k{i}" for i in range(40)]
    sync = ApproximateTimeSync(keys, slop_ns=5 * MS, queue_size=4)
    sets = feed(sync, rig_events(50, keys=keys, period=100 * MS, offset=MS // 10))
    sets += sync.flush()
    assert [s.stamp_ns for s in sets] == [1000 * MS + n * 100 * MS for n in range(50)]
    for s in sets:
        assert list(s.messages) == keys
        assert all(s.item(k) == f"{k}@{s.stamp(k)}" for k in keys)
        assert s.stamp("k39") - s.stamp_ns == 39 * (MS // 10)
    assert sum(sync.dropped.values()) == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one key"):
        ApproximateTimeSync([], 1)
    with pytest.raises(ValueError, match="unique"):
        ApproximateTimeSync(["a", "a"], 1)
    with pytest.raises(ValueError, match="reference"):
        ApproximateTimeSync(["a"], 1, reference="z")
    with pytest.raises(KeyError, match="unknown key"):
        ApproximateTimeSync(["a"], 1).add("z", 0, None)


@pytest.mark.parametrize("seed", range(5))
def test_random_streams_conserve_messages(seed):
    """Every message is either in exactly one emitted set or counted as dropped, whatever the input."""
    rng = np.random.default_rng(seed)
    keys = ["a", "b", "c", "d"]
    sync = ApproximateTimeSync(keys, slop_ns=20 * MS, queue_size=int(rng.integers(2, 8)))
    events = []
    complete = 0
    for n in range(300):
        present = rng.random(len(keys)) < 0.9  # some messages never come
        complete += bool(present.all())
        for i, k in enumerate(keys):
            if present[i]:
                events.append((k, n * 50 * MS + i * 3 * MS + int(rng.integers(-5 * MS, 5 * MS))))
    events.sort(key=lambda e: e[1])
    # Mild reordering across keys, as separate topics arriving over a transport do. Within one topic
    # DDS delivers in order (late samples are discarded), which is what the policy assumes.
    for j in range(0, len(events) - 1, 7):
        if events[j][0] != events[j + 1][0]:
            events[j], events[j + 1] = events[j + 1], events[j]
    sets = feed(sync, events) + sync.flush()
    used = [(k, s.stamp(k)) for s in sets for k in keys]
    assert len(used) == len(set(used))
    assert len(used) + sum(sync.dropped.values()) == len(events)
    assert all(abs(s.stamp(k) - s.stamp_ns) <= 20 * MS for s in sets for k in keys)
    assert [s.stamp_ns for s in sets] == sorted(s.stamp_ns for s in sets)
    assert len(sets) == complete  # every complete cycle, and no set borrowed from a neighbour
