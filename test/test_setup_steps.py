"""`make setup` talks: a long step prints its expected duration and a heartbeat line per interval
(tools/steps.sh), driven here with a fake slow command and a short interval instead of a real install."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run_timed(script: str, interval: float, extra_env: dict | None = None) -> tuple[int, list]:
    """(exit status, [(seconds since start, line)]) of a bash script that sources tools/steps.sh."""
    env = {**os.environ, "HEARTBEAT_S": str(interval), **(extra_env or {})}
    proc = subprocess.Popen(
        ["bash", "-c", f"source tools/steps.sh; {script}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    t0 = time.monotonic()
    lines = [(time.monotonic() - t0, line.rstrip("\n")) for line in proc.stdout]
    return proc.wait(timeout=30), lines


def test_a_long_step_prints_a_line_at_least_every_interval():
    interval, duration = 1.0, 5.0
    rc, lines = _run_timed(f'run_step "fake install" "about 5 s" sleep {duration}', interval)
    assert rc == 0
    texts = [t for _, t in lines]
    assert texts[0] == "[setup] fake install (expected: about 5 s)"
    assert re.fullmatch(r"\[setup\]   fake install: done in \d+ s", texts[-1])
    beats = [t for t in texts if t.startswith("[setup]   still fake install (")]
    assert len(beats) >= duration / interval - 2
    # The user never waits much longer than one interval for a line (30 s with the default interval).
    stamps = [0.0] + [s for s, _ in lines]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert max(gaps) < 2.5 * interval, gaps
    # The stream ends with the step: no heartbeat left running that holds the pipe open.
    assert lines[-1][0] < duration + 2 * interval


def test_the_default_interval_is_under_30_s():
    env = {k: v for k, v in os.environ.items() if k != "HEARTBEAT_S"}
    out = subprocess.run(
        ["bash", "-c", "source tools/steps.sh; echo $HEARTBEAT_S"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert 0 < float(out.stdout) < 30


def test_a_failing_step_returns_its_status_and_says_so(tmp_path: Path):
    rc, lines = _run_timed('run_step "broken" "1 s" bash -c "exit 3"; echo "rc=$?"', 5.0)
    texts = [t for _, t in lines]
    assert "rc=3" in texts
    assert any(re.fullmatch(r"\[setup\]   broken: FAILED \(exit 3\) after \d+ s", t) for t in texts)


def test_the_heartbeat_quotes_the_cmake_progress(tmp_path: Path):
    log = tmp_path / "build.log"
    fake_build = f'echo \\"[ 42%] Building C object\\" > {log}; sleep 2'
    script = f'run_step "cmake: building x" "2 s" bash -c "{fake_build}"'
    rc, lines = _run_timed(script, 0.5, {"STEP_PROGRESS": str(log)})
    assert rc == 0
    assert any(t.endswith(", build at 42%)") for _, t in lines), lines


def test_setup_env_runs_every_install_and_build_through_a_step():
    """Each pip install and cmake build in tools/setup_env.sh goes through run_step (has a heartbeat)."""
    text = (ROOT / "tools" / "setup_env.sh").read_text().replace("\\\n", " ")
    calls = [line for line in text.splitlines() if re.search(r"\b(pip_install|build_msgs)\b", line)]
    calls = [c for c in calls if not re.match(r"\s*(pip_install|build_msgs)\(\)", c)]  # the definitions
    assert len(calls) >= 5  # torch, requirements, devkit, the message packages, the package itself
    assert all(re.search(r"\brun_step\b", c) for c in calls), calls


def _setup_env(venv: Path, distro: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "tools/setup_env.sh", str(venv)],
        cwd=ROOT,
        env={**os.environ, "ROS_DISTRO": distro},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_setup_names_the_distributions_it_can_install(tmp_path: Path):
    """A sourced Humble environment sets ROS_DISTRO=humble: one line, before anything is installed."""
    proc = _setup_env(tmp_path / "venv", "humble")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "[setup] error: ROS_DISTRO=humble has no pip wheels; the pip-only set-up offers ROS_DISTRO=jazzy "
        "(the default) or ROS_DISTRO=kilted (with a sourced humble install, build with colcon instead)"
    )
    assert not (tmp_path / "venv" / "bin").exists()


def test_setup_never_mixes_two_distributions_in_one_venv(tmp_path: Path):
    venv = tmp_path / "venv"
    (venv / ".simdistill-stamps").mkdir(parents=True)
    (venv / ".simdistill-stamps" / "distro").write_text("kilted\n")
    proc = _setup_env(venv, "jazzy")
    assert proc.returncode == 2 and "holds ROS 2 kilted; set up jazzy in another venv" in proc.stderr
    # a venv set up before the choice existed (stamps, no distro stamp) holds Kilted
    (venv / ".simdistill-stamps" / "distro").unlink()
    assert "holds ROS 2 kilted" in _setup_env(venv, "jazzy").stderr
    assert not (venv / "bin").exists()
