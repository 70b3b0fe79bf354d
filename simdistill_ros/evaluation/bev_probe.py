"""How much a camera BEV map knows about where objects are: its per-cell energy against the ground truth.

For each val frame, the camera branch's BEV map (B, C, X, Y) is reduced to its per-cell L2 norm over
channels and correlated (Pearson, over all cells) with the ground-truth centre heatmap (the max over classes
of the head's Gaussian targets). A camera branch that lifts objects to the right place gives a clearly
positive correlation; one that carries nothing gives about zero. It is the measure behind "the teacher's
camera branch carries nothing" and the check that a staged (BEVFusion-style) teacher fixes that.

Run: ``python -m simdistill_ros.evaluation.bev_probe --model CKPT --data DIR --split val --frames 40``
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from simdistill_ros.dataset.frame_cache import load_split_frames
from simdistill_ros.models.checkpoint import load_checkpoint
from simdistill_ros.models.head import build_targets
from simdistill_ros.models.structures import CameraInputs
from simdistill_ros.training.batch import collate
from simdistill_ros.training.dataset import FrameDataset


def bev_gt_correlation(camera_bev: Tensor, heatmap: Tensor) -> list[float]:
    """camera_bev (B, C, X, Y), heatmap (B, K, X, Y) -> per-frame Pearson correlation of the channel L2
    norm with the class-max heatmap (NaN-free: a constant map gives 0)."""
    energy = camera_bev.float().norm(dim=1).flatten(1)
    target = heatmap.float().amax(dim=1).flatten(1)
    out = []
    for e, t in zip(energy, target):
        e, t = e - e.mean(), t - t.mean()
        denom = e.norm() * t.norm()
        out.append(float((e * t).sum() / denom) if denom > 0 else 0.0)
    return out


@torch.no_grad()
def probe(
    model_path: str | Path, dataroot: str | Path, split: str, frames: int, version: str = "v1.0-synth"
) -> dict:
    """Mean and sd of ``bev_gt_correlation`` of a checkpoint's camera branch over the first ``frames``
    frames of ``split``."""

    net, cfg, meta = load_checkpoint(model_path)
    scenes = load_split_frames(dataroot, split, version=version)
    data = FrameDataset(scenes, tuple(cfg.image_size), augment=False, with_points=False)
    loader = DataLoader(data, batch_size=2, shuffle=False, collate_fn=collate)
    values: list[float] = []
    for batch in loader:
        cam, _ = net.camera(CameraInputs.from_batch(batch))
        heat = build_targets(batch.boxes, batch.labels, cfg.grid, cfg.head).heatmap
        values += bev_gt_correlation(cam.bev, heat)
        if len(values) >= frames:
            break
    values = values[:frames]
    return {
        "model": str(model_path),
        "model_type": meta.get("model_type"),
        "frames": len(values),
        "corr_mean": statistics.fmean(values) if values else float("nan"),
        "corr_sd": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, action="append", help="checkpoint (repeatable)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--out", type=Path, help="write the JSON here as well")
    args = parser.parse_args(argv)
    report = {"probes": [probe(m, args.data, args.split, args.frames) for m in args.model]}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
