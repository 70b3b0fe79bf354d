"""int8 ONNX exports: static quantisation of the convolutions, calibrated on real frames.

The convolutions are about 80-90 % of a camera model's time on onnxruntime (profile in the README's Speed
section); with 8-bit weights (signed, per output channel) and activations (unsigned, per tensor) they run
through MLAS's integer kernels (VNNI where the CPU has it). Quantised: the convolutions after the camera
backbone (neck, depth nets, splat downsampling, simulated-LiDAR branch, fuser, decoder, head), except the
few of :func:`float_convolutions`. Everything else (the lift-splat's gathers and scatters, the GCM's
sampling, softmaxes) stays float. Activation ranges are the min/max over calibration
frames from a dataset split, preprocessed exactly as the model's input. Accuracy is measured, not assumed:
``simdistill evaluate --backend onnxruntime --model FILE.onnx`` scores the result (README, Speed).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from simdistill_ros.dataset.frame_cache import load_split_frames
from simdistill_ros.deployment.export import INPUT_NAMES, PRECISION_KEY, geometry_inputs
from simdistill_ros.errors import UserError
from simdistill_ros.models.config import ModelConfig
from simdistill_ros.models.lift_splat import splat_geometry
from simdistill_ros.models.preprocess import camera_input, normalize_image


def calibration_inputs(
    config: ModelConfig,
    feature_hw: tuple[int, int],
    dataroot: str | os.PathLike,
    split: str = "train",
    frames: int = 32,
) -> list[dict[str, np.ndarray]]:
    """Graph inputs of ``frames`` frames spread evenly over ``split`` (model input as every path builds it:
    resize/crop, K folded, normalised; the rig's splat geometry)."""
    scenes = load_split_frames(dataroot, split)
    index = [(s, i) for s in scenes for i in range(len(s))]
    if not index:
        raise UserError(f"{dataroot}: split {split!r} has no frames to calibrate on")
    picks = np.linspace(0, len(index) - 1, min(frames, len(index))).round().astype(int)
    hw = config.input_hw
    out = []
    for p in picks:
        scene, i = index[p]
        images, ks = [], []
        for j in range(len(scene.camera_names)):
            image, k = camera_input(scene.images[i, j], scene.intrinsics[i, j], hw)
            images.append(normalize_image(image))
            ks.append(k)
        k_in = torch.from_numpy(np.stack(ks).astype(np.float32))[None]
        t = torch.from_numpy(scene.cam_to_base[i].astype(np.float32))[None]
        geom = geometry_inputs(splat_geometry(config.grid, k_in, t, hw, feature_hw))
        out.append({"images": np.stack(images)[None], **{k: v.numpy() for k, v in geom.items()}})
    return out


def quantize_int8(
    fp32_path: str | os.PathLike, out: str | os.PathLike, calibration: list[dict[str, np.ndarray]]
) -> Path:
    """Write the int8 (QDQ) version of the fp32 export ``fp32_path`` to ``out``, its simdistill metadata
    kept and ``simdistill.precision`` set to ``int8``; returns ``out``."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise UserError("int8 quantisation needs at least one calibration frame")
    missing = set(INPUT_NAMES) - set(calibration[0])
    if missing:
        raise ValueError(f"calibration inputs lack {sorted(missing)}")

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[dict[str, np.ndarray]] = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # shapes and constant folding for the quantiser; the graph's dynamic dims defeat symbolic inference
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantized = Path(tmp) / "int8.onnx"
        quantize_static(
            str(prepared),
            str(quantized),
            Frames(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=float_convolutions(onnx.load(str(fp32_path))),  # the names survive
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        proto = onnx.load(str(quantized))
    source = onnx.load(str(fp32_path), load_external_data=False)
    del proto.metadata_props[:]
    for prop in source.metadata_props:
        if prop.key != PRECISION_KEY:
            proto.metadata_props.add(key=prop.key, value=prop.value)
    proto.metadata_props.add(key=PRECISION_KEY, value="int8")
    tmp_out = out.with_name(out.name + ".tmp")
    onnx.save(proto, str(tmp_out))
    os.replace(tmp_out, out)  # a reader never sees half a file
    return out


def float_convolutions(proto: object) -> list[str]:
    """Convolutions of an fp32 export (``proto``, an ``onnx.ModelProto`` with the exporter's name scopes)
    kept float:

    - the camera backbone's: with 8-bit activations per tensor, EfficientNet-Lite's depthwise stages lost a
      third of ``student_v2``'s mAP (README, Speed), the rest of the network none;
    - those whose output is sliced: the depth nets' bin logits (a softmax over the bins decides where
      every image feature lands) and the GCM's sampling offsets;
    - those whose output is a graph output: the head's maps.
    """
    graph = proto.graph  # type: ignore[attr-defined]
    consumers: dict[str, list[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    outputs = {o.name for o in graph.output}

    def in_backbone(node: object) -> bool:
        scopes = {p.key: p.value for p in node.metadata_props}.get("pkg.torch.onnx.name_scopes", "")  # type: ignore[attr-defined]
        return ".camera.backbone" in scopes

    return [
        node.name
        for node in graph.node
        if node.op_type == "Conv"
        and (in_backbone(node) or node.output[0] in outputs or "Slice" in consumers.get(node.output[0], []))
    ]
