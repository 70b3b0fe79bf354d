"""The state ``train --resume`` continues from, stored without pickle.

Optimizer, scheduler, grad-scaler and RNG states are nested dicts/lists of numbers, strings and tensors.
The tensors go to ``train_state.safetensors``; everything else to ``train_state.json``, with tuples and
int-keyed dicts tagged so they come back as they were. Loading reads only these two formats, so a file
planted in a run directory can never execute code (``torch.load`` would unpickle it).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

STATE_JSON = "train_state.json"
STATE_TENSORS = "train_state.safetensors"
LEGACY_PICKLE = "train_state.pt"  # written by older versions; never loaded
FORMAT = 1


class TrainStateError(RuntimeError):
    """A stored training state that cannot be read back exactly."""


def _encode(obj: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().to("cpu").contiguous()
        return {"__tensor__": path}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, tensors, f"{path}.{k}") for k, v in obj.items()}
        return {"__items__": [[k, _encode(v, tensors, f"{path}.{k}")] for k, v in obj.items()]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TrainStateError(f"cannot store {type(obj).__name__} at {path} in a training state")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        key = obj["__tensor__"]
        if key not in tensors:
            raise TrainStateError(f"{STATE_TENSORS} lacks the tensor {key!r} that {STATE_JSON} names")
        return tensors[key]
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {k: _decode(v, tensors) for k, v in obj["__items__"]}
    return {k: _decode(v, tensors) for k, v in obj.items()}


def _sha256(file: Path) -> str:
    return hashlib.sha256(file.read_bytes()).hexdigest()


def save_train_state(directory: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` (nested dicts/lists/tuples of numbers, strings and tensors) into ``directory``.
    The tensors file is written first and the JSON, which names its sha256, last: a kill in between
    leaves a JSON that does not match, and :func:`load_train_state` says so."""
    root = Path(directory)
    tensors: dict[str, torch.Tensor] = {}
    encoded = _encode(state, tensors, "state")
    tmp_t, tmp_j = root / (STATE_TENSORS + ".tmp"), root / (STATE_JSON + ".tmp")
    save_file(tensors, str(tmp_t))
    os.replace(tmp_t, root / STATE_TENSORS)
    doc = {"format": FORMAT, "tensors_sha256": _sha256(root / STATE_TENSORS), "state": encoded}
    tmp_j.write_text(json.dumps(doc, indent=1))
    os.replace(tmp_j, root / STATE_JSON)


def load_train_state(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The state saved by :func:`save_train_state` in ``directory``; None when there is none. Raises
    :class:`TrainStateError` when the two files are unreadable or do not belong together."""
    root = Path(directory)
    jfile, tfile = root / STATE_JSON, root / STATE_TENSORS
    if not jfile.exists():
        return None
    try:
        doc = json.loads(jfile.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise TrainStateError(f"{jfile}: unreadable JSON ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or "state" not in doc:
        raise TrainStateError(f"{jfile}: not a training state of format {FORMAT}")
    if not tfile.is_file() or _sha256(tfile) != doc.get("tensors_sha256"):
        raise TrainStateError(f"{tfile}: missing or not the tensors {jfile.name} was written with")
    try:
        tensors = load_file(str(tfile))
    except (SafetensorError, OSError, ValueError) as err:
        raise TrainStateError(f"{tfile}: unreadable safetensors ({err})") from None
    return _decode(doc["state"], tensors)
