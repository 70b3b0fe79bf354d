"""Checkpoints shipped in models/: found by name without a ROS environment, loadable, small, with cards."""

from __future__ import annotations

import json

import pytest
import torch

from simdistill_ros.models import load_checkpoint
from simdistill_ros.models.checkpoint import SHIPPED_MODELS, resolve_model_path


def test_shipped_names_resolve_without_a_sourced_ros_environment(monkeypatch) -> None:
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    for name in SHIPPED_MODELS:
        path = resolve_model_path(name)
        assert path.name == name and (path / "model.safetensors").is_file()
    with pytest.raises(FileNotFoundError, match="student_tiny"):
        resolve_model_path("no_such_model")


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_shipped_checkpoint_loads_is_small_and_has_a_model_card(name: str) -> None:
    path = resolve_model_path(name)
    assert (path / "model.safetensors").stat().st_size < 20e6
    net, cfg, meta = load_checkpoint(path)
    assert meta["model_type"] == name.removesuffix("_tiny")
    card = (path / "README.md").read_text()
    for section in ("## Data", "## Training command", "## Metrics", "## Known limits"):
        assert section in card
    assert json.loads((path / "config.json").read_text())["image_size"] == list(cfg.image_size)
    assert all(torch.isfinite(p).all() for p in net.parameters())
