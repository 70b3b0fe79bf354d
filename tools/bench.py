"""`make bench`: the hot paths' costs, as medians after warm-up, beside the machine's matmul throughput.

Run as ``python tools/bench.py`` (the Makefile does).

Measures model inference latency (teacher, baseline, student, light student) with FLOPs and achieved
GFLOP/s, on torch and (the camera-only ones) on onnxruntime through their ONNX export, fp32 and int8, the
dense-matmul GFLOP/s of the same machine in the same run (how close to its limit the models run), the
synthetic renderer's seconds per
frame, the bag reader's frames per second, the detector node's end-to-end latency (last image received ->
Detection3DArray published) beside the model's time with the overhead split per stage (per backend), and
the teacher replay (frames/s, store bytes per frame and read speed, student training step from the store
vs the online teacher), and the student on cores that busy processes share, per OpenMP wait setting.
Results go to stdout as a table and to ``out/bench.json``.
``--only models node`` runs some parts; ``--backends`` picks torch and/or onnxruntime.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
sys.path.insert(0, str(TOOLS.parent))  # the checkout's package, as tools/ship_models.py does

from simdistill_ros.openmp import SPIN_COUNT, bound_openmp_spin  # noqa: E402

bound_openmp_spin()  # time the models as the node and the `simdistill` command run them: before torch loads

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402


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


def rig_inputs(cfg, num_cameras: int):
    """Random images of the config's input size on the nuScenes-like rig (first ``num_cameras``)."""
    from simdistill_ros.geometry import nuscenes_like_rig
    from simdistill_ros.models import CameraInputs

    h, w = cfg.input_hw
    rig = nuscenes_like_rig(h, w)
    n = min(num_cameras, len(rig))
    return CameraInputs(
        torch.randn(1, n, 3, h, w),
        torch.from_numpy(rig.intrinsics_array()[:n])[None],
        torch.from_numpy(rig.cam_to_base_array()[:n])[None],
    )


def student_forward_ms(config: str, threads: int, repeats: int) -> float:
    """Median ms of one student forward (random weights, BatchNorm folded, six cameras) in this process
    with ``threads`` torch threads."""
    from simdistill_ros.models import StudentModel
    from simdistill_ros.models.batchnorm_fold import fold_batchnorm
    from simdistill_ros.models.config import PRESETS

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    cfg = PRESETS[config]()
    model = StudentModel(cfg)
    fold_batchnorm(model)
    cams = rig_inputs(cfg, 6)
    with torch.no_grad():
        return 1e3 * median_seconds(lambda: model(cams), repeats, warmup=2)


# (what, environment, torch threads: None = one per core, torch's default)
OPENMP_CASES = (
    ("OpenMP default (spinning)", {}, None),
    (f"GOMP_SPINCOUNT={SPIN_COUNT} (what the entry points set)", {"GOMP_SPINCOUNT": str(SPIN_COUNT)}, None),
    ("one torch thread", {"GOMP_SPINCOUNT": str(SPIN_COUNT)}, 1),
)


def bench_shared_cpu(config: str, repeats: int) -> list[dict]:
    """The student's forward with the cores to itself and with every core also running a busy process (a
    computer the model shares), per OpenMP setting; each case in a fresh process, because OpenMP reads
    its environment when torch loads."""
    cores = os.cpu_count() or 1
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    rows = []
    for load in ("idle", "busy"):
        hogs = [
            subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(cores if load == "busy" else 0)
        ]
        try:
            for what, env, threads in OPENMP_CASES:
                n = threads or cores
                code = (  # torch first: it loads with the case's environment, untouched by the bench module
                    f"import torch, sys; sys.path.insert(0, {str(TOOLS)!r}); "
                    "from bench import student_forward_ms; "
                    f"print(student_forward_ms({config!r}, {n}, {repeats}))"
                )
                proc = subprocess.run(
                    [sys.executable, "-c", code],
                    capture_output=True,
                    text=True,
                    env={**clean, **env},
                    check=True,
                )
                ms = float(proc.stdout.split()[-1])
                rows.append(
                    {"config": config, "load": load, "openmp": what, "threads": n, "median_ms": round(ms, 1)}
                )
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
    return rows


def print_shared(rows: list[dict]) -> None:
    for r in rows:
        cpu = "cores to itself" if r["load"] == "idle" else "a busy process on every core"
        print(
            f"student forward ({r['config']}, {r['threads']} threads, {cpu}): {r['median_ms']} ms median, "
            f"{r['openmp']}"
        )


def bench_models(
    config: str, device: torch.device, num_cameras: int, repeats: int, onnx: bool = True
) -> list[dict]:
    """Teacher, baseline, student and the student with the light simulated-LiDAR branch (random weights)
    on one input, the camera-only ones with BatchNorm folded into their convolutions as the detector's
    torch backend runs them, and also through their ONNX export on onnxruntime (CPU). All of them are
    timed in turn, one call each per round, so that a machine whose speed drifts slows every one alike;
    the student / baseline and torch / onnxruntime ratios are medians of per-round ratios."""
    from simdistill_ros.models import BaselineModel, StudentModel, TeacherModel
    from simdistill_ros.models.batchnorm_fold import fold_batchnorm
    from simdistill_ros.models.config import PRESETS, light_sim_branch

    cfg = PRESETS[config]()
    cams = rig_inputs(cfg, num_cameras).to(device)
    n = cams.num_cameras
    rng = np.random.default_rng(0)
    pts = rng.uniform([-40, -40, -2, 0], [40, 40, 3, 1], size=(30000, 4)).astype(np.float32)
    points = [torch.from_numpy(pts).to(device)]
    rows, timed = [], {}
    arms = (
        ("teacher", TeacherModel, cfg),
        ("baseline", BaselineModel, cfg),
        ("student", StudentModel, cfg),
        ("student_light", StudentModel, light_sim_branch(cfg)),
    )
    for kind, cls, model_cfg in arms:
        model = cls(model_cfg).to(device).eval()
        timed_model = model
        if cls is not TeacherModel:  # as the detector's torch backend runs them (onnxruntime folds too)
            timed_model = copy.deepcopy(model)
            fold_batchnorm(timed_model)

        def forward(model=timed_model, cls=cls) -> None:
            with torch.no_grad():
                model(cams, points) if cls is TeacherModel else model(cams)
            if device.type == "cuda":
                torch.cuda.synchronize()

        with FlopCounterMode(display=False) as counter:
            forward()
        flops = counter.get_total_flops()
        timed[(kind, "torch")] = forward
        if onnx and cls is not TeacherModel and device.type == "cpu":
            timed[(kind, "onnxruntime")] = onnxruntime_forward(model, model_cfg, cams)
            timed[(kind, "int8")] = onnxruntime_forward(model, model_cfg, cams, int8=True)
        rows.append(
            {
                "model": kind,
                "config": config,
                "device": str(device),
                "cameras": n,
                "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
                "GFLOP": round(flops / 1e9, 2),
            }
        )
    rounds = interleaved_rounds(timed, repeats)
    ms = {k: statistics.median(v) for k, v in rounds.items()}

    def ratio(a: tuple[str, str], b: tuple[str, str]) -> float:
        return round(statistics.median(x / y for x, y in zip(rounds[a], rounds[b])), 2)

    for row in rows:
        kind, flops = row["model"], row["GFLOP"] * 1e9
        row["median_ms"] = round(ms[(kind, "torch")], 2)
        row["GFLOP_per_s"] = round(flops / ms[(kind, "torch")] / 1e6, 1)
        if (kind, "onnxruntime") in ms:
            row["onnxruntime_ms"] = round(ms[(kind, "onnxruntime")], 2)
            row["onnxruntime_GFLOP_per_s"] = round(flops / ms[(kind, "onnxruntime")] / 1e6, 1)
            row["torch_over_onnxruntime"] = ratio((kind, "torch"), (kind, "onnxruntime"))
        if (kind, "int8") in ms:
            row["int8_ms"] = round(ms[(kind, "int8")], 2)
            row["torch_over_int8"] = ratio((kind, "torch"), (kind, "int8"))
            row["onnxruntime_over_int8"] = ratio((kind, "onnxruntime"), (kind, "int8"))
        if kind.startswith("student"):
            for backend in ("torch", "onnxruntime", "int8"):
                if ("baseline", backend) in rounds and (kind, backend) in rounds:
                    row[f"over_baseline_{backend}"] = ratio((kind, backend), ("baseline", backend))
    return rows


def interleaved_rounds(
    fns: dict[tuple[str, str], Callable[[], object]], repeats: int, warmup: int = 3
) -> dict[tuple[str, str], list[float]]:
    """Milliseconds of each function per round, the functions called in turn (one call each per round)."""
    times: dict[tuple[str, str], list[float]] = {k: [] for k in fns}
    for i in range(warmup + repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if i >= warmup:
                times[k].append((time.perf_counter() - t0) * 1e3)
    return times


def onnxruntime_forward(
    model: torch.nn.Module, cfg: object, cams: object, int8: bool = False
) -> Callable[[], object]:
    """The model exported to a temporary file, run by the backend's runner on the same input. ``int8``:
    the ``simdistill export --int8`` graph, calibrated on that input (a speed measurement only; its
    accuracy is scored by ``simdistill evaluate --backend onnxruntime``)."""
    from simdistill_ros.deployment.export import export_onnx, feature_hw, geometry_inputs
    from simdistill_ros.deployment.onnx_runtime import OnnxRuntimeRunner
    from simdistill_ros.deployment.quantize import quantize_int8
    from simdistill_ros.models.lift_splat import splat_geometry

    hw = tuple(cams.images.shape[-2:])
    geom = splat_geometry(cfg.grid, cams.intrinsics, cams.cam_to_base, hw, feature_hw(hw))
    feed = {k: v.numpy() for k, v in geometry_inputs(geom).items()}
    images = cams.images.numpy()
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, cfg, Path(tmp) / "model.onnx", num_cameras=cams.num_cameras)
        if int8:
            path = quantize_int8(path, Path(tmp) / "int8.onnx", [{"images": images, **feed}])
        runner = OnnxRuntimeRunner(path)  # the session holds the graph: the file may go
    return lambda: runner(images, feed)


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


@functools.cache
def rendered_jpegs(image_hw: tuple[int, int]) -> tuple[bytes, ...]:
    """The six camera images of one frame of the synthetic world, as the jpegs a bag carries (rendered
    once per size, for every node run). A camera image, not noise: jpeg decoding costs in proportion to
    the coded bits (these are about 2 bits per pixel, more than nuScenes' camera jpegs; random pixels code
    to 7)."""
    from simdistill_ros.frames.assembly import FrameReader
    from simdistill_ros.frames.images import encode_jpeg
    from simdistill_ros.synth.export import synthesize

    with tempfile.TemporaryDirectory() as tmp:
        synthesize(Path(tmp), 1, 1, seed=7, image_size=image_hw, val_fraction=0.0, progress=False)
        frame = next(iter(FrameReader(next((Path(tmp) / "bags").iterdir()), require_lidar=False)))
    return tuple(encode_jpeg(frame.images[c.name]).tobytes() for c in frame.rig.cameras)


ARRIVALS = {"burst": 0.0, "staggered": 0.008}  # seconds between one camera's image and the next one's


def bench_node(
    repeats: int, backend: str = "torch", config: str = "tiny", image_hw: tuple[int, int] = (224, 400)
) -> list[dict]:
    """The detector node in-process: messages go straight into its callbacks (no DDS), so the latency is
    the node's own: last image of a frame received -> Detection3DArray published, beside the model's time
    (the network up to the head maps) and their ratio. A student of ``config`` (random weights), six jpeg
    cameras showing a rendered frame of the synthetic world.

    Two arrival patterns, ``repeats`` frames each: ``burst``, the six images at once (cameras triggered
    together), and ``staggered``, one every 8 ms (the spacing of their stamps: a rig whose cameras fire as
    the LiDAR sweeps past them, as nuScenes'). The node decodes each image as it arrives, so with
    staggered cameras only the last image's decode is left on the latency.

    Per stage, recorded on the same frames as the latency by wrapping the node's own steps: decode (the
    worker collecting the decoded images: what of the decoding was not done on arrival), preprocess
    (validation, resize, normalise), model, postprocess (peaks, NMS, boxes); "messages" is the rest of the
    latency (tf lookups, building and publishing the Detection3DArray, the hand-over to the worker thread).
    Medians over frames of per-frame values, so that a machine whose load changes during the run still
    gives same-frame ratios."""
    import rclpy
    from geometry_msgs.msg import TransformStamped
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo, CompressedImage
    from tf2_msgs.msg import TFMessage

    from simdistill_ros.frames.images import COMPRESSED_FORMAT
    from simdistill_ros.frames.messages import transform_msg
    from simdistill_ros.geometry import nuscenes_like_rig
    from simdistill_ros.models import StudentModel, save_checkpoint
    from simdistill_ros.models.config import PRESETS
    from simdistill_ros.nodes.detector_node import DetectorNode
    from simdistill_ros.outputs.ros import header_msg

    h, w = image_hw
    rig = nuscenes_like_rig(h, w)
    jpegs = rendered_jpegs(image_hw)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        old_cache = os.environ.get("XDG_CACHE_HOME")
        os.environ["XDG_CACHE_HOME"] = tmp  # the onnxruntime backend's export of this random checkpoint
        cfg = PRESETS[config]()
        ckpt = save_checkpoint(Path(tmp) / "student", StudentModel(cfg), cfg, {"note": "bench"})
        rclpy.init()
        node = DetectorNode(
            parameter_overrides=[
                Parameter("model", value=str(ckpt)),
                Parameter("device", value="cpu"),
                Parameter("backend", value=backend),
                Parameter("frame_queue_size", value=100),
            ]
        )
        try:
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
            node._on_tf(TFMessage(transforms=tfs), True)
            decode_ms: list[float] = []
            results: list = []
            detect = node._live.core.detect

            class TimedDecoder:  # the node's own decoder; the worker's collecting of its images timed
                def __init__(self, inner) -> None:
                    self.inner = inner

                def __call__(self, *a, **kw):
                    t0 = time.perf_counter()
                    out = self.inner(*a, **kw)
                    decode_ms.append((time.perf_counter() - t0) * 1e3)
                    return out

                def __getattr__(self, name: str):
                    return getattr(self.inner, name)

            def recorded_detect(*a, **kw):
                results.append(detect(*a, **kw))
                return results[-1]

            node._live.decode = TimedDecoder(node._live.decode)
            node._live.core.detect = recorded_detect
            frame = 0
            for arrival, gap in ARRIVALS.items():
                first = len(node.stats.latency_ms)
                for _ in range(repeats + 2):
                    stamp = 1_000_000_000 + frame * 83_333_333
                    frame += 1
                    before = node.stats.published
                    start = time.monotonic()
                    for k, (c, data) in enumerate(zip(rig.cameras, jpegs)):
                        s = stamp + k * 8_000_000
                        info = CameraInfo(header=header_msg(s, c.name), height=h, width=w)
                        info.k = [float(v) for v in c.intrinsics.reshape(-1)]
                        node._on_msg(("info", c.name), info)
                        time.sleep(max(0.0, start + k * gap - time.monotonic()))
                        img = CompressedImage(header=header_msg(s, c.name), format=COMPRESSED_FORMAT)
                        img.data = data
                        node._on_msg(("image", c.name), img)
                    deadline = time.monotonic() + 60
                    while node.stats.published == before and time.monotonic() < deadline:
                        time.sleep(0.002)
                    time.sleep(0.02)  # the worker back to waiting, as between real frames
                skip = first + 2  # the first two of each pattern: warm-up (and the rig's geometry)
                lat = list(node.stats.latency_ms)[skip:]
                frames = [
                    {
                        "decode": d,
                        "preprocess": r.preprocess_ms,
                        "model": r.model_ms,
                        "postprocess": r.postprocess_ms,
                        "latency": lt,
                    }
                    for d, r, lt in zip(decode_ms[skip:], results[skip:], lat)
                ]
                rows.append(node_row(frames, backend, config, arrival, len(rig.cameras), image_hw))
            rows[-1]["decoded_on_arrival"] = node._live.decode.collected
            rows[-1]["decoded_late"] = node._live.decode.late
        finally:
            node.stop()
            node.destroy_node()
            rclpy.try_shutdown()
            if old_cache is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = old_cache
    return rows


def node_row(
    frames: list[dict], backend: str, config: str, arrival: str, cameras: int, image_hw: tuple[int, int]
) -> dict:
    for f in frames:
        f["messages"] = max(f["latency"] - f["decode"] - f["preprocess"] - f["model"] - f["postprocess"], 0.0)
    stages = ("decode", "preprocess", "postprocess", "messages")
    ms = {k: statistics.median(f[k] for f in frames) for k in stages}
    pct = {k: statistics.median(100 * f[k] / f["model"] for f in frames) for k in stages}
    return {
        "backend": backend,
        "config": config,
        "arrival": arrival,
        "cameras": cameras,
        "image_hw": list(image_hw),
        "frames": len(frames),
        "latency_ms": round(statistics.median(f["latency"] for f in frames), 1),
        "model_ms": round(statistics.median(f["model"] for f in frames), 1),
        "overhead_pct": round(statistics.median(100 * (f["latency"] / f["model"] - 1) for f in frames), 1),
        "stages_ms": {k: round(v, 2) for k, v in ms.items()},
        "stages_pct_of_model": {k: round(v, 1) for k, v in pct.items()},
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
        data = StoreDataset(store, cfg.input_hw)
        ready_s = median_seconds(lambda: [data[i] for i in range(len(data))], repeats=3, warmup=1)

        teacher = TeacherModel(cfg)
        teacher.load_state_dict(replayer.model.state_dict())
        student = StudentModel(cfg).train()
        optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4)
        online_data = FrameDataset(load_split_frames(root / "w", "train"), cfg.input_hw, augment=False)
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
        f"{'model':13s} {'config':9s} {'device':6s} {'cams':>4s} {'GFLOP':>6s} {'torch ms':>9s} "
        f"{'GFLOP/s':>8s} {'of mm':>6s} {'ort ms':>7s} {'GFLOP/s':>8s} {'of mm':>6s} {'torch/ort':>9s} "
        f"{'int8 ms':>8s} {'torch/int8':>10s}"
    )
    for r in rows:
        peak = (
            report["matmul_GFLOP_per_s_cpu"]
            if r["device"] == "cpu"
            else report["matmul_GFLOP_per_s_cuda_fp32"]
        )
        line = (
            f"{r['model']:13s} {r['config']:9s} {r['device']:6s} {r['cameras']:4d} {r['GFLOP']:6.2f} "
            f"{r['median_ms']:9.1f} {r['GFLOP_per_s']:8.1f} {r['GFLOP_per_s'] / peak:6.1%}"
        )
        if "onnxruntime_ms" in r:
            line += (
                f" {r['onnxruntime_ms']:7.1f} {r['onnxruntime_GFLOP_per_s']:8.1f} "
                f"{r['onnxruntime_GFLOP_per_s'] / peak:6.1%} {r['torch_over_onnxruntime']:8.2f}x"
            )
        if "int8_ms" in r:
            line += f" {r['int8_ms']:8.1f} {r['torch_over_int8']:9.2f}x"
        print(line)
    by = {(r["model"], r["config"], r["device"]): r for r in rows}
    for config, dev in sorted({(r["config"], r["device"]) for r in rows}):
        b = by[("baseline", config, dev)]
        for student in ("student", "student_light"):
            s = by[(student, config, dev)]
            text = (
                f"{student} / baseline ({config}, {dev}): torch {s['over_baseline_torch']:.2f}x time, "
                f"{s['GFLOP'] / b['GFLOP']:.2f}x FLOPs"
            )
            if "over_baseline_onnxruntime" in s:
                text += f"; onnxruntime {s['over_baseline_onnxruntime']:.2f}x time"
                text += f"; {student} torch / onnxruntime {s['torch_over_onnxruntime']:.2f}x"
            if "over_baseline_int8" in s:
                text += f"; int8 {s['over_baseline_int8']:.2f}x time"
                text += f"; {student} torch / int8 onnxruntime {s['torch_over_int8']:.2f}x"
            print(text)
    if "synth_s_per_frame_224x400" in report:
        print(
            f"synthetic renderer: {report['synth_s_per_frame_224x400']} s per six-camera 224x400 frame; "
            f"bag reader: {report['reader_frames_per_s']} frames/s (jpeg decode, PointCloud2, tf)"
        )


def print_node(report: dict) -> None:
    if "node_skipped" in report:
        print(f"detector node: skipped ({report['node_skipped']})")
        return
    for r in report["node"]:
        stages = ", ".join(
            f"{k} {r['stages_ms'][k]:.1f} ms ({r['stages_pct_of_model'][k]:.1f} %)" for k in r["stages_ms"]
        )
        print(
            f"detector node ({r['backend']}, {r['config']} student, {r['cameras']} jpeg cameras "
            f"{r['image_hw'][0]}x{r['image_hw'][1]} arriving {r['arrival']}, cpu): last image -> "
            f"Detection3DArray {r['latency_ms']} ms median vs model {r['model_ms']} ms: node overhead "
            f"{r['overhead_pct']} %; per stage (share of the model's time, same frames): {stages}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--cameras", type=int, default=6)
    p.add_argument("--synth-frames", type=int, default=6)
    p.add_argument("--out", default="out/bench.json")
    p.add_argument(
        "--only",
        nargs="+",
        choices=("models", "node", "replay", "shared"),
        help="run these parts (default: all; models includes the renderer and the bag reader; shared: the "
        "student on cores shared with busy processes, per OpenMP wait setting)",
    )
    p.add_argument(
        "--backends",
        nargs="+",
        choices=("torch", "onnxruntime"),
        default=["torch", "onnxruntime"],
        help="backends timed (models: onnxruntime beside torch for baseline and student; node: each)",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="intra-op threads of torch and onnxruntime (default: torch's default, the core count); 1 gives "
        "steadier numbers on a machine shared with other work",
    )
    p.add_argument("--no-synth", action="store_true", help="models: skip the renderer and the bag reader")
    p.add_argument(
        "--configs",
        nargs="+",
        choices=("tiny", "tiny_v2"),
        default=["tiny", "tiny_v2"],
        help="model configs of the models and node parts (default: both; tiny is the test checkpoints' "
        "config, tiny_v2 the fair benchmark's and the shipped _v2 models')",
    )
    args = p.parse_args(argv)
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    report: dict = {"torch_threads": torch.get_num_threads()}
    if args.only is None or "models" in args.only:
        cpu = torch.device("cpu")
        report["matmul_GFLOP_per_s_cpu"] = round(matmul_gflops(cpu), 1)
        rows = []
        for config in args.configs:
            rows += bench_models(config, cpu, args.cameras, args.repeats, onnx="onnxruntime" in args.backends)
        if torch.cuda.is_available():
            gpu = torch.device("cuda")
            report["matmul_GFLOP_per_s_cuda_fp32"] = round(matmul_gflops(gpu), 1)
            rows += bench_models("nuscenes", gpu, args.cameras, args.repeats)
        report["models"] = rows
        if not args.no_synth:
            report.update(bench_synth_and_reader(args.synth_frames))
        print_models(report)
    if args.only is None or "node" in args.only:
        try:
            report["node"] = [
                row for c in args.configs for b in args.backends for row in bench_node(args.repeats, b, c)
            ]
        except ImportError as err:  # no rclpy / message packages: the node cannot run here
            report["node_skipped"] = str(err)
        print_node(report)
    if args.only is None or "shared" in args.only:
        report["shared_cpu"] = [
            row for c in args.configs for row in bench_shared_cpu(c, min(args.repeats, 5))
        ]
        print_shared(report["shared_cpu"])
    if args.only is None or "replay" in args.only:
        report.update(bench_replay(args.synth_frames, args.repeats))
        print_replay(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
