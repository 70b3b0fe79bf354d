"""``simdistill export``: a camera-only checkpoint to ONNX (fp32, or int8 calibrated on a dataset split)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from simdistill_ros.deployment.export import OPSET, export_onnx, feature_hw, max_difference
from simdistill_ros.deployment.quantize import calibration_inputs, quantize_int8
from simdistill_ros.errors import UserError
from simdistill_ros.models.checkpoint import load_checkpoint, resolve_model_path


def run_export_command(args: argparse.Namespace) -> int:
    """Export, then check onnxruntime against torch (fp32); with ``--int8`` quantise the export's
    convolutions on ``--calibration-frames`` frames of ``--calibration-data``."""
    if args.int8 and not args.calibration_data:
        raise UserError("--int8 needs --calibration-data DATA: frames to measure the activation ranges on")
    if not args.int8 and args.calibration_data:
        raise UserError("--calibration-data is for --int8 exports")
    if args.cameras < 1:
        raise UserError(f"--cameras must be >= 1, got {args.cameras}")
    if args.calibration_frames < 1:
        raise UserError(f"--calibration-frames must be >= 1, got {args.calibration_frames}")
    net, cfg, meta = load_checkpoint(resolve_model_path(args.model))
    if meta.get("model_type") not in ("baseline", "student"):
        raise UserError(
            f"{args.model}: a {meta.get('model_type')} checkpoint; only the camera-only models (baseline, "
            "student) export"
        )
    t0 = time.perf_counter()
    if not args.int8:
        out = export_onnx(net, cfg, args.out, num_cameras=args.cameras)
        worst = max_difference(out, net, cfg, args.cameras)
        print(
            f"export: {meta['model_type']} -> {out} ({out.stat().st_size / 1e6:.1f} MB, opset {OPSET}, "
            f"{time.perf_counter() - t0:.0f} s); onnxruntime vs torch on a random input: max |difference| "
            f"{worst:.1e}"
        )
        return 0
    frames = calibration_inputs(
        cfg, feature_hw(cfg.input_hw), args.calibration_data, args.calibration_split,
        args.calibration_frames,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(net, cfg, Path(tmp) / "fp32.onnx", num_cameras=args.cameras)
        out = quantize_int8(fp32, args.out, frames)
    print(
        f"export: {meta['model_type']} -> {out} (int8 convolutions calibrated on {len(frames)} "
        f"{args.calibration_split} frames of {args.calibration_data}; {out.stat().st_size / 1e6:.1f} MB, "
        f"{time.perf_counter() - t0:.0f} s); score it with `simdistill evaluate --backend onnxruntime "
        f"--model {out}`"
    )
    return 0
