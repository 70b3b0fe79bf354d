"""Seconds per frame of a scene recording (6 cameras + its share of LiDAR sweeps + the annotation).

Run: ``python tools/synth_speed.py --frames 12 --seeds 0 1 2``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's package

from simdistill_ros.geometry import nuscenes_like_rig  # noqa: E402
from simdistill_ros.synth.scenario import SceneRecording  # noqa: E402
from simdistill_ros.synth.world import WorldConfig, generate_scene  # noqa: E402


def seconds_per_frame(seed: int, frames: int, height: int, width: int) -> tuple[float, float, float]:
    """(scene generation seconds, wall and CPU seconds per recorded frame). CPU time is the steadier
    number on a machine shared with other work."""
    t0 = time.perf_counter()
    scene = generate_scene(np.random.default_rng(seed), WorldConfig())
    t1, c1 = time.perf_counter(), time.process_time()
    recording = SceneRecording(scene, nuscenes_like_rig(height, width), num_frames=frames)
    for _ in recording.events():
        pass
    return t1 - t0, (time.perf_counter() - t1) / frames, (time.process_time() - c1) / frames


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--height", type=int, default=224)
    parser.add_argument("--width", type=int, default=400)
    args = parser.parse_args(argv)
    wall, cpu = [], []
    for seed in args.seeds:
        gen, spf, cpf = seconds_per_frame(seed, args.frames, args.height, args.width)
        wall.append(spf)
        cpu.append(cpf)
        print(f"seed {seed}: generation {gen:.2f} s, {spf:.3f} s/frame wall, {cpf:.3f} s/frame CPU")
    print(
        f"mean {np.mean(wall):.3f} s/frame wall, {np.mean(cpu):.3f} s/frame CPU"
        f" over {len(wall)} scenes x {args.frames} frames"
    )


if __name__ == "__main__":
    main()
