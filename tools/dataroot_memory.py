"""Peak memory of reading and training from a nuScenes dataroot, at several split sizes.

Usage: .venv/bin/python tools/dataroot_memory.py [--samples 50 200] [--image-size 900x1600]
       [--steps 40] [--work DIR] [--keep]

For each size it writes a load-test dataroot in the nuScenes layout (``v1.0-synth`` tables from the
project's table writer; nuScenes-sized jpgs, one LiDAR key frame of ~34k points plus one sweep per sample,
a few parked cars per sample; the images are one smooth picture with noise per camera, not rendered: this
measures memory, not detection), then runs in fresh processes, each measured on its own (peak RSS of the
process, ``ru_maxrss``):

- ``read``: every frame of the train split through ``DatarootFrames`` (two sweeps), one after the other;
- ``train``: ``simdistill train teacher --frames-from samples --lidar-sweeps 2`` for ``--steps`` steps at
  batch 2, the images resized to the tiny config's input.

Memory that stays flat from the smaller to the larger split is what the reader promises (jpgs and pcd.bin
read per frame); the devkit's tables and the index grow with the split, by a little per sample.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simdistill_ros.dataset.nuscenes_tables import NuScenesTableWriter, SampleInput, SensorDataInput  # noqa: E402
from simdistill_ros.frames.images import encode_jpeg  # noqa: E402
from simdistill_ros.geometry import Box3D, Transform, nuscenes_like_rig  # noqa: E402
from simdistill_ros.synth.export import sensor_filename  # noqa: E402

SAMPLES_PER_SCENE = 40  # nuScenes' scenes hold about 40 samples (20 s at 2 Hz)
SAMPLE_PERIOD_US = 500_000
POINTS = 34_000


def _picture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], -1)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


def write_load_dataroot(out: Path, samples: int, image_hw: tuple[int, int], seed: int = 0) -> None:
    """A dataroot of ``samples`` samples in scenes of SAMPLES_PER_SCENE (see the module doc)."""
    rng = np.random.default_rng(seed)
    rig = nuscenes_like_rig(*image_hw)
    jpgs = {c.name: encode_jpeg(_picture(rng, *image_hw), 90).tobytes() for c in rig.cameras}
    xyz = rng.uniform([-50, -50, -2], [50, 50, 3], (POINTS, 3))
    cloud = np.concatenate([xyz, rng.uniform(0, 255, (POINTS, 1)), rng.integers(0, 32, (POINTS, 1))], 1)
    pcd = cloud.astype(np.float32).tobytes()
    calibration = {c.name: (c.cam_to_base, c.intrinsics, "camera", c.width, c.height) for c in rig.cameras}
    calibration[rig.lidar_frame] = (rig.lidar_to_base, None, "lidar")
    tables = NuScenesTableWriter(out)
    names = []
    for i in range((samples + SAMPLES_PER_SCENE - 1) // SAMPLES_PER_SCENE):
        name = f"load-{i:04d}"
        n = min(SAMPLES_PER_SCENE, samples - i * SAMPLES_PER_SCENE)
        start = 1_600_000_000_000_000 + i * 100_000_000
        cars = [(rng.uniform(5, 40), rng.uniform(-20, 20)) for _ in range(5)]
        inputs = []
        for k in range(n):
            t = start + k * SAMPLE_PERIOD_US

            def pose(us: int, start: int = start) -> Transform:
                return Transform.from_xyz_yaw(5e-6 * (us - start), 0.0, 0.0, 0.0)  # 5 m/s along x

            data = [
                SensorDataInput(
                    rig.lidar_frame, t, pose(t), sensor_filename("samples", name, rig.lidar_frame, t)
                )
            ]
            sweep = t - 50_000
            data.append(
                SensorDataInput(
                    rig.lidar_frame,
                    sweep,
                    pose(sweep),
                    sensor_filename("sweeps", name, rig.lidar_frame, sweep),
                    is_key_frame=False,
                )
            )
            for j, cam in enumerate(rig.cameras):
                us = t + 8_000 * j
                data.append(
                    SensorDataInput(cam.name, us, pose(us), sensor_filename("samples", name, cam.name, us))
                )
            for d in data:
                path = out / d.filename
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(pcd if d.channel == rig.lidar_frame else jpgs[d.channel])
            to_base = pose(t).inverse()
            boxes = [
                Box3D(
                    to_base.apply(np.array([[x, y, 0.8]]))[0],
                    [4.5, 1.9, 1.6],
                    0.0,
                    "car",
                    instance_id=f"car{c}",
                )
                for c, (x, y) in enumerate(cars)
            ]
            inputs.append(
                SampleInput(t, pose(t), data, boxes, [10] * len(boxes), attributes=["vehicle.parked"] * 5)
            )
        tables.add_scene(name, f"log-{name}", calibration, inputs)
        names.append(name)
    tables.write({"train": names, "val": names[-1:]}, overwrite=True)


_READ = """
import resource, sys
from simdistill_ros.dataset.dataroot import DatarootFrames
frames = DatarootFrames(sys.argv[1], "v1.0-synth", "train", lidar_sweeps=2)
for i in range(len(frames)):
    frames[i]
print(len(frames), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mib(cmd: list[str]) -> float:
    """Peak RSS (MiB) of ``cmd`` run in a child process of its own."""
    wrapper = (
        "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, check=True)
    code, kib = out.stdout.split()
    if int(code) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({code})")
    return int(kib) / 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, nargs="+", default=[50, 200])
    p.add_argument("--image-size", default="900x1600", help="HxW of the jpgs (nuScenes: 900x1600)")
    p.add_argument("--steps", type=int, default=40, help="training steps (batch 2)")
    p.add_argument("--work", type=Path, help="folder for the dataroots (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the dataroots")
    args = p.parse_args(argv)
    h, w = (int(v) for v in args.image_size.split("x"))
    work = args.work or Path(tempfile.mkdtemp(prefix="dataroot-memory-"))
    rows = []
    env_py = [sys.executable]
    try:
        for n in args.samples:
            root = work / f"samples-{n}"
            if not (root / "v1.0-synth").is_dir():
                write_load_dataroot(root, n, (h, w))
            read = peak_rss_mib([*env_py, "-c", _READ, str(root)])
            train = peak_rss_mib(
                [*env_py, "-m", "simdistill_ros.cli", "train", "teacher", "--data", str(root),
                 "--frames-from", "samples", "--lidar-sweeps", "2", "--batch-size", "2",
                 "--max-steps", str(args.steps), "--epochs", "1", "--device", "cpu",
                 "--out", str(work / f"run-{n}")]
            )  # fmt: skip
            shutil.rmtree(work / f"run-{n}", ignore_errors=True)
            rows.append({"samples": n, "image_size": [h, w], "read_peak_rss_mib": round(read, 1),
                         "train_peak_rss_mib": round(train, 1), "train_steps": args.steps})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
