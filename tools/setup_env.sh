#!/usr/bin/env bash
# Idempotent set-up of a pip-only ROS 2 + PyTorch environment in $1 (default .venv):
# torch (CPU), rclpy and message wheels, vision_msgs/tf2_msgs built from msgs/, cv_bridge, rosbags,
# nuscenes-devkit, and this package in editable mode. Each step leaves a stamp so re-runs are no-ops.
# Each long step prints its expected duration and a heartbeat (tools/steps.sh, every $HEARTBEAT_S s).
# Expected durations: measured on a fresh 2-core machine, idle (wheels in the local pip cache) and busy.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
ROOT=$PWD
start=$(date +%s)
mkdir -p "$VENV"
VENV=$(cd "$VENV" && pwd)
STAMPS=$VENV/.simdistill-stamps
PY=$VENV/bin/python
PIP=("$PY" -m pip install --disable-pip-version-check -q)

# A step re-runs when its inputs (this script, the named files) change.
step_done() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
mark() { mkdir -p "$STAMPS"; echo "$2" >"$STAMPS/$1"; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
# shellcheck source=tools/steps.sh
source tools/steps.sh
did=()  # what this run installed, for the summary line
# Drops pip's harmless "... is ignored: it is neither a file nor a directory" warning.
pip_install() { "${PIP[@]}" "$@" 2> >(grep -v "is ignored: it is neither" >&2); }

if [ ! -x "$PY" ]; then
  run_step "creating $VENV" "a few seconds" python3 -m venv "$VENV"
  did+=("venv")
fi

h=$(hash_of tools/setup_env.sh requirements.txt)
if ! step_done pip "$h"; then
  # torch first and pinned: a loose spec would pull multi-GB CUDA wheels.
  run_step "pip: torch 2.13.0 (CPU)" "under 1 min idle, up to 2 min busy, plus the download of ~180 MB" \
    pip_install torch==2.13.0
  run_step "pip: requirements.txt (ROS 2 Kilted wheels, rosbags, devkit dependencies, test tools)" \
    "about 1 min idle, up to 2 min busy" pip_install -r requirements.txt
  # The devkit pins old versions of its dependencies; its needs are in requirements.txt.
  run_step "pip: nuscenes-devkit 1.2.0" "a few seconds" pip_install --no-deps nuscenes-devkit==1.2.0
  mark pip "$h"
  did+=("Python packages")
fi

build_msgs() (  # build_msgs PKG BUILD_DIR: configure, build and install one message package into the venv
  pkg=$1 build=$2
  # ament's python helpers run under the venv's interpreter; the wheels' site-packages carry them.
  export PATH=$VENV/bin:$PATH
  cmake -S "msgs/$pkg" -B "$build" -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
    -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >"$build/configure.log" 2>&1 \
    || { tail -40 "$build/configure.log"; exit 1; }
  cmake --build "$build" -j "$(nproc)" >"$build/build.log" 2>&1 || { tail -40 "$build/build.log"; exit 1; }
  cmake --install "$build" >"$build/install.log" 2>&1 || { tail -40 "$build/install.log"; exit 1; }
)

# Rebuilt whenever the pip step changed (a new rosidl/message wheel may change the generated code).
h=$(hash_of tools/setup_env.sh "$STAMPS/pip" msgs/*/CMakeLists.txt msgs/*/package.xml msgs/*/*/*)
if ! step_done msgs "$h"; then
  if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    run_step "apt: cmake and g++" "about 1 min" \
      bash -c "$SUDO apt-get update -qq && $SUDO apt-get install -y -qq cmake g++ >/dev/null"
    did+=("cmake/g++ (apt)")
  fi
  # The ROS wheels' exported CMake files name the include dirs of the machine that built them.
  "$PY" tools/fix_wheel_cmake.py "$VENV"
  for pkg in vision_msgs tf2_msgs autoware_perception_msgs; do
    build=$(mktemp -d)
    # The heartbeat quotes cmake's "[ NN%]" progress from the build log.
    STEP_PROGRESS="$build/build.log" run_step "cmake: building $pkg from msgs/$pkg" \
      "about 25 s idle, up to 4 min busy" build_msgs "$pkg" "$build"
    rm -rf "$build"
  done
  # Smoke test: the generated types import, and rclpy can publish them (own domain: no cross-talk).
  echo "[setup] checking that rclpy publishes the built messages"
  ROS_DOMAIN_ID=$((RANDOM % 100 + 1)) "$PY" -c "
import rclpy, vision_msgs.msg as v, tf2_msgs.msg as t, tf2_msgs.srv, tf2_msgs.action
import autoware_perception_msgs.msg as a
rclpy.init(); n = rclpy.create_node('simdistill_setup_check')
n.create_publisher(v.Detection3DArray, 'setup_check', 1).publish(v.Detection3DArray())
n.create_publisher(t.TFMessage, 'setup_check_tf', 1).publish(t.TFMessage())
n.create_publisher(a.DetectedObjects, 'setup_check_aw', 1).publish(a.DetectedObjects())
n.destroy_node(); rclpy.shutdown()"
  mark msgs "$h"
  did+=("vision_msgs + tf2_msgs + autoware_perception_msgs")
fi

h=$(hash_of tools/setup_env.sh setup.py setup.cfg package.xml)
if ! step_done package "$h"; then
  run_step "pip: simdistill_ros (editable)" "5-30 s" pip_install --no-deps --no-build-isolation -e .
  mark package "$h"
  did+=("simdistill_ros")
fi

versions=$("$PY" -c "
import importlib.metadata as m
print(f\"torch {m.version('torch')}, rclpy {m.version('ros-rclpy')} (ROS 2 Kilted wheels), \"
      f\"simdistill_ros {m.version('simdistill_ros')} (editable)\")")
if [ ${#did[@]} -eq 0 ]; then
  echo "[setup] $VENV already up to date ($versions; $(($(date +%s) - start)) s)"
else
  changed=$(IFS=,; echo "${did[*]}" | sed 's/,/, /g')
  echo "[setup] ready in $(($(date +%s) - start)) s: installed $changed into $VENV ($versions);" \
    "activate with: source $VENV/bin/activate"
fi
