"""Checkpoints: a directory holding model.safetensors, config.json and meta.json, written atomically;
finding one by path or shipped name, and the device it runs on.

meta.json carries ``weights_sha256``, the sha256 of model.safetensors, and ``config_sha256``, the sha256 of
config.json, both checked on every load (``verify``): flipped bytes in the weights, or a config.json that
no longer describes them (the same weights on a doubled BEV grid put every box metres off), are a clear
error instead of silently wrong detections. A checkpoint saved before ``config_sha256`` existed still
loads with its weights checked, and a warning says that its config.json cannot be.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from simdistill_ros.errors import UserError
from simdistill_ros.models.config import ModelConfig
from simdistill_ros.models.detectors import MODEL_TYPES
from simdistill_ros.package_share import share_dir

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
META = "meta.json"
# _v3 and _v2: `make reproduce`'s seed-0 runs (config tiny_v2; baseline_v3 the default detector,
# teacher_v2 the default teacher); _tiny: the small first-recipe models (config tiny, about 5x cheaper per
# frame) that the tests run
SHIPPED_MODELS = (
    "baseline_v3",
    "baseline_depth_v3",
    "teacher_v2",
    "baseline_v2",
    "student_v2",
    "teacher_tiny",
    "baseline_tiny",
    "student_tiny",
)
SHA256_KEY = "weights_sha256"
CONFIG_SHA256_KEY = "config_sha256"  # of config.json's bytes: it changes what the weights compute


class CheckpointError(UserError, RuntimeError):
    """A checkpoint is missing, unreadable, or does not match its configuration."""


class CheckpointWarning(UserWarning):
    """A checkpoint loads, but something about it cannot be checked (no weights_sha256 in meta.json)."""


def weights_sha256(file: str | os.PathLike) -> str:
    """sha256 (hex) of a file (the weights, config.json), read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_weights(root: str | os.PathLike, meta: dict[str, Any] | None = None, config: bool = True) -> None:
    """Check ``root``'s model.safetensors against meta.json's ``weights_sha256`` and (``config``) its
    config.json against ``config_sha256``: CheckpointError naming the file on a mismatch, a
    :class:`CheckpointWarning` when meta.json has no such field (an older checkpoint). ``config`` False:
    only the weights are read (a warm start or a resume builds its model from its own configuration)."""
    root = Path(root)
    file = root / WEIGHTS
    if meta is None:
        meta = _read_json(root / META)
    expected = meta.get(SHA256_KEY)
    if not expected:
        warnings.warn(
            f"{root / META} has no {SHA256_KEY}: the weights of this checkpoint cannot be checked "
            "(saving it again adds the field)",
            CheckpointWarning,
            stacklevel=3,
        )
        return
    if not file.is_file():
        raise CheckpointError(f"{file}: missing weights file")
    actual = weights_sha256(file)
    if actual != expected:
        raise CheckpointError(
            f"{file}: sha256 {actual[:16]}... differs from {SHA256_KEY} {str(expected)[:16]}... in {META}: "
            "the weights are corrupt or were changed; restore the checkpoint (or pass --no-verify to load "
            "it anyway)"
        )
    if config:
        _verify_config(root, meta)


def _verify_config(root: Path, meta: dict[str, Any]) -> None:
    file = root / CONFIG
    expected = meta.get(CONFIG_SHA256_KEY)
    if not expected:
        warnings.warn(
            f"{root / META} has no {CONFIG_SHA256_KEY} (saved before it existed): {file} cannot be checked "
            "against the weights (saving the checkpoint again adds the field)",
            CheckpointWarning,
            stacklevel=4,
        )
        return
    if not file.is_file():
        raise CheckpointError(f"{file}: missing file")
    actual = weights_sha256(file)
    if actual != expected:
        raise CheckpointError(
            f"{file}: sha256 {actual[:16]}... differs from {CONFIG_SHA256_KEY} {str(expected)[:16]}... in "
            f"{META}: the model configuration was changed after the weights were saved, so they would "
            "compute something else; restore the file (or pass --no-verify to load it anyway)"
        )


def save_checkpoint(
    path_dir: str | os.PathLike, model: nn.Module, config: ModelConfig, metadata: dict[str, Any]
) -> Path:
    """Write ``path_dir`` = {model.safetensors, config.json, meta.json}. Files go to a temporary directory
    beside it that then replaces ``path_dir``, so a reader sees either the old or the new checkpoint,
    never a mix or a half-written file. ``meta.json`` gets ``model_type`` from the model's class and
    ``weights_sha256`` of the written weights and ``config_sha256`` of the written config.json."""
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
        meta[SHA256_KEY] = weights_sha256(tmp / WEIGHTS)
        _write_json(tmp / CONFIG, config.to_dict())
        meta[CONFIG_SHA256_KEY] = weights_sha256(tmp / CONFIG)
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
    path: str | os.PathLike, map_location: str | torch.device = "cpu", verify: bool = True
) -> tuple[nn.Module, ModelConfig, dict[str, Any]]:
    """Build the model named by meta.json's ``model_type`` from config.json and load its weights; the
    model is returned in eval mode on ``map_location``.

    ``path`` is the checkpoint directory (with or without a trailing slash) or its model.safetensors.
    ``verify`` checks the weights and config.json against meta.json's sha256s (:func:`verify_weights`).
    Raises CheckpointError naming the file and the problem.
    """
    root = _resolve(path)
    meta = _read_json(root / META)
    if verify:
        verify_weights(root, meta)
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


def load_state_into(model: nn.Module, path: str | os.PathLike, verify: bool = True) -> dict[str, Any]:
    """Load a checkpoint's weights into an existing model (strict); returns its metadata."""
    root = _resolve(path)
    meta = _read_json(root / META) if (root / META).exists() else {}
    if verify:
        verify_weights(root, meta, config=False)  # the model is built from its own configuration
    _load_weights(model, root / WEIGHTS)
    return meta


def load_matching_weights(
    model: nn.Module, path: str | os.PathLike, verify: bool = True
) -> tuple[list[str], list[str]]:
    """Warm start: copy every tensor of a checkpoint whose name and shape match one of ``model``'s (for
    example a teacher's camera branch, fuser, decoder and head into a student). Returns (copied, skipped)
    parameter names of ``model``; raises CheckpointError if nothing matches."""
    root = _resolve(path)
    if verify:
        verify_weights(root, _read_json(root / META) if (root / META).exists() else {}, config=False)
    file = root / WEIGHTS
    state = _read_state(file)
    own = model.state_dict()
    take = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not take:
        raise CheckpointError(f"{file}: no tensor matches the model by name and shape")
    model.load_state_dict(take, strict=False)
    return sorted(take), sorted(k for k in own if k not in take)


def shipped_models_dir() -> Path:
    """The source checkout's ``models/``, else ``share/simdistill_ros/models`` of the install prefix
    (:func:`simdistill_ros.package_share.share_dir`; no sourced ROS environment needed)."""
    return share_dir() / "models"


def resolve_model_path(name_or_path: str | os.PathLike) -> Path:
    """A checkpoint directory from a path, or from a shipped name such as ``baseline_v3``."""
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


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without CUDA falls back to CPU with a warning."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        print("warning: CUDA requested but not available; using the CPU")
        return torch.device("cpu")
    return torch.device(name)


class LoadedModel(NamedTuple):
    """What :func:`load_model` returns (unpacks as a tuple)."""

    model: nn.Module  # eval mode, on ``device``
    config: ModelConfig
    meta: dict[str, Any]
    device: torch.device


def load_model(name_or_path: str | os.PathLike, device: str = "auto", verify: bool = True) -> LoadedModel:
    """A checkpoint from a path or shipped name (``baseline_v3``) on ``device`` (auto, cpu, cuda[:N]);
    ``verify`` checks the weights' sha256."""
    dev = resolve_device(device)
    model, config, meta = load_checkpoint(resolve_model_path(name_or_path), map_location=dev, verify=verify)
    return LoadedModel(model, config, meta, dev)


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
        raise CheckpointError(
            f"{file}: invalid model config: {e} (restore the file as the checkpoint was saved)"
        ) from e


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
