"""How much a camera BEV map knows about where objects are: its per-cell energy against the ground truth.

For each val frame, the camera branch's BEV map (B, C, X, Y) is reduced to its per-cell L2 norm over
channels and correlated (Pearson, over all cells) with the ground-truth centre heatmap (the max over classes
of the head's Gaussian targets). A camera branch that lifts objects to the right place gives a clearly
positive correlation; one that carries nothing gives about zero. It is the measure behind "the teacher's
camera branch carries nothing" and the check that a staged (BEVFusion-style) teacher fixes that.

Run: ``python -m simdistill_ros.evaluation.bev_probe --model CKPT --data DIR --split val --frames 40``

With ``--teacher CKPT`` each (student) model is instead compared with the teacher, map by map, on the same
frames (:func:`distillation_probe`): how much of each teacher BEV map the student's counterpart explains
(R^2, on all cells and on foreground cells, the CMD mask) and how each map correlates with the ground
truth. It measures what the distillation terms transferred into the features, apart from what it did to
the detection score.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from simdistill_ros.dataset.split_frames import open_split_frames
from simdistill_ros.models.checkpoint import load_checkpoint
from simdistill_ros.models.depth_supervision import NO_RETURN, depth_quality, lidar_depth_targets
from simdistill_ros.models.head import build_targets
from simdistill_ros.models.structures import CameraInputs
from simdistill_ros.training.batch import collate
from simdistill_ros.training.dataset import FrameDataset
from simdistill_ros.training.distillation import foreground_mask


def bev_gt_correlation(camera_bev: Tensor, heatmap: Tensor) -> list[float]:
    """camera_bev (B, C, X, Y), heatmap (B, K, X, Y) -> per-frame Pearson correlation of the channel L2
    norm with the class-max heatmap (NaN-free: a constant map gives 0)."""
    return per_frame_correlation(camera_bev.float().norm(dim=1), heatmap.float().amax(dim=1))


def per_frame_correlation(a: Tensor, b: Tensor) -> list[float]:
    """Pearson correlation of a[i] and b[i] (same shape, any dims after the batch) per frame; 0 where
    either is constant."""
    out = []
    for x, y in zip(a.flatten(1), b.flatten(1)):
        x, y = x - x.mean(), y - y.mean()
        denom = x.norm() * y.norm()
        out.append(float((x * y).sum() / denom) if denom > 0 else 0.0)
    return out


def _val_batches(
    dataroot: str | Path,
    split: str,
    version: str,
    frames_from: str,
    input_hw: tuple[int, int],
    with_points: bool,
) -> DataLoader:
    """The un-augmented frames of ``split`` in batches of two, in order."""
    source = open_split_frames(dataroot, split, version, source=frames_from, with_points=with_points)
    data = FrameDataset(source, input_hw, augment=False, with_points=with_points)
    return DataLoader(data, batch_size=2, shuffle=False, collate_fn=collate)


@torch.no_grad()
def probe(
    model_path: str | Path,
    dataroot: str | Path,
    split: str,
    frames: int,
    version: str = "v1.0-synth",
    frames_from: str = "auto",
) -> dict:
    """Mean and sd of ``bev_gt_correlation`` of a checkpoint's camera branch over the first ``frames``
    frames of ``split``."""

    net, cfg, meta = load_checkpoint(model_path)
    loader = _val_batches(dataroot, split, version, frames_from, cfg.input_hw, with_points=False)
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


def explained_variance(student_map: Tensor, teacher_map: Tensor, mask: Tensor | None = None) -> float:
    """R^2 of ``teacher_map`` (B, C, X, Y) by ``student_map`` over all cells, or over the cells where
    ``mask`` (B, 1, X, Y) is positive, weighted by it: 1 - SSE / SS around the teacher's channel means.
    1 is a copy, 0 is no better than the teacher's mean, below 0 worse (e.g. another scale)."""
    s, t = student_map.double(), teacher_map.double()
    w = torch.ones_like(t[:, :1]) if mask is None else mask.double()
    mean = (t * w).sum(dim=(0, 2, 3), keepdim=True) / w.sum().clamp(min=1e-12)
    sse = (((s - t) ** 2) * w).sum()
    ss = (((t - mean) ** 2) * w).sum()
    return float(1.0 - sse / ss) if ss > 0 else float("nan")


# (DetectorOutputs map, the term that pulls the student's map to the teacher's, on foreground cells only)
PROBED_MAPS = (("camera_bev", "imd", False), ("lidar_bev", "cmd", True), ("fused_bev", "mmd_feat", False))


@torch.no_grad()
def distillation_probe(
    student_path: str | Path,
    teacher_path: str | Path,
    dataroot: str | Path,
    split: str,
    frames: int,
    version: str = "v1.0-synth",
    frames_from: str = "auto",
) -> dict:
    """A student checkpoint against the teacher on the first ``frames`` frames of ``split``: per BEV map
    (camera, simulated-LiDAR vs LiDAR, fused) the student's R^2 of the teacher's map on all cells and on
    the foreground cells, and both maps' GT correlation (:func:`bev_gt_correlation`); for the head, the
    heatmaps' per-frame Pearson correlation (sigmoid scores)."""
    student, cfg, meta = load_checkpoint(student_path)
    teacher, tcfg, _ = load_checkpoint(teacher_path)
    if meta.get("model_type") != "student":
        raise ValueError(f"{student_path} is a {meta.get('model_type')}, not a student")
    if tcfg.grid != cfg.grid:
        raise ValueError("the student and the teacher have different BEV grids")
    source = open_split_frames(
        dataroot, split, version, source=frames_from, lidar_sweeps=tcfg.pillars.lidar_sweeps
    )
    data = FrameDataset(source, cfg.input_hw, augment=False, with_points=True)
    loader = DataLoader(data, batch_size=2, shuffle=False, collate_fn=collate)
    student_maps: dict[str, list[Tensor]] = {name: [] for name, _, _ in PROBED_MAPS}
    teacher_maps: dict[str, list[Tensor]] = {name: [] for name, _, _ in PROBED_MAPS}
    heats: list[Tensor] = []
    head_corr: list[float] = []
    for batch in loader:
        cams = CameraInputs.from_batch(batch)
        s_out, t_out = student(cams), teacher(cams, batch.points)
        heats.append(build_targets(batch.boxes, batch.labels, cfg.grid, cfg.head).heatmap)
        for name, _, _ in PROBED_MAPS:
            student_maps[name].append(getattr(s_out, name))
            teacher_maps[name].append(getattr(t_out, name))
        head_corr += per_frame_correlation(s_out.head["heatmap"].sigmoid(), t_out.head["heatmap"].sigmoid())
        if len(head_corr) >= frames:
            break
    heat = torch.cat(heats)[:frames]
    mask = foreground_mask(heat)
    maps = {}
    for name, term, fg_only in PROBED_MAPS:
        s, t = torch.cat(student_maps[name])[:frames], torch.cat(teacher_maps[name])[:frames]
        maps[name] = {
            "pulled_by": term,
            "r2_all_cells": explained_variance(s, t),
            "r2_foreground": explained_variance(s, t, mask),
            "loss_on_foreground_only": fg_only,
            "student_gt_corr": statistics.fmean(bev_gt_correlation(s, heat)),
            "teacher_gt_corr": statistics.fmean(bev_gt_correlation(t, heat)),
        }
    return {
        "student": str(student_path),
        "teacher": str(teacher_path),
        "split": split,
        "frames": int(heat.shape[0]),
        "maps": maps,
        "heatmap_corr_with_teacher": statistics.fmean(head_corr[:frames]),
    }


@torch.no_grad()
def depth_probe(
    model_path: str | Path,
    dataroot: str | Path,
    split: str,
    frames: int,
    version: str = "v1.0-synth",
    frames_from: str = "auto",
) -> dict:
    """How right a checkpoint's camera depth distribution is where LiDAR says what the depth is: median
    error of the expected depth, share of argmax bins within 1 m and mean entropy over the image feature
    cells that a LiDAR return hits, on the first ``frames`` frames of ``split`` (pooled over frames)."""
    net, cfg, meta = load_checkpoint(model_path)
    loader = _val_batches(dataroot, split, version, frames_from, cfg.input_hw, with_points=True)
    depths, targets, seen = [], [], 0
    for batch in loader:
        cam, _ = net.camera(CameraInputs.from_batch(batch))
        hw = tuple(batch.images.shape[-2:])
        target = lidar_depth_targets(
            batch.points, batch.intrinsics, batch.cam_to_base, hw, tuple(cam.depth.shape[-2:]), cfg.grid
        )
        depths.append(cam.depth.movedim(2, -1)[target != NO_RETURN])  # (M, D)
        targets.append(target[target != NO_RETURN])
        seen += len(batch)
        if seen >= frames:
            break
    d = torch.cat(depths)  # pooled cells as one (1, 1, D, M, 1) "image"
    quality = depth_quality(d.T[None, None, :, :, None], torch.cat(targets)[None, None, :, None], cfg.grid)
    return {"model": str(model_path), "model_type": meta.get("model_type"), "frames": seen, **quality}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, action="append", help="checkpoint (repeatable)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--version", default="v1.0-synth", help="version folder of the dataroot's tables")
    parser.add_argument(
        "--frames-from",
        choices=("auto", "bags", "samples"),
        default="auto",
        help="the bags, or the dataroot's sensor files (auto: the bags when DATA/bags/ exists)",
    )
    parser.add_argument(
        "--teacher", help="compare each (student) model's BEV maps and heatmap with this teacher's instead"
    )
    parser.add_argument(
        "--depth",
        action="store_true",
        help="instead: each model's camera depth against the LiDAR (median expected-depth error, argmax "
        "within 1 m, entropy on the feature cells a return hits)",
    )
    parser.add_argument("--out", type=Path, help="write the JSON here as well")
    args = parser.parse_args(argv)
    if args.depth:
        report = {
            "depth_probes": [
                depth_probe(m, args.data, args.split, args.frames, args.version, args.frames_from)
                for m in args.model
            ]
        }
    elif args.teacher:
        runs = [
            distillation_probe(
                m, args.teacher, args.data, args.split, args.frames, args.version, args.frames_from
            )
            for m in args.model
        ]
        report = {"distillation_probes": runs}
    else:
        report = {
            "probes": [
                probe(m, args.data, args.split, args.frames, args.version, args.frames_from)
                for m in args.model
            ]
        }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
