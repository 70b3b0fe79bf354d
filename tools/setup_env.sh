#!/usr/bin/env bash
# Idempotent set-up of a pip-only ROS 2 + PyTorch environment in $1 (default .venv):
# torch (CPU), rclpy and message wheels, vision_msgs/tf2_msgs built from msgs/, cv_bridge, rosbags,
# nuscenes-devkit, and this package in editable mode. Each step leaves a stamp so re-runs are no-ops.
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

if [ ! -x "$PY" ]; then
  echo "[setup] creating $VENV"
  python3 -m venv "$VENV"
fi

h=$(hash_of tools/setup_env.sh requirements.txt)
if ! step_done pip "$h"; then
  echo "[setup] installing torch (CPU) and the Python dependencies"
  # torch first and pinned: a loose spec would pull multi-GB CUDA wheels.
  "${PIP[@]}" torch==2.13.0 2> >(grep -v "is ignored: it is neither" >&2)
  "${PIP[@]}" -r requirements.txt 2> >(grep -v "is ignored: it is neither" >&2)
  # The devkit pins old versions of its dependencies; its needs are in requirements.txt.
  "${PIP[@]}" --no-deps nuscenes-devkit==1.2.0 2> >(grep -v "is ignored: it is neither" >&2)
  mark pip "$h"
fi

# Rebuilt whenever the pip step changed (a new rosidl/message wheel may change the generated code).
h=$(hash_of tools/setup_env.sh "$STAMPS/pip" msgs/*/CMakeLists.txt msgs/*/package.xml msgs/*/*/*)
if ! step_done msgs "$h"; then
  if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then
    echo "[setup] installing cmake and g++ (apt)"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq cmake g++ >/dev/null
  fi
  # The ROS wheels' exported CMake files name the include dirs of the machine that built them.
  "$PY" tools/fix_wheel_cmake.py "$VENV"
  for pkg in vision_msgs tf2_msgs; do
    echo "[setup] building $pkg from msgs/$pkg"
    build=$(mktemp -d)
    # ament's python helpers run under the venv's interpreter; the wheels' site-packages carry them.
    (
      export PATH=$VENV/bin:$PATH
      cmake -S "msgs/$pkg" -B "$build" -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
        -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >"$build/configure.log" 2>&1 \
        || { tail -40 "$build/configure.log"; exit 1; }
      cmake --build "$build" -j "$(nproc)" >"$build/build.log" 2>&1 || { tail -40 "$build/build.log"; exit 1; }
      cmake --install "$build" >"$build/install.log" 2>&1 || { tail -40 "$build/install.log"; exit 1; }
    )
    rm -rf "$build"
  done
  # Smoke test: the generated types import, and rclpy can publish them (own domain: no cross-talk).
  ROS_DOMAIN_ID=$((RANDOM % 100 + 1)) "$PY" -c "
import rclpy, vision_msgs.msg as v, tf2_msgs.msg as t, tf2_msgs.srv, tf2_msgs.action
rclpy.init(); n = rclpy.create_node('simdistill_setup_check')
n.create_publisher(v.Detection3DArray, 'setup_check', 1).publish(v.Detection3DArray())
n.create_publisher(t.TFMessage, 'setup_check_tf', 1).publish(t.TFMessage())
n.destroy_node(); rclpy.shutdown()"
  mark msgs "$h"
fi

h=$(hash_of tools/setup_env.sh setup.py setup.cfg package.xml)
if ! step_done package "$h"; then
  echo "[setup] installing simdistill_ros (editable)"
  "${PIP[@]}" --no-deps --no-build-isolation -e .
  mark package "$h"
fi

echo "[setup] environment ready in $VENV ($(($(date +%s) - start)) s)"
