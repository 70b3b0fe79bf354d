"""Measure each loss term's gradient on the student's camera branch and simulated-LiDAR branch (issue 27:
weights from measured gradient shares). Prints one line per term: the mean gradient norm over a few
training batches, and its share of the detection heatmap term's.

    .venv/bin/python tools/gradient_shares.py --data data/fair_v2 --teacher models/teacher_v2 \
        --feature-loss balanced --loss-weights imd=1 cmd=1 mmd_feat=1 --depth-weight 3 --batches 4
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from simdistill_ros.dataset.frame_cache import load_split_frames
from simdistill_ros.models import build_model, load_checkpoint, load_matching_weights, resolve_model_path
from simdistill_ros.training.batch import collate
from simdistill_ros.training.command import build_config
from simdistill_ros.training.dataset import FrameDataset
from simdistill_ros.training.gradient_shares import term_gradient_norms
from simdistill_ros.training.objectives import BaselineObjective, OnlineDistillationObjective


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--teacher", default="teacher_v2")
    p.add_argument("--init-from", default=None, help="student start (default: the teacher)")
    p.add_argument("--config", default="tiny_v2")
    p.add_argument("--model", default="student", choices=("student", "baseline"))
    p.add_argument("--feature-loss", default=None, choices=("mse", "balanced"))
    p.add_argument("--loss-weights", nargs="+", default=[])
    p.add_argument("--depth-weight", type=float, default=None)
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the numbers here")
    args = p.parse_args(argv)
    args.disable, args.sim_channels, args.sim_depthnet_channels, args.sim_gcm_stride = [], None, None, None
    cfg = build_config(args)
    torch.manual_seed(args.seed)
    teacher, _, _ = load_checkpoint(resolve_model_path(args.teacher))
    model = build_model(args.model, cfg).train()
    load_matching_weights(model, resolve_model_path(args.init_from or args.teacher))
    if args.model == "student":
        objective = OnlineDistillationObjective(cfg, teacher)
    else:
        objective = BaselineObjective(cfg)
    scenes = load_split_frames(Path(args.data), "train")
    dataset = FrameDataset(scenes, cfg.input_hw, augment=True, with_points=True)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(args.seed))
    parts = {"camera": list(model.camera.parameters())}
    if hasattr(model, "sim_lidar"):
        parts["sim_lidar"] = list(model.sim_lidar.parameters())
    sums: dict[str, dict[str, float]] = {part: {} for part in parts}
    for b in range(args.batches):
        idx = order[b * args.batch_size : (b + 1) * args.batch_size].tolist()
        batch = collate([dataset[i] for i in idx])
        terms = objective(model, batch)
        for part, params in parts.items():
            for name, norm in term_gradient_norms(terms, params).items():
                sums[part][name] = sums[part].get(name, 0.0) + norm / args.batches
    for part, norms in sums.items():
        ref = norms.get("gt_heatmap", 0.0) or 1.0
        print(f"{part} branch (mean gradient norm over {args.batches} batches of {args.batch_size}):")
        for name, norm in sorted(norms.items(), key=lambda kv: -kv[1]):
            print(f"  {name:18s} {norm:10.4f}   {norm / ref:7.3f} x gt_heatmap")
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": vars(args), "norms": sums}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
