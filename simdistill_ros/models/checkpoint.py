"""Checkpoints: a directory holding model.safetensors, config.json and meta.json, written atomically."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from simdistill_ros.models.config import ModelConfig
from simdistill_ros.models.detectors import MODEL_TYPES

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
META = "meta.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not match its configuration."""


def save_checkpoint(
    path_dir: str | os.PathLike, model: nn.Module, config: ModelConfig, metadata: dict[str, Any]
) -> Path:
    """Write ``path_dir`` = {model.safetensors, config.json, meta.json}. Files go to a temporary directory
    beside it that then replaces ``path_dir``, so a reader sees either the old or the new checkpoint,
    never a mix or a half-written file. ``meta.json`` gets ``model_type`` from the model's class."""
    target = Path(path_dir).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(metadata)
    model_type = getattr(model, "model_type", "")
    if model_type:
        meta["model_type"] = model_type
    if meta.get("model_type") not in MODEL_TYPES:
        raise ValueError(
            f"metadata needs model_type in {sorted(MODEL_TYPES)}, got {meta.get('model_type')!r}"
        )
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"model_type": meta["model_type"]})
        _write_json(tmp / CONFIG, config.to_dict())
        _write_json(tmp / META, meta)
        _fsync_file(tmp / WEIGHTS)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a checkpoint is shared like any other directory
        old = None
        if target.exists():
            # a directory cannot be os.replace-d onto a non-empty one: move the old one aside first
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / target.name)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, ModelConfig, dict[str, Any]]:
    """Build the model named by meta.json's ``model_type`` from config.json and load its weights; the
    model is returned in eval mode on ``map_location``.

    ``path`` is the checkpoint directory (with or without a trailing slash) or its model.safetensors.
    Raises CheckpointError naming the file and the problem.
    """
    root = _resolve(path)
    meta = _read_json(root / META)
    model_type = meta.get("model_type")
    if model_type not in MODEL_TYPES:
        raise CheckpointError(f"{root / META}: model_type {model_type!r} is not one of {sorted(MODEL_TYPES)}")
    config = _read_config(root / CONFIG)
    # the checkpoint holds every weight: skip the ImageNet start (and its package) when rebuilding the model
    build_config = dataclasses.replace(
        config, backbone=dataclasses.replace(config.backbone, pretrained=False)
    )
    try:
        model = MODEL_TYPES[model_type](build_config)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{root / CONFIG}: cannot build a {model_type} model: {e}") from e
    model.config = config
    _load_weights(model, root / WEIGHTS)
    return model.to(map_location).eval(), config, meta


def load_state_into(model: nn.Module, path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint's weights into an existing model (strict); returns its metadata."""
    root = _resolve(path)
    _load_weights(model, root / WEIGHTS)
    return _read_json(root / META) if (root / META).exists() else {}


def load_matching_weights(model: nn.Module, path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Warm start: copy every tensor of a checkpoint whose name and shape match one of ``model``'s (for
    example a teacher's camera branch, fuser, decoder and head into a student). Returns (copied, skipped)
    parameter names of ``model``; raises CheckpointError if nothing matches."""
    file = _resolve(path) / WEIGHTS
    state = _read_state(file)
    own = model.state_dict()
    take = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not take:
        raise CheckpointError(f"{file}: no tensor matches the model by name and shape")
    model.load_state_dict(take, strict=False)
    return sorted(take), sorted(k for k in own if k not in take)


def read_config(path: str | os.PathLike) -> ModelConfig:
    """The ModelConfig stored in a checkpoint."""
    return _read_config(_resolve(path) / CONFIG)


def _resolve(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.is_file() and p.name == WEIGHTS:
        p = p.parent
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint directory")
    if not p.is_dir():
        raise CheckpointError(f"{p}: a checkpoint is a directory holding {WEIGHTS}, {CONFIG} and {META}")
    return p


def _read_state(file: Path) -> dict[str, torch.Tensor]:
    if not file.is_file():
        raise CheckpointError(f"{file}: missing weights file")
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{file}: unreadable safetensors (truncated or corrupt?): {e}") from e


def _load_weights(model: nn.Module, file: Path) -> None:
    state = _read_state(file)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:5])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:5])})")
    if mismatched:
        problems.append(
            f"{len(mismatched)} shape mismatches, file vs model (e.g. {'; '.join(mismatched[:5])})"
        )
    if problems:
        raise CheckpointError(f"{file}: weights do not match the configuration: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)


def _read_config(file: Path) -> ModelConfig:
    data = _read_json(file)
    try:
        return ModelConfig.from_dict(data)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{file}: invalid model config: {e}") from e


def _read_json(file: Path) -> dict[str, Any]:
    if not file.is_file():
        raise CheckpointError(f"{file}: missing file")
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{file}: unreadable JSON: {e}") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{file}: expected a JSON object")
    return data


def _write_json(file: Path, data: dict[str, Any]) -> None:
    with file.open("w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _fsync_file(file: Path) -> None:
    fd = os.open(file, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
