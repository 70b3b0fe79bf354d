"""OpenMP's spin-waiting is bounded in every entry point before torch loads, unless the user chose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from simdistill_ros.openmp import SPIN_COUNT, bound_openmp_spin

ROOT = Path(__file__).resolve().parents[1]

# Each snippet imports torch after its entry point, as the real processes do, then reports the variable.
ENTRY_POINTS = {
    "node process": "import simdistill_ros.nodes.process",
    "node module": "import simdistill_ros.nodes",
    "simdistill command": (
        "from simdistill_ros.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass"
    ),
}


def _spincount(snippet: str, **env: str) -> str:
    code = f"{snippet}\nimport os, torch\nprint(os.environ.get('GOMP_SPINCOUNT', 'unset'))"
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()[-1]


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_entry_points_bound_the_spin_before_torch_loads(entry: str) -> None:
    assert _spincount(ENTRY_POINTS[entry]) == str(SPIN_COUNT)


@pytest.mark.parametrize("env", [{"GOMP_SPINCOUNT": "7"}, {"OMP_WAIT_POLICY": "ACTIVE"}])
def test_a_users_own_wait_policy_is_kept(env: dict[str, str]) -> None:
    expected = env.get("GOMP_SPINCOUNT", "unset")
    assert _spincount(ENTRY_POINTS["simdistill command"], **env) == expected


def test_nothing_changes_once_torch_is_loaded(monkeypatch) -> None:
    import torch  # noqa: F401  (this process: OpenMP has read its environment)

    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert bound_openmp_spin() is False
    assert "GOMP_SPINCOUNT" not in os.environ
