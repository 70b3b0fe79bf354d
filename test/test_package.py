"""The package as ROS users install it: `colcon build` of a clean copy installs scripts and share files."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COLCON = Path(sys.executable).with_name("colcon")


def test_package_xml_declares_the_runtime_dependencies():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "simdistill_ros"
    assert root.findtext("export/build_type") == "ament_python"
    deps = {e.text for e in root.iter("exec_depend")}
    for dep in (
        "rclpy sensor_msgs geometry_msgs std_msgs vision_msgs visualization_msgs diagnostic_msgs "
        "tf2_ros tf2_msgs message_filters cv_bridge"
    ).split():
        assert dep in deps, dep
    assert {"python3-numpy", "python3-torch"} <= deps


@pytest.mark.skipif(not COLCON.exists() or not shutil.which("git"), reason="colcon/git not installed")
def test_colcon_build_installs_scripts_and_share_files(tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    # The tracked tree only, as a clean clone would have it (untracked build outputs must not matter).
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    pkg = src / "simdistill_ros"
    for rel in filter(None, (p.decode() for p in archive)):
        if (ROOT / rel).is_file():
            (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, pkg / rel)
    proc = subprocess.run([str(COLCON), "build"], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    install = tmp_path / "install" / "simdistill_ros"
    for script in ("simdistill", "detector_node", "teacher_replay_node"):
        assert (install / "lib" / "simdistill_ros" / script).is_file(), script
    share = install / "share" / "simdistill_ros"
    assert (share / "package.xml").is_file()
    assert (share / "config" / "detector.yaml").is_file()
    assert (install / "share" / "ament_index" / "resource_index" / "packages" / "simdistill_ros").is_file()
    for name in ("launch", "models"):
        src_files = sorted(p.relative_to(ROOT / name) for p in (ROOT / name).rglob("*") if p.is_file())
        got = sorted(p.relative_to(share / name) for p in (share / name).rglob("*") if p.is_file())
        assert [p for p in src_files if not p.name.startswith(".")] == got
    # As a user runs it: the workspace sourced, the installed code (not the checkout's) finds the installed
    # share files, and the installed detector_node entry point answers --help.
    probe = (
        "import simdistill_ros, simdistill_ros.models.checkpoint as c; "
        "print(simdistill_ros.__file__); print(c.resolve_model_path('student_tiny'))"
    )
    script = (
        f"source install/setup.bash && python -c {shlex.quote(probe)} && "
        "install/simdistill_ros/lib/simdistill_ros/detector_node --help"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    proc = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    code, model, *help_text = proc.stdout.splitlines()
    assert Path(code).is_relative_to(install), code
    assert Path(model) == share / "models" / "student_tiny"
    assert help_text[0].startswith("usage: detector_node"), help_text[:3]
