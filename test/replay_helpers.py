"""Shared, built-once data for the teacher replay tests: a tiny synthetic world (one mcap and one sqlite3
bag), random-initialised teacher checkpoints and a replayed store. Built under pytest's session base
temp directory, so the three replay test files share it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_runner import run_cli
from timeouts import time_limit

REPO = Path(__file__).resolve().parents[1]
FRAMES_PER_SCENE = 3


def env(**extra: str) -> dict[str, str]:
    """Subprocess environment that imports this checkout (not whatever the venv's editable install names)."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e.update(extra)
    return e


def run(*args: str, check: bool = True, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """``simdistill ARGS`` importing this checkout."""
    return run_cli(*args, check=check, env=env(**(extra_env or {})))


def _build_world(root: Path) -> None:
    """Two scenes (mcap + sqlite3) with ground truth in one dataset, plus random teachers."""
    import torch

    from simdistill_ros.models import TeacherModel, save_checkpoint, tiny
    from simdistill_ros.synth.export import synthesize

    world = root / "world"
    synthesize(world, 1, FRAMES_PER_SCENE, seed=21, image_size=(64, 112), val_fraction=0.0, progress=False)
    other = root / "other"
    synthesize(
        other,
        1,
        FRAMES_PER_SCENE,
        seed=22,
        storage="sqlite3",
        image_size=(64, 112),
        val_fraction=1.0,
        progress=False,
    )
    # one dataset with both scenes: the tables of each are matched to frames by stamp
    shutil.move(str(next((other / "bags").iterdir())), str(world / "bags"))
    (root / "gt_other").mkdir()
    shutil.move(str(other / "v1.0-synth"), str(root / "gt_other" / "v1.0-synth"))
    for seed, name in ((0, "teacher"), (1, "teacher_b")):
        torch.manual_seed(seed)
        cfg = tiny()
        save_checkpoint(root / name, TeacherModel(cfg), cfg, {"model_type": "teacher", "note": "random init"})


def replay_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared root: world/ (bags + tables of the mcap scene), gt_other/ (tables of the sqlite3 scene),
    teacher/, teacher_b/ (different random teachers) and store/ (world's bags replayed with --data)."""
    root = tmp_path_factory.getbasetemp() / "replay_shared"
    done = root / ".done"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        with time_limit(300, "building the replay world"):
            _build_world(root)
        run(
            "replay",
            "--teacher",
            str(root / "teacher"),
            "--bags",
            *bags(root),
            "--out",
            str(root / "store"),
            "--data",
            str(root / "world"),
        )
        done.touch()
    return root


def bags(root: Path) -> list[str]:
    return sorted(str(p) for p in (root / "world" / "bags").iterdir())
