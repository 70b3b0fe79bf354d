"""The evaluation runner: a checkpoint over a labelled split, as nuScenes results."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from simdistill_ros.dataset.frame_cache import load_split_frames
from simdistill_ros.dataset.nuscenes_tables import load_split_samples
from simdistill_ros.defaults import EVAL_SCORE_THRESHOLD
from simdistill_ros.evaluation.nuscenes_eval import results_from_boxes
from simdistill_ros.geometry import boxes_from_array
from simdistill_ros.models import CameraInputs, load_model
from simdistill_ros.training.batch import collate
from simdistill_ros.training.dataset import FrameDataset


@torch.no_grad()
def predict_split(
    model: str | Path,
    dataroot: str | Path,
    split: str,
    version: str = "v1.0-synth",
    device: str = "auto",
    score_threshold: float = EVAL_SCORE_THRESHOLD,
    batch_size: int = 2,
    verify: bool = True,
) -> dict[str, list]:
    """{sample_token: [Box3D in the base frame]} for every labelled frame of ``split``."""
    net, cfg, meta, dev = load_model(model, device, verify)
    is_teacher = meta["model_type"] == "teacher"
    scenes = load_split_frames(dataroot, split, version=version)
    data = FrameDataset(scenes, tuple(cfg.image_size), augment=False, with_points=is_teacher)
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate)
    out: dict[str, list] = {}
    for batch in tqdm(loader, desc=f"{meta['model_type']} on {split}", leave=False):
        batch = batch.to(dev)
        cams = CameraInputs.from_batch(batch)
        dets = (
            net.detect(cams, batch.points, score_threshold=score_threshold)
            if is_teacher
            else net.detect(cams, score_threshold=score_threshold)
        )
        for token, det in zip(batch.tokens, dets):
            out[token] = boxes_from_array(
                det.boxes.cpu().numpy(), det.labels.cpu().numpy(), det.scores.cpu().numpy()
            )
    return out


def predict_split_results(
    model: str | Path,
    dataroot: str | Path,
    split: str,
    version: str = "v1.0-synth",
    device: str = "auto",
    score_threshold: float = EVAL_SCORE_THRESHOLD,
    verify: bool = True,
) -> dict:
    """nuScenes results JSON (dict) of ``model`` on ``split``."""
    per_sample = predict_split(model, dataroot, split, version, device, score_threshold, verify=verify)
    poses = {s.token: s.ego_pose for s in load_split_samples(dataroot, split, version=version)}
    missing = [t for t in poses if t not in per_sample]
    for t in missing:  # frames the bags could not assemble get no detections, and are scored as such
        per_sample[t] = []
    return results_from_boxes(per_sample, poses)
