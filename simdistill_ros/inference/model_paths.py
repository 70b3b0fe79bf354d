"""Where shipped and user checkpoints are found."""

from __future__ import annotations

from pathlib import Path

SHIPPED_MODELS = ("teacher_tiny", "baseline_tiny", "student_tiny")


def shipped_models_dir() -> Path:
    """``share/simdistill_ros/models`` in a ROS install, else the source checkout's ``models/``."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            share = Path(get_package_share_directory("simdistill_ros")) / "models"
            if share.is_dir():
                return share
        except (PackageNotFoundError, OSError):  # not installed, or no sourced ROS env (AMENT_PREFIX_PATH)
            pass
    except ImportError:
        pass
    return Path(__file__).resolve().parents[2] / "models"


def resolve_model_path(name_or_path: str | Path) -> Path:
    """A checkpoint directory from a path, or from a shipped name such as ``student_tiny``."""
    p = Path(name_or_path).expanduser()
    if p.exists():
        return p
    candidate = shipped_models_dir() / str(name_or_path)
    if candidate.exists():
        return candidate
    raise FileNotFoundError(
        f"no checkpoint at {p} and no shipped model named {str(name_or_path)!r} in {shipped_models_dir()} "
        f"(shipped: {', '.join(SHIPPED_MODELS)})"
    )
