"""The `simdistill` command run as a user runs it: a real subprocess, its stderr in the failure message."""

from __future__ import annotations

import subprocess
import sys

EXE = [sys.executable, "-m", "simdistill_ros.cli"]


def run_cli(
    *args: str, check: bool = True, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``simdistill ARGS``; with ``check``, a non-zero exit fails with the command and its stderr tail."""
    proc = subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"simdistill {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    return proc
