"""The package as a user installs it with pip: the wheel built from a clean copy of the tracked tree,
installed (not editable) into a fresh venv whose only other contents are the wheel's declared dependencies,
and every command run from outside the checkout.

torch is the one dependency a user picks for their platform and installs first (README): the venv gets it
as a link to this environment's CPU build (torch and its own requirements only, through a .pth), so the
test does not unpack 700 MB again. Everything else comes from pip's resolution of the wheel's metadata
(from the local cache when present). ROS 2 is added afterwards, as a user adds it: the same ROS 2 wheels as
this environment (versions pinned from it), then vision_msgs and tf2_msgs copied as built by `make setup`
(what a prebuilt package install does; building them again costs minutes).

Selected with ``-m install``; about 2-4 min on 2 busy cores.
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import os
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parents[1]
PYVER = f"python{sys.version_info.major}.{sys.version_info.minor}"


def _tracked_copy(dst: Path) -> Path:
    """The tracked (and untracked, not ignored) files of the checkout under ``dst``, as a clone has them."""
    listing = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for rel in filter(None, (p.decode() for p in listing)):
        if (ROOT / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dst / rel)
    return dst


def _pip(*args: str, timeout: float = 600) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"pip {' '.join(args)}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"


def _closure(name: str) -> list[metadata.Distribution]:
    """The installed distribution ``name`` and, recursively, those its (unconditional) requirements name."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [name]
    while todo:
        dist = metadata.distribution(todo.pop())
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


def _link_platform_torch(venv: Path) -> None:
    """torch as the user's platform build, installed before the package: links to this environment's
    torch and its requirements in a directory the venv reads through a .pth (pip sees them installed)."""
    links = venv / "platform-torch"
    links.mkdir()
    for dist in _closure("torch"):
        for top in {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
            src = Path(dist.locate_file(top))
            if src.exists() and not (links / top).exists() and top != "__pycache__":
                (links / top).symlink_to(src)
    (venv / "lib" / PYVER / "site-packages" / "platform_torch.pth").write_text(f"{links}\n")


def _clean_env(venv: Path, **extra: str) -> dict[str, str]:
    """A user's shell: the venv's bin first, nothing of this environment (no PYTHONPATH, no ROS variables,
    no LD_LIBRARY_PATH or re-exec guard of the ROS wheels' bootstrapper)."""
    env = {k: os.environ[k] for k in ("HOME", "LANG", "TMPDIR", "USER") if k in os.environ}
    env.update(
        PATH=f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        OMP_NUM_THREADS="1",
        ROS_DOMAIN_ID=str(random.randint(1, 100)),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
    )
    env.update(extra)
    return env


def _run(venv: Path, cwd: Path, *cmd: str, env: dict | None = None, timeout: float = 300):
    return subprocess.run(
        [str(venv / "bin" / cmd[0]), *cmd[1:]],
        cwd=cwd,
        env=env or _clean_env(venv),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{' '.join(proc.args)} ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = _tracked_copy(tmp / "src")
    _pip("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"), str(src))
    (found,) = (tmp / "dist").glob("simdistill_ros-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    _link_platform_torch(venv)
    _pip("--python", str(venv / "bin" / "python"), "install", "-q", "--no-compile", str(wheel))
    return venv


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """A working directory outside the checkout: nothing of the source tree is importable from there."""
    return tmp_path_factory.mktemp("user")


@pytest.fixture(scope="module")
def world(venv: Path, outside: Path) -> Path:
    _ok(
        _run(venv, outside, "simdistill", "synth", "--out", "world", "--scenes", "2", "--frames-per-scene",
             "2", "--seed", "5", "--image-size", "64x112")
    )  # fmt: skip
    return outside / "world"


def _wheel_files(whl: Path) -> set[str]:
    with zipfile.ZipFile(whl) as z:
        return set(z.namelist())


def test_the_wheel_holds_every_module_and_share_file(wheel: Path):
    files = _wheel_files(wheel)
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "simdistill_ros").rglob("*.py")}
    assert not modules - files, f"modules missing from the wheel: {sorted(modules - files)}"
    data = f"simdistill_ros-{wheel.name.split('-')[1]}.data/data/share/simdistill_ros/"
    for folder in ("launch", "config", "models", "msgs/vision_msgs/msg"):
        src = {str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*") if p.is_file()}
        src = {s for s in src if not Path(s).name.startswith(".")}
        missing = {s for s in src if data + s not in files}
        assert not missing, f"share files missing from the wheel: {sorted(missing)}"
    assert data + "package.xml" in files


def test_the_wheel_declares_its_dependencies(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        meta = next(z.read(n).decode() for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    required = {Requirement(line.split(":", 1)[1]).name.lower() for line in meta.splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line}  # fmt: skip
    for name in (
        "torch",
        "numpy",
        "opencv-python-headless",
        "rosbags",
        "safetensors",
        "pyyaml",
        "simplejpeg",
    ):
        assert name in required, name
    # a version range on torch would make pip replace the user's platform build with PyPI's CUDA one
    assert "Requires-Dist: torch\n" in meta


def test_each_console_script_answers_help_from_outside_the_checkout(venv: Path, outside: Path):
    for script, expect in (
        ("simdistill", "usage: simdistill"),
        ("detector_node", "usage: detector_node"),
        ("teacher_replay_node", "usage: teacher_replay_node"),
    ):
        proc = _ok(_run(venv, outside, script, "--help"))
        assert proc.stdout.startswith(expect), proc.stdout[:200]
    where = _ok(_run(venv, outside, "python", "-c", "import simdistill_ros; print(simdistill_ros.__file__)"))
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # the install, not the checkout


def _train_two_steps(venv: Path, cwd: Path, world: Path) -> None:
    """Two optimisation steps of the student, distilled from the shipped teacher found by name."""
    _ok(
        _run(venv, cwd, "simdistill", "train", "student", "--config", "tiny", "--data", str(world), "--out",
             "student", "--teacher", "teacher_tiny", "--max-steps", "2", "--batch-size", "1")
    )  # fmt: skip


def test_synth_train_and_replay_run_from_the_install(venv: Path, outside: Path, world: Path):
    _train_two_steps(venv, outside, world)
    assert (outside / "student" / "last" / "model.safetensors").is_file()
    bags = sorted(str(p) for p in (world / "bags").iterdir())
    proc = _ok(
        _run(venv, outside, "simdistill", "replay", "--teacher", "teacher_tiny", "--bags", *bags, "--out",
             "store", "--data", str(world))
    )  # fmt: skip
    assert "4 frames stored" in proc.stdout, proc.stdout[-1000:]


def test_commands_without_their_optional_packages_say_what_to_install(venv: Path, outside: Path, world: Path):
    bag = sorted((world / "bags").iterdir())[0]
    # no ROS 2 in the venv yet: `detect` writes ROS 2 messages
    proc = _run(
        venv, outside, "simdistill", "detect", "--model", "student_tiny", "--bag", str(bag), "--out", "o"
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "ROS 2 package rclpy is not installed: install ros-jazzy-rclpy" in proc.stderr
    proc = _run(venv, outside, "detector_node", env=_clean_env(venv, ROS_DISTRO="humble"))
    assert proc.returncode == 1 and "install ros-humble-rclpy (apt)" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    # the nuScenes devkit is not a dependency (it pins old numpy and Shapely)
    proc = _run(venv, outside, "simdistill", "evaluate", "--data", str(world), "--gt-as-results")
    assert proc.returncode == 2 and "pip install --no-deps nuscenes-devkit==1.2.0" in proc.stderr, proc.stderr


def test_a_wheel_missing_a_subpackage_fails_the_check(venv: Path, wheel: Path, outside: Path, world: Path):
    """The wheel setup.py made before training/ had an __init__.py: `train` must fail the check above."""
    broken = wheel.parent.parent / "broken" / wheel.name
    broken.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(broken, "w", zipfile.ZIP_STORED) as dst:
        for item in src.infolist():
            if not item.filename.startswith("simdistill_ros/training/"):
                dst.writestr(item, b"" if item.filename.endswith("RECORD") else src.read(item))
    pip = ("--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps", "--force-reinstall")
    _pip(*pip, str(broken))
    (outside / "broken").mkdir()
    try:
        with pytest.raises(AssertionError, match="No module named 'simdistill_ros.training'"):
            _train_two_steps(venv, outside / "broken", world)
        with pytest.raises(AssertionError, match="modules missing from the wheel"):
            test_the_wheel_holds_every_module_and_share_file(broken)
    finally:
        _pip(*pip, str(wheel))


def _ros_requirements() -> list[str]:
    """This environment's ROS 2 wheels, pinned to the versions it has."""
    found = {d.metadata["Name"].lower(): d.version for d in metadata.distributions()}
    return sorted(f"{n}=={v}" for n, v in found.items() if n.startswith("ros-"))


def _copy_built_messages(venv: Path, package: str) -> None:
    """``package`` as `make setup` built it into this environment's prefix (its libraries, Python
    module, share files and ament index entries), copied into the venv's prefix."""
    prefix = Path(sys.prefix)
    for src in [
        *prefix.glob(f"lib/lib{package}__*.so"),
        prefix / "lib" / PYVER / "site-packages" / package,
        prefix / "share" / package,
        *prefix.glob(f"share/ament_index/resource_index/*/{package}"),
    ]:
        dst = venv / src.relative_to(prefix)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)


@pytest.mark.skipif(
    importlib.util.find_spec("rclpy") is None, reason="no ROS 2 in this environment to pin from"
)
def test_detect_runs_from_the_install_once_ros2_is_there(venv: Path, outside: Path, world: Path):
    _pip("--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps", "--no-compile",
         *_ros_requirements())  # fmt: skip
    bag = sorted((world / "bags").iterdir())[0]
    # A sourced ROS environment without vision_msgs: one line naming the package to install.
    sourced = _clean_env(venv, AMENT_PREFIX_PATH=str(venv), ROS_DISTRO="jazzy")
    detect = ("simdistill", "detect", "--model", "student_tiny", "--bag", str(bag))
    proc = _run(venv, outside, *detect, "--out", "no_vision", env=sourced)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "ROS 2 package vision_msgs is not installed: install ros-jazzy-vision-msgs" in proc.stderr
    assert not (outside / "no_vision").exists()
    for package in ("vision_msgs", "tf2_msgs"):
        _copy_built_messages(venv, package)
    for env in (sourced, _clean_env(venv)):  # the shipped model found with and without AMENT_PREFIX_PATH
        out = f"detections_{len(list(outside.glob('detections_*')))}"
        proc = _ok(_run(venv, outside, *detect, "--out", out, env=env))
        assert (outside / out / "metadata.yaml").is_file(), proc.stdout[-1000:]
        assert "2 frames" in proc.stdout, proc.stdout[-1000:]
