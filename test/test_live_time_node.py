"""The time faults of issue 12 through the real node: a publisher process (tools/live_faults.py play) sends
stamped camera sets to detector_node, one set wrong. Each case must keep the node alive, detect every good
frame sent a second after the fault (and, where the case bounds it, lose no more good frames of the whole run:
frames 1 s apart after a jump, a looping bag without /clock), report the reason on /diagnostics as WARN and
log it exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
from _detector_helpers import synth_world, tiny_student_checkpoint
from ros_isolation import isolate_ros
from tool_modules import load_tool

pytest.importorskip("rclpy")
pytest.importorskip("vision_msgs.msg")

live_faults = load_tool("live_faults")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    isolate_ros()  # the node and the publisher inherit this process's own domain id, localhost only
    tmp = tmp_path_factory.mktemp("live_time")
    return synth_world(tmp / "world", frames=1, cameras=2), tiny_student_checkpoint(tmp / "student")


@pytest.mark.parametrize("case", live_faults.CASES, ids=[c.name for c in live_faults.CASES])
def test_the_node_recovers_from_a_time_fault_and_says_why(inputs, case, tmp_path: Path):
    bag, ckpt = inputs
    o = live_faults.run_case(case, bag, ckpt, tmp_path)
    row = live_faults.format_outcome(o)
    assert o.alive, row + "\n" + o.log
    assert o.recovered, row + "\n" + o.log
    assert o.detected_after >= o.sent_after - int(live_faults.RECOVERY_S / case.period_s), row
    assert o.lost_in_bounds, row + "\n" + o.log
    assert o.diagnosed is not None, f"{row}\n{o.diagnostics}"
    assert len(o.reason_lines) == 1, row + "\n" + o.log  # named once, not once per message
    assert o.ok, row
