"""Which way do the detections point? Heading errors of matched boxes: aligned, reversed or between.

Usage: .venv/bin/python tools/heading_errors.py --data DATAROOT --results RESULTS_JSON [--class car]
       [--score 0.3] [--distance 2.0]

Each ground-truth box of the class (every sample of the results) is matched to the nearest detection of the
same class scoring at least ``--score`` whose centre lies within ``--distance`` metres (BEV). A model that
finds a vehicle's axis but not its front has errors near 0 and near 180 degrees and few between; that
shows as a mean orientation error (mAOE) near 90 degrees, the same as random headings, which this tells
apart.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simdistill_ros.evaluation.confusion import annotations_by_class  # noqa: E402

ALIGNED, REVERSED = math.radians(20), math.radians(160)


def quaternion_yaw(q: list[float]) -> float:
    """Yaw (rad) of a nuScenes (w, x, y, z) rotation about +z."""
    w, x, y, z = q
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def heading_errors(
    gt: dict[str, list[dict]], results: dict[str, list[dict]], name: str, score: float, distance: float
) -> np.ndarray:
    """Absolute heading error (rad, in [0, pi]) of every matched ground-truth box of class ``name``."""
    errors = []
    for token, dets in results.items():
        cands = [d for d in dets if d["detection_name"] == name and d["detection_score"] >= score]
        if not cands:
            continue
        centres = np.array([d["translation"][:2] for d in cands])
        for box in gt.get(token, []):
            dist = np.linalg.norm(centres - np.asarray(box["translation"][:2]), axis=1)
            i = int(dist.argmin())
            if dist[i] <= distance:
                diff = quaternion_yaw(cands[i]["rotation"]) - quaternion_yaw(box["rotation"])
                errors.append(abs((diff + math.pi) % (2 * math.pi) - math.pi))
    return np.asarray(errors)


def load_gt(dataroot: Path, name: str, version: str = "v1.0-synth") -> dict[str, list[dict]]:
    """sample token -> annotations of detection class ``name``."""
    return annotations_by_class(dataroot, version).get(name, {})


def summary(errors: np.ndarray) -> dict:
    n = len(errors)
    share = (lambda mask: float(mask.mean())) if n else (lambda mask: math.nan)
    return {
        "matched": n,
        "aligned": share(errors < ALIGNED),
        "reversed": share(errors > REVERSED),
        "median_rad": float(np.median(errors)) if n else math.nan,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="dataset root (v1.0-synth/ tables)")
    p.add_argument(
        "--results", type=Path, required=True, help="nuScenes results JSON (simdistill evaluate --out)"
    )
    p.add_argument("--class", dest="name", default="car")
    p.add_argument("--score", type=float, default=0.3)
    p.add_argument("--distance", type=float, default=2.0)
    args = p.parse_args(argv)
    results = json.loads(args.results.read_text())["results"]
    s = summary(heading_errors(load_gt(args.data, args.name), results, args.name, args.score, args.distance))
    print(
        f"{args.name}: {s['matched']} matched (score >= {args.score}, within {args.distance} m); "
        f"heading error under 20 deg {s['aligned']:.0%}, over 160 deg (reversed) {s['reversed']:.0%}, "
        f"between {1 - s['aligned'] - s['reversed']:.0%}; median {s['median_rad']:.2f} rad"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
