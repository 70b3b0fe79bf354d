"""`make bench`: the hot paths' costs, as medians after warm-up, beside the machine's matmul throughput.

Measures model inference latency (teacher, baseline, student) with FLOPs and achieved GFLOP/s, the
dense-matmul GFLOP/s of the same machine in the same run (how close to its limit the models run), the
synthetic renderer's seconds per frame, the bag reader's frames per second, and the teacher replay
(frames/s, store bytes per frame and read speed, student training step from the store vs the online
teacher). Results go to stdout as a table and to ``out/bench.json``. ``--only replay`` runs the last part.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_gflops(device: torch.device, n: int = 2048, dtype: torch.dtype = torch.float32) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)

    def step() -> None:
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()

    return 2 * n**3 / median_seconds(step, repeats=10, warmup=3) / 1e9


def bench_models(config: str, device: torch.device, num_cameras: int, repeats: int) -> list[dict]:
    from simdistill_ros.geometry import nuscenes_like_rig
    from simdistill_ros.models import BaselineModel, CameraInputs, StudentModel, TeacherModel
    from simdistill_ros.models.config import PRESETS

    cfg = PRESETS[config]()
    h, w = cfg.image_size
    rig = nuscenes_like_rig(h, w)
    n = min(num_cameras, len(rig))
    cams = CameraInputs(
        torch.randn(1, n, 3, h, w),
        torch.from_numpy(rig.intrinsics_array()[:n])[None],
        torch.from_numpy(rig.cam_to_base_array()[:n])[None],
    ).to(device)
    rng = np.random.default_rng(0)
    pts = rng.uniform([-40, -40, -2, 0], [40, 40, 3, 1], size=(30000, 4)).astype(np.float32)
    points = [torch.from_numpy(pts).to(device)]
    rows = []
    for cls in (TeacherModel, BaselineModel, StudentModel):
        model = cls(cfg).to(device).eval()

        def forward(model=model, cls=cls) -> None:
            with torch.no_grad():
                model(cams, points) if cls is TeacherModel else model(cams)
            if device.type == "cuda":
                torch.cuda.synchronize()

        with FlopCounterMode(display=False) as counter:
            forward()
        flops = counter.get_total_flops()
        seconds = median_seconds(forward, repeats=repeats, warmup=3)
        rows.append(
            {
                "model": cls.model_type,
                "config": config,
                "device": str(device),
                "cameras": n,
                "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
                "median_ms": round(seconds * 1000, 2),
                "GFLOP": round(flops / 1e9, 2),
                "GFLOP_per_s": round(flops / seconds / 1e9, 1),
            }
        )
    return rows


def bench_synth_and_reader(frames: int) -> dict:
    from simdistill_ros.frames.assembly import FrameReader
    from simdistill_ros.synth.export import synthesize

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        summary = synthesize(
            out, 1, frames, seed=123, image_size=(224, 400), val_fraction=0.0, progress=False
        )
        synth_s = (time.perf_counter() - t0) / max(summary["frames"], 1)
        bag = next((out / "bags").iterdir())
        t0 = time.perf_counter()
        n = sum(1 for _ in FrameReader(bag, require_lidar=True))
        read_s = time.perf_counter() - t0
    return {"synth_s_per_frame_224x400": round(synth_s, 3), "reader_frames_per_s": round(n / read_s, 1)}


def bench_replay(frames: int, repeats: int, image_size: tuple[int, int] = (224, 400)) -> dict:
    """Teacher replay frames/s (tiny random-init teacher, CPU), store size and read speed, and one student
    training step from the store vs with the online teacher (batch 2, tiny config, data preparation included).
    """
    from simdistill_ros.dataset.frame_cache import load_split_frames
    from simdistill_ros.models import StudentModel, TeacherModel, save_checkpoint, tiny
    from simdistill_ros.replay.core import TeacherReplayer
    from simdistill_ros.replay.target_store import TargetStore
    from simdistill_ros.replay.training import StoreDataset, StoredDistillationObjective, collate_stored
    from simdistill_ros.synth.export import synthesize
    from simdistill_ros.training.batch import collate
    from simdistill_ros.training.dataset import FrameDataset
    from simdistill_ros.training.objectives import OnlineDistillationObjective

    cfg = tiny()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthesize(root / "w", 1, frames, seed=321, image_size=image_size, val_fraction=0.0, progress=False)
        save_checkpoint(root / "teacher", TeacherModel(cfg), cfg, {"model_type": "teacher"})
        bag = next((root / "w" / "bags").iterdir())
        replayer = TeacherReplayer(root / "teacher", root / "store", device="cpu", data=root / "w")
        replayer.teacher_targets(next(iter(replayer_frames(bag))))  # warm-up: splat geometry, allocator
        summary = replayer.replay([bag])
        replayer.close()
        t0 = time.perf_counter()
        store = TargetStore(root / "store", verify="full")
        verify_s = time.perf_counter() - t0
        raw_s = median_seconds(lambda: [store[i] for i in range(len(store))], repeats=3, warmup=1)
        data = StoreDataset(store, cfg.image_size)
        ready_s = median_seconds(lambda: [data[i] for i in range(len(data))], repeats=3, warmup=1)

        teacher = TeacherModel(cfg)
        teacher.load_state_dict(replayer.model.state_dict())
        student = StudentModel(cfg).train()
        optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4)
        online_data = FrameDataset(load_split_frames(root / "w", "train"), cfg.image_size, augment=False)
        online_objective = OnlineDistillationObjective(cfg, teacher)
        stored_objective = StoredDistillationObjective(cfg)
        rows = [store.position(online_data[i].key) for i in range(2)]

        def step(objective, batch) -> None:
            loss = objective(student, batch)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        # Alternate the two so that a busy machine slows both alike; medians of each.
        online, stored = [], []
        for _ in range(repeats + 1):
            online.append(
                median_seconds(
                    lambda: step(online_objective, collate([online_data[0], online_data[1]])), 1, warmup=0
                )
            )
            stored.append(
                median_seconds(
                    lambda: step(stored_objective, collate_stored([data[i] for i in rows])), 1, warmup=0
                )
            )
        online_s, stored_s = statistics.median(online[1:]), statistics.median(stored[1:])
    n = len(store)
    return {
        "replay_image_size": list(image_size),
        "replay_frames": summary.frames_stored,
        "replay_frames_per_s_cpu": round(summary.frames_per_s, 2),
        "replay_teacher_share": round(summary.teacher_seconds / summary.seconds, 2),
        "store_bytes_per_frame": round(store.total_bytes / n),
        "store_verify_MB_per_s": round(store.total_bytes / verify_s / 1e6, 1),
        "store_read_frames_per_s": round(n / raw_s, 1),
        "store_training_samples_per_s": round(n / ready_s, 1),
        "train_step_online_teacher_s": round(online_s, 3),
        "train_step_from_store_s": round(stored_s, 3),
        "train_step_speedup_from_store": round(online_s / stored_s, 2),
    }


def replayer_frames(bag: Path):
    from simdistill_ros.replay.core import EncodedImageFrameReader

    return EncodedImageFrameReader(bag, require_lidar=True)


def print_replay(report: dict) -> None:
    r = report
    print(
        f"teacher replay (tiny, CPU, {r['replay_image_size'][0]}x{r['replay_image_size'][1]}): "
        f"{r['replay_frames_per_s_cpu']} frames/s ({r['replay_teacher_share']:.0%} in the teacher); "
        f"store: {r['store_bytes_per_frame'] / 1e6:.2f} MB/frame, read {r['store_read_frames_per_s']} "
        f"frames/s raw, {r['store_training_samples_per_s']} training samples/s (jpeg decode + resize), "
        f"sha256 verify {r['store_verify_MB_per_s']} MB/s"
    )
    print(
        f"student training step (tiny, batch 2): online teacher {report['train_step_online_teacher_s']} s, "
        f"from the store {report['train_step_from_store_s']} s: "
        f"{report['train_step_speedup_from_store']}x faster"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--cameras", type=int, default=6)
    p.add_argument("--synth-frames", type=int, default=6)
    p.add_argument("--out", default="out/bench.json")
    p.add_argument(
        "--only", choices=("models", "replay"), help="run one section (default: all; models includes synth)"
    )
    args = p.parse_args(argv)
    torch.manual_seed(0)
    if args.only == "replay":
        report = {"torch_threads": torch.get_num_threads(), **bench_replay(args.synth_frames, args.repeats)}
        print_replay(report)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
        print(f"wrote {out}")
        return 0
    cpu = torch.device("cpu")
    report: dict = {"torch_threads": torch.get_num_threads()}
    report["matmul_GFLOP_per_s_cpu"] = round(matmul_gflops(cpu), 1)
    rows = bench_models("tiny", cpu, args.cameras, args.repeats)
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        report["matmul_GFLOP_per_s_cuda_fp32"] = round(matmul_gflops(gpu), 1)
        rows += bench_models("nuscenes", gpu, args.cameras, args.repeats)
    report["models"] = rows
    report.update(bench_synth_and_reader(args.synth_frames))

    print(
        f"torch threads: {report['torch_threads']}; dense fp32 matmul (2048^3): "
        f"{report['matmul_GFLOP_per_s_cpu']} GFLOP/s on the CPU"
    )
    print(
        f"{'model':10s} {'config':9s} {'device':6s} {'cams':>4s} {'params M':>9s} {'median ms':>10s} "
        f"{'GFLOP':>7s} {'GFLOP/s':>8s} {'of matmul':>9s}"
    )
    for r in rows:
        peak = (
            report["matmul_GFLOP_per_s_cpu"]
            if r["device"] == "cpu"
            else report["matmul_GFLOP_per_s_cuda_fp32"]
        )
        print(
            f"{r['model']:10s} {r['config']:9s} {r['device']:6s} {r['cameras']:4d} {r['params_M']:9.3f} "
            f"{r['median_ms']:10.2f} {r['GFLOP']:7.2f} {r['GFLOP_per_s']:8.1f} {r['GFLOP_per_s'] / peak:9.1%}"
        )
    by = {(r["model"], r["device"]): r for r in rows}
    for dev in sorted({r["device"] for r in rows}):
        s, b = by[("student", dev)], by[("baseline", dev)]
        print(
            f"student / baseline on {dev}: {s['median_ms'] / b['median_ms']:.2f}x time, "
            f"{s['GFLOP'] / b['GFLOP']:.2f}x FLOPs"
        )
    print(
        f"synthetic renderer: {report['synth_s_per_frame_224x400']} s per six-camera 224x400 frame; "
        f"bag reader: {report['reader_frames_per_s']} frames/s (jpeg decode, PointCloud2, tf)"
    )
    if args.only is None:
        report.update(bench_replay(args.synth_frames, args.repeats))
        print_replay(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
