"""Seconds per training step (forward, loss, backward, AdamW step) of teacher, baseline and student.

The inputs are random images on the six-camera nuScenes-like rig, a random LiDAR sweep and a few boxes per
frame: a step's cost does not depend on what the pixels show. Used to size ``make reproduce``.

Run: ``python tools/step_cost.py --config tiny_v2 --batch 4 --repeats 2``; ``--parts`` also splits each step
into the frozen teacher's forward, the model's forward (per top-level module and camera-branch stage), the
losses, backward and the optimizer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's package

from simdistill_ros.geometry import nuscenes_like_rig  # noqa: E402
from simdistill_ros.models.config import PRESETS, ModelConfig  # noqa: E402
from simdistill_ros.models.detectors import BaselineModel, StudentModel, TeacherModel  # noqa: E402
from simdistill_ros.training.batch import Batch  # noqa: E402
from simdistill_ros.training.objectives import (  # noqa: E402
    BaselineObjective,
    OnlineDistillationObjective,
    TeacherObjective,
)


def random_batch(cfg: ModelConfig, batch: int, seed: int = 0) -> Batch:
    """A batch of random images (nominal size of ``cfg``) on the nuScenes-like rig, 30k LiDAR points and
    eight boxes of mixed classes per frame."""
    g = torch.Generator().manual_seed(seed)
    h, w = cfg.input_hw
    rig = nuscenes_like_rig(h, w)
    k = torch.from_numpy(np.stack([c.intrinsics for c in rig.cameras])).float()
    pose = torch.from_numpy(np.stack([c.cam_to_base.matrix() for c in rig.cameras])).float()
    n = len(rig.cameras)
    boxes, labels = [], []
    for _ in range(batch):
        xy = (torch.rand(8, 2, generator=g) - 0.5) * 60.0
        size = torch.tensor([4.5, 1.9, 1.6]).expand(8, 3)
        rest = torch.zeros(8, 3)
        boxes.append(torch.cat([xy, torch.full((8, 1), 0.8), size, rest], dim=1))
        labels.append(torch.arange(8) % cfg.head.num_classes)
    points = [(torch.rand(30000, 4, generator=g) - 0.5) * torch.tensor([100.0, 100.0, 4.0, 1.0])]
    return Batch(
        images=torch.randn(batch, n, 3, h, w, generator=g),
        intrinsics=k.expand(batch, n, 3, 3).clone(),
        cam_to_base=pose.expand(batch, n, 4, 4).clone(),
        points=points * batch,
        boxes=boxes,
        labels=labels,
    )


def _forward_timers(modules: dict[str, torch.nn.Module], times: dict[str, list[float]]) -> None:
    """Add each module's forward wall time to ``times[name]`` on every call (pre/post hooks)."""
    for name, module in modules.items():
        start: list[float] = []
        module.register_forward_pre_hook(lambda *_, s=start: s.append(time.perf_counter()))
        module.register_forward_hook(
            lambda *_, s=start, n=name: times.setdefault(n, []).append(time.perf_counter() - s.pop())
        )


def _timed_modules(model: torch.nn.Module, prefix: str) -> dict[str, torch.nn.Module]:
    """The model, its top-level modules and its camera branch's stages, named ``prefix.path``."""
    named = {prefix: model}
    for name, child in model.named_children():
        named[f"{prefix}.{name}"] = child
        if name == "camera":
            named.update({f"{prefix}.camera.{n}": c for n, c in child.named_children()})
    return named


def step_seconds(
    cfg: ModelConfig, model_type: str, batch: int, repeats: int, parts: bool = False
) -> dict[str, float]:
    """Median wall and CPU seconds of one optimizer step of ``model_type`` after one warm-up step; with
    ``parts`` also the median seconds of each part (``forward:NAME``, ``losses``, ``backward``,
    ``optimizer``; the losses are the objective's time less the forwards inside it)."""
    torch.manual_seed(0)
    if model_type == "teacher":
        model, objective = TeacherModel(cfg), TeacherObjective(cfg)
    elif model_type == "baseline":
        model, objective = BaselineModel(cfg), BaselineObjective(cfg)
    elif model_type == "student":
        model, objective = StudentModel(cfg), OnlineDistillationObjective(cfg, TeacherModel(cfg))
    else:
        raise ValueError(f"unknown model type {model_type!r}")
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    data = random_batch(cfg, batch)
    forwards: dict[str, list[float]] = {}
    if parts:
        _forward_timers(_timed_modules(model, model_type), forwards)
        if model_type == "student":
            _forward_timers(_timed_modules(objective.teacher, "teacher(frozen)"), forwards)
    wall, cpu = [], []
    split: dict[str, list[float]] = {"losses": [], "backward": [], "optimizer": []}
    for i in range(repeats + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = objective(model, data)["loss"]
        t1 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        t3 = time.perf_counter()
        if i:  # the first step builds the splat geometry and warms the allocator
            wall.append(t3 - t0)
            cpu.append(time.process_time() - c0)
            top = [v[-1] for k, v in forwards.items() if k in (model_type, "teacher(frozen)")]
            split["losses"].append(t1 - t0 - sum(top))
            split["backward"].append(t2 - t1)
            split["optimizer"].append(t3 - t2)
    result = {"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu)}
    if parts:
        result.update({f"forward:{k}": statistics.median(v[1:]) for k, v in forwards.items()})
        result.update({k: statistics.median(v) for k, v in split.items()})
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny_v2", choices=sorted(PRESETS))
    parser.add_argument("--models", nargs="+", default=["baseline", "student", "teacher"])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parts", action="store_true", help="split each step into its parts (seconds)")
    parser.add_argument(
        "--frozen-stages", type=int, default=None, help="override backbone.frozen_stages (efficientnet_lite0)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = PRESETS[args.config]()
    if args.frozen_stages is not None:
        cfg.backbone.frozen_stages = args.frozen_stages
    report = {
        "config": args.config,
        "batch": args.batch,
        "threads": args.threads,
        "frozen_stages": cfg.backbone.frozen_stages,
    }
    for model_type in args.models:
        seconds = step_seconds(cfg, model_type, args.batch, args.repeats, args.parts)
        report[model_type] = {k: round(v, 3) for k, v in seconds.items()}
        print(json.dumps({model_type: report[model_type]}), flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
