"""The evaluation runner: a checkpoint over a labelled split, as nuScenes results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from simdistill_ros.dataset.nuscenes_tables import load_split_samples
from simdistill_ros.dataset.split_frames import open_split_frames
from simdistill_ros.defaults import EVAL_SCORE_THRESHOLD
from simdistill_ros.deployment.export import geometry_inputs
from simdistill_ros.deployment.onnx_runtime import check_backend, load_runner
from simdistill_ros.evaluation.nuscenes_eval import results_from_boxes
from simdistill_ros.geometry import boxes_from_array
from simdistill_ros.models import CameraInputs, load_model
from simdistill_ros.models.checkpoint import resolve_device
from simdistill_ros.models.head import decode_head_maps
from simdistill_ros.models.lift_splat import splat_geometry
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
    backend: str = "torch",
    frames_from: str = "auto",
    image_noise: float = 0.0,
) -> dict[str, list]:
    """{sample_token: [Box3D in the base frame]} for every labelled frame of ``split``, read from the bags
    or the dataroot's sensor files (``frames_from``, see ``open_split_frames``), each camera image with
    Gaussian noise of ``image_noise`` grey levels when > 0 (the same noise for every model).

    ``backend="onnxruntime"``: a camera-only model (checkpoint, exported on first use, or an ``.onnx`` file
    from ``simdistill export``) run by onnxruntime, one frame at a time."""
    if check_backend(backend) == "onnxruntime":
        return _predict_onnxruntime(
            model, dataroot, split, version, device, score_threshold, frames_from, image_noise
        )
    net, cfg, meta, dev = load_model(model, device, verify)
    is_teacher = meta["model_type"] == "teacher"
    frames = open_split_frames(
        dataroot,
        split,
        version,
        source=frames_from,
        lidar_sweeps=cfg.pillars.lidar_sweeps if is_teacher else 1,
        with_points=is_teacher,
    )
    data = FrameDataset(frames, cfg.input_hw, augment=False, with_points=is_teacher, image_noise=image_noise)
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


def _predict_onnxruntime(
    model: str | Path,
    dataroot: str | Path,
    split: str,
    version: str,
    device: str,
    score_threshold: float,
    frames_from: str = "auto",
    image_noise: float = 0.0,
) -> dict[str, list]:
    """The torch path's frames and decoding, the network run by onnxruntime: a score difference between
    the two backends is the export's (or its int8 quantisation's) alone."""
    runner, cfg = load_runner(model, resolve_device(device).type)
    frames = open_split_frames(dataroot, split, version, source=frames_from, with_points=False)
    data = FrameDataset(frames, cfg.input_hw, augment=False, with_points=False, image_noise=image_noise)
    loader = DataLoader(data, batch_size=1, shuffle=False, collate_fn=collate)  # the graph takes one frame
    geometry: dict[bytes, dict[str, np.ndarray]] = {}
    out: dict[str, list] = {}
    for batch in tqdm(loader, desc=f"{runner.model_type} (onnxruntime) on {split}", leave=False):
        cams = CameraInputs.from_batch(batch)
        key = cams.intrinsics.numpy().tobytes() + cams.cam_to_base.numpy().tobytes()
        if key not in geometry:  # per rig, as the detector core caches it
            k, t = cams.intrinsics, cams.cam_to_base
            geom = splat_geometry(cfg.grid, k, t, cfg.input_hw, runner.feature_hw)
            geometry[key] = {k: v.numpy() for k, v in geometry_inputs(geom).items()}
        head = runner(cams.images.numpy(), geometry[key])
        det = decode_head_maps(head, cfg.grid, cfg.head, score_threshold)[0]
        out[batch.tokens[0]] = boxes_from_array(det.boxes.numpy(), det.labels.numpy(), det.scores.numpy())
    return out


def predict_split_results(
    model: str | Path,
    dataroot: str | Path,
    split: str,
    version: str = "v1.0-synth",
    device: str = "auto",
    score_threshold: float = EVAL_SCORE_THRESHOLD,
    verify: bool = True,
    backend: str = "torch",
    frames_from: str = "auto",
    image_noise: float = 0.0,
) -> dict:
    """nuScenes results JSON (dict) of ``model`` on ``split`` (``backend``, ``frames_from``,
    ``image_noise`` as in :func:`predict_split`)."""
    per_sample = predict_split(
        model,
        dataroot,
        split,
        version,
        device,
        score_threshold,
        verify=verify,
        backend=backend,
        frames_from=frames_from,
        image_noise=image_noise,
    )
    poses = {s.token: s.ego_pose for s in load_split_samples(dataroot, split, version=version)}
    missing = [t for t in poses if t not in per_sample]
    for t in missing:  # frames the bags could not assemble get no detections, and are scored as such
        per_sample[t] = []
    return results_from_boxes(per_sample, poses)
