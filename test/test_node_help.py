"""Every executable answers --help: usage and its parameters or options, exit 0, in under 10 s, without
initialising rclpy or loading a model (none of them even imports torch for it)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simdistill_ros.detection.parameters import PARAMETERS as DETECTOR_PARAMETERS
from simdistill_ros.replay.parameters import PARAMETERS as REPLAY_PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
# Runs a console script's function with --help, then reports what the process loaded.
PROBE = """
import importlib, json, sys
module, func = sys.argv[1].split(":")
sys.argv = [sys.argv[2], "--help"]
try:
    code = getattr(importlib.import_module(module), func)()
except SystemExit as exit:
    code = exit.code
rclpy = sys.modules.get("rclpy")
print(json.dumps({"code": code, "torch": "torch" in sys.modules,
                  "rclpy_initialised": bool(rclpy and rclpy.ok())}), file=sys.stderr)
"""


def console_scripts() -> dict[str, str]:
    """name -> "module:function" of the package's console scripts (setup.py)."""
    text = (ROOT / "setup.py").read_text()
    return dict(re.findall(r'"(\w+) = ([\w.]+:\w+)"', text))


def run_help(target: str, prog: str) -> tuple[subprocess.CompletedProcess, dict, float]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, target, prog],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    seconds = time.monotonic() - t0
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return proc, report, seconds


EXECUTABLES = {
    "detector_node": DETECTOR_PARAMETERS,
    "teacher_replay_node": REPLAY_PARAMETERS,
}


def test_the_node_executables_are_console_scripts():
    assert set(EXECUTABLES) <= set(console_scripts())


@pytest.mark.parametrize("name", sorted(EXECUTABLES))
def test_node_help_lists_every_parameter_without_starting_anything(name: str):
    proc, report, seconds = run_help(console_scripts()[name], name)
    assert report["code"] in (0, None), proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"usage: {name} "), proc.stdout
    for param, p in EXECUTABLES[name].items():
        line = re.search(rf"^  {param} \(default (.*); (live|read-only)\)$", proc.stdout, flags=re.M)
        assert line, param
        assert line.group(2) == ("live" if p.live else "read-only"), param
    assert not report["torch"], "--help imported torch (a model could have been loaded)"
    assert not report["rclpy_initialised"]
    assert seconds < 10, seconds


@pytest.mark.parametrize(
    ("module", "prog"),
    [
        ("simdistill_ros.nodes.detector_node", "detector_node"),
        ("simdistill_ros.nodes.teacher_replay_node", "teacher_replay_node"),
    ],
)
def test_python_m_node_help_prints_usage_and_starts_nothing(module: str, prog: str):
    """`python -m MODULE --help` (the pip-only way to start a node) imports the node's module, torch
    included, so it gets no time limit here; it must still only print the usage."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    proc = subprocess.run(
        [sys.executable, "-m", module, "--help", "--ros-args", "-p", "model:=/no/such/model"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"usage: {prog} ") and "model" in proc.stdout
    assert "cannot load model" not in proc.stdout + proc.stderr and not proc.stderr.strip(), proc.stderr


# The pip-only tools, started with `python -m` (their module's main parses the options first).
TOOLS = {
    "bag_player": "simdistill_ros.nodes.bag_player:main",
    "detection_recorder": "simdistill_ros.nodes.detection_recorder:main",
}


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_tool_help_lists_every_option_without_starting_anything(name: str):
    import importlib

    module = importlib.import_module(TOOLS[name].split(":")[0])
    proc, report, seconds = run_help(TOOLS[name], name)
    assert report["code"] == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"usage: {name} "), proc.stdout
    options = [o for action in module.build_parser()._actions for o in action.option_strings]
    assert options and all(o in proc.stdout for o in options), options
    assert not report["torch"] and not report["rclpy_initialised"]
    assert seconds < 10, seconds
