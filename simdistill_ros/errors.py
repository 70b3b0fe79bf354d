"""The one base of the errors that are the user's input, not a bug: a command line prints them as one line,
no traceback, exit status 2. The bottom of the package: imports nothing of it. Each package's own errors
(``CalibrationError``, ``BagError``, ``StoreError``, ``CheckpointError``, ``FrameInputError``) subclass it."""

import os


class UserError(Exception):
    """A problem with the user's input (paths, options, data): printed as one clear line, exit status 2."""


# The ROS 2 packages the commands and nodes import. A ROS install has them all (apt, with its environment
# sourced); the pip-only set-up (`make setup`) installs the PyPI wheels and builds vision_msgs and tf2_msgs,
# which have no wheel, from msgs/.
_ROS_PACKAGES = (
    "rclpy rcl_interfaces builtin_interfaces std_msgs geometry_msgs sensor_msgs visualization_msgs "
    "diagnostic_msgs rosgraph_msgs vision_msgs tf2_msgs"
).split()
# Optional Python packages that pip does not install with this one (setup.py), and how to add them.
_OPTIONAL = {
    "nuscenes": "the official nuScenes devkit is not installed (it pins old versions of its dependencies, "
    "so it is not a dependency of this package): pip install matplotlib scikit-learn pyquaternion cachetools "
    "shapely && pip install --no-deps nuscenes-devkit==1.2.0",
}
_ONNX = "is not installed: pip install onnx onnxscript onnxruntime (onnxruntime-gpu for CUDA)"
_OPTIONAL.update({name: f"{name} {_ONNX}" for name in ("onnx", "onnxscript", "onnxruntime")})


class MissingPackageError(UserError):
    """A ROS 2 package (rclpy, a message package) or an optional Python package that a command or node
    needs is not installed."""


def missing_package_error(exc: ModuleNotFoundError, distro: str | None = None) -> MissingPackageError | None:
    """The one-line error for ``exc`` when it is a missing ROS 2 or optional package, else None (another
    missing module is a bug or a broken install, and keeps its traceback). ``distro``: the ROS 2
    distribution the apt package is named for (default: $ROS_DISTRO, else jazzy)."""
    name = (exc.name or "").split(".")[0]
    if name in _OPTIONAL:
        return MissingPackageError(_OPTIONAL[name])
    if name not in _ROS_PACKAGES:
        return None
    distro = distro or os.environ.get("ROS_DISTRO") or "jazzy"
    apt = f"ros-{distro}-{name.replace('_', '-')}"
    if name in ("vision_msgs", "tf2_msgs"):
        pip_only = f"`make setup` in a source checkout (it builds {name} from msgs/{name})"
    else:
        pip_only = f"`make setup` in a source checkout (the ROS 2 {distro} wheels from PyPI)"
    return MissingPackageError(
        f"the ROS 2 package {name} is not installed: install {apt} (apt) and source the ROS 2 environment, "
        f"or, without a ROS install, use the environment of {pip_only}"
    )
