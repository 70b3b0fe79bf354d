"""Every fault-injection case of tools/faults.py gives the expected exit status (or stays alive) and logs
the expected reason: corrupt images, bad intrinsics, damaged checkpoints, a planted pickle, malformed
results, bad splits, a corrupt store index and a damaged shard."""

from __future__ import annotations

import pytest
from tool_modules import load_tool

faults = load_tool("faults")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> object:
    return faults.Workspace(tmp_path_factory.mktemp("faults"))


# The live node's rows start the node and a publisher (~20 s each): test_live_time_node.py runs those cases
# with more checks (every frame after the fault, /diagnostics, the log line).
CASES = [c for c in faults.CASES if not c.name.startswith(faults.LIVE)]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault_case(workspace, case):
    row = faults.check(case, case.run(workspace))
    assert row.status == case.expect_status, faults.format_row(row)
    assert row.ok, faults.format_row(row)
    if row.status == "exit 2":
        assert row.outcome == "refused, one line", faults.format_row(row)
    assert row.outcome not in ("traceback", "DECODED WRONG", "payload RAN")


def test_the_table_has_a_row_per_case_and_more_can_be_appended(workspace):
    extra = faults.Case(
        "an appended case", lambda ws: faults.Row("an appended case", "alive", "x", "why"), "alive", "why"
    )
    rows = faults.run_cases(workspace, [extra])
    assert [r.ok for r in rows] == [True]
    assert "an appended case" in faults.format_row(rows[0]) and "logged reason" in faults.header()
