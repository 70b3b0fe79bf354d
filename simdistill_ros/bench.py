"""`make bench`: the hot paths' costs, as medians after warm-up, beside the machine's matmul throughput.

Measures model inference latency (teacher, baseline, student) with FLOPs and achieved GFLOP/s, the
dense-matmul GFLOP/s of the same machine in the same run (how close to its limit the models run), the
synthetic renderer's seconds per frame, the bag reader's frames per second, the detector node's end-to-end
latency (last image received -> Detection3DArray published) beside the model-only time, and the teacher replay
(frames/s, store bytes per frame and read speed, student training step from the store vs the online teacher).
Results go to stdout as a table and to ``out/bench.json``. ``--only models|node|replay`` runs one part.
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


def bench_node(repeats: int, image_hw: tuple[int, int] = (224, 400)) -> dict:
    """The detector node in-process: messages go straight into its callbacks (no DDS), so the latency is
    the node's own: last image of a frame received -> Detection3DArray published, beside the model-only
    time (the same frame's forward + decode) and their ratio. Tiny student, random weights, 6 jpeg cameras."""
    import rclpy
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo, CompressedImage
    from tf2_msgs.msg import TFMessage

    from simdistill_ros.detection.ros_messages import header_msg
    from simdistill_ros.frames.images import COMPRESSED_FORMAT, encode_jpeg
    from simdistill_ros.geometry import nuscenes_like_rig
    from simdistill_ros.models import StudentModel, save_checkpoint, tiny
    from simdistill_ros.nodes.detector_node import DetectorNode

    h, w = image_hw
    rig = nuscenes_like_rig(h, w)
    rng = np.random.default_rng(0)
    jpegs = [encode_jpeg(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).tobytes() for _ in rig.cameras]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = tiny()
        ckpt = save_checkpoint(Path(tmp) / "student", StudentModel(cfg), cfg, {"note": "bench"})
        rclpy.init()
        node = DetectorNode(
            parameter_overrides=[
                Parameter("model", value=str(ckpt)),
                Parameter("device", value="cpu"),
                Parameter("frame_queue_size", value=100),
            ]
        )
        try:
            from geometry_msgs.msg import TransformStamped

            from simdistill_ros.frames.messages import transform_msg

            tfs = []
            for c in rig.cameras:
                t = TransformStamped(header=header_msg(0, "base_link"), child_frame_id=c.name)
                tm = transform_msg(c.cam_to_base)
                t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = (
                    tm.translation.x, tm.translation.y, tm.translation.z,
                )  # fmt: skip
                q = tm.rotation
                t.transform.rotation.x, t.transform.rotation.y = q.x, q.y
                t.transform.rotation.z, t.transform.rotation.w = q.z, q.w
                tfs.append(t)
            node._on_tf_static(TFMessage(transforms=tfs))
            for i in range(repeats + 2):
                stamp = 1_000_000_000 + i * 83_333_333
                before = node.stats.published
                for k, (c, data) in enumerate(zip(rig.cameras, jpegs)):
                    s = stamp + k * 8_000_000
                    info = CameraInfo(header=header_msg(s, c.name), height=h, width=w)
                    info.k = [float(v) for v in c.intrinsics.reshape(-1)]
                    node._on_msg(("info", c.name), info)
                    img = CompressedImage(header=header_msg(s, c.name), format=COMPRESSED_FORMAT)
                    img.data = data
                    node._on_msg(("image", c.name), img)
                deadline = time.monotonic() + 60
                while node.stats.published == before and time.monotonic() < deadline:
                    time.sleep(0.002)
            lat = list(node.stats.latency_ms)[2:]  # first two: warm-up and geometry
            proc = list(node.stats.processing_ms)[2:]
            core = node._core
            from simdistill_ros.detection.core import CameraFrame

            frames = [
                CameraFrame(c.name, rng.integers(0, 255, (h, w, 3), dtype=np.uint8), c.intrinsics,
                            c.cam_to_base.matrix())
                for c in rig.cameras
            ]  # fmt: skip
            inputs, _ = core.prepare(frames)

            def model_only() -> None:
                core.model.detect(inputs, score_threshold=core.score_threshold)

            model_ms = median_seconds(model_only, repeats=repeats, warmup=1) * 1e3
        finally:
            node.stop()
            node.destroy_node()
            rclpy.try_shutdown()
    latency = statistics.median(lat)
    return {
        "node_cameras": len(rig.cameras),
        "node_image_hw": [h, w],
        "node_latency_ms": round(latency, 1),
        "node_processing_ms": round(statistics.median(proc), 1),
        "node_model_only_ms": round(model_ms, 1),
        "node_overhead_pct": round(100 * (latency / model_ms - 1), 1),
    }


def bench_replay(frames: int, repeats: int, image_size: tuple[int, int] = (224, 400)) -> dict:
    """Teacher replay frames/s (tiny random-init teacher, CPU), store size and read speed, and one student
    training step from the store vs with the online teacher (batch 2, tiny config, data preparation included).
    """
    from simdistill_ros.dataset.frame_cache import load_split_frames
    from simdistill_ros.models import StudentModel, TeacherModel, save_checkpoint, tiny
    from simdistill_ros.replay.core import TeacherReplayer
    from simdistill_ros.synth.export import synthesize
    from simdistill_ros.targets.store import TargetStore
    from simdistill_ros.training.batch import collate
    from simdistill_ros.training.dataset import FrameDataset
    from simdistill_ros.training.objectives import OnlineDistillationObjective
    from simdistill_ros.training.store_dataset import (
        StoreDataset,
        StoredDistillationObjective,
        collate_stored,
    )

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


def print_models(report: dict) -> None:
    rows = report["models"]
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


def print_node(report: dict) -> None:
    if "node_skipped" in report:
        print(f"detector node: skipped ({report['node_skipped']})")
        return
    print(
        f"detector node (tiny student, {report['node_cameras']} jpeg cameras "
        f"{report['node_image_hw'][0]}x{report['node_image_hw'][1]}, cpu): last image -> "
        f"Detection3DArray {report['node_latency_ms']} ms median vs model only "
        f"{report['node_model_only_ms']} ms: node overhead {report['node_overhead_pct']}%"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--cameras", type=int, default=6)
    p.add_argument("--synth-frames", type=int, default=6)
    p.add_argument("--out", default="out/bench.json")
    p.add_argument(
        "--only",
        choices=("models", "node", "replay"),
        help="run one part (default: all; models includes the renderer and the bag reader)",
    )
    args = p.parse_args(argv)
    torch.manual_seed(0)
    report: dict = {"torch_threads": torch.get_num_threads()}
    if args.only in (None, "models"):
        cpu = torch.device("cpu")
        report["matmul_GFLOP_per_s_cpu"] = round(matmul_gflops(cpu), 1)
        rows = bench_models("tiny", cpu, args.cameras, args.repeats)
        if torch.cuda.is_available():
            gpu = torch.device("cuda")
            report["matmul_GFLOP_per_s_cuda_fp32"] = round(matmul_gflops(gpu), 1)
            rows += bench_models("nuscenes", gpu, args.cameras, args.repeats)
        report["models"] = rows
        report.update(bench_synth_and_reader(args.synth_frames))
        print_models(report)
    if args.only in (None, "node"):
        try:
            report.update(bench_node(args.repeats))
        except ImportError as err:  # no rclpy / message packages: the node cannot run here
            report["node_skipped"] = str(err)
        print_node(report)
    if args.only in (None, "replay"):
        report.update(bench_replay(args.synth_frames, args.repeats))
        print_replay(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
