"""ONNX Runtime: the second backend of the detector core and of ``simdistill evaluate``.

A checkpoint is exported once (``simdistill export``, or on first use into a cache keyed by the weights'
hash) and run by an ``onnxruntime.InferenceSession``. Execution providers: TensorRT, then CUDA, then the
CPU, as far as the installed onnxruntime offers them (the PyPI ``onnxruntime`` wheel has the CPU one only;
``onnxruntime-gpu`` adds CUDA and TensorRT) and only when the device asked for is ``cuda``.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from simdistill_ros.deployment.export import (
    EXPORT_REVISION,
    INPUT_NAMES,
    OPSET,
    OUTPUT_NAMES,
    PRECISION_KEY,
    export_onnx,
    load_graph,
    racy_scatter_nodes,
    read_metadata,
)
from simdistill_ros.errors import UserError
from simdistill_ros.models.checkpoint import load_checkpoint, resolve_model_path
from simdistill_ros.models.config import ModelConfig

BACKENDS = ("torch", "onnxruntime")
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    return backend


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as err:
        raise UserError(
            "the onnxruntime backend needs the onnxruntime package (pip install -r requirements.txt)"
        ) from err
    return onnxruntime


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "simdistill_ros" / "onnx"


def exported_path(checkpoint: str | os.PathLike) -> Path:
    """An ONNX export of ``checkpoint`` (directory or shipped name): made once, then reused from the cache
    (keyed by the weights', the config's and the exporter's versions)."""
    root = Path(resolve_model_path(checkpoint))
    digest = hashlib.sha256()
    for name in ("model.safetensors", "config.json"):
        digest.update((root / name).read_bytes())
    digest.update(f"{torch.__version__} opset {OPSET} inputs {INPUT_NAMES} rev {EXPORT_REVISION}".encode())
    path = cache_dir() / f"{root.name}-{digest.hexdigest()[:16]}.onnx"
    if not path.exists():
        net, cfg, _ = load_checkpoint(root)
        export_onnx(net, cfg, path)
    return path


class OnnxRuntimeRunner:
    """An exported detector in an onnxruntime session: (images, splat geometry) -> head output maps.

    ``threads``: intra-op threads (default: torch's). Spinning threads are turned off: on a machine shared
    with other processes a spinning pool costs far more than it saves. A file exported by an older version
    (its splat as ScatterND, see :func:`~simdistill_ros.deployment.export.racy_scatter_nodes`) runs in one
    thread, with a warning to export it again.
    """

    def __init__(self, path: str | os.PathLike, device: str = "cpu", threads: int | None = None) -> None:
        ort = _import_onnxruntime()
        self.path = Path(path)
        graph = load_graph(self.path)  # parsed once for both readers
        self.model_type, self.config, self.feature_hw = read_metadata(self.path, graph)
        self.threads = int(threads or torch.get_num_threads())
        racy = racy_scatter_nodes(self.path, graph)
        if racy and self.threads > 1:
            warnings.warn(
                f"{self.path}: exported by an older simdistill_ros (ScatterND {', '.join(racy)}), whose "
                "sums onnxruntime gets wrong in more than one thread: running it in one thread; "
                "export it again with `simdistill export` for full speed",
                stacklevel=2,
            )
            self.threads = 1
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        available = ort.get_available_providers()
        wanted = [p for p in GPU_PROVIDERS if p in available] if device == "cuda" else []
        self.providers = wanted + ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(self.path), opts, providers=self.providers)
        # from the session's copy of the metadata: the file is not parsed a second time
        self.precision = self.session.get_modelmeta().custom_metadata_map.get(PRECISION_KEY, "fp32")
        inputs = tuple(i.name for i in self.session.get_inputs())
        if inputs != INPUT_NAMES:
            raise UserError(
                f"{self.path}: its inputs are {', '.join(inputs)}, this version feeds "
                f"{', '.join(INPUT_NAMES)} (the file was exported by an older simdistill_ros): export it "
                "again with `simdistill export`"
            )

    @property
    def config_image_hw(self) -> tuple[int, int]:
        return self.config.input_hw

    def __call__(self, images: np.ndarray, geometry: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """images (1, N, 3, H, W) float32 normalised; geometry: the splat geometry's three int64 index
        vectors (:func:`~simdistill_ros.deployment.export.geometry_inputs`)."""
        outs = self.session.run(list(OUTPUT_NAMES), {"images": images, **geometry})
        return {name: torch.from_numpy(o) for name, o in zip(OUTPUT_NAMES, outs)}


def load_runner(model: str | os.PathLike, device: str = "cpu") -> tuple[OnnxRuntimeRunner, ModelConfig]:
    """A runner for an ``.onnx`` file written by ``simdistill export`` or for a checkpoint (exported and
    cached on first use)."""
    path = Path(model)
    if path.suffix != ".onnx":
        path = exported_path(model)
    elif not path.is_file():
        raise UserError(f"no ONNX file at {path}")
    try:
        runner = OnnxRuntimeRunner(path, device)
    except ValueError as err:
        raise UserError(str(err)) from err
    return runner, runner.config
