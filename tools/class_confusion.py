"""What do the detections call each ground-truth box? Per class, the share of its boxes found as each class.

Usage: .venv/bin/python tools/class_confusion.py --data DATAROOT --results RESULTS_JSON [RESULTS_JSON ...]
       [--classes car truck construction_vehicle bus trailer] [--score 0.2] [--distance 2.0]

Each ground-truth box of a class (with at least one LiDAR point, as the devkit keeps them; every sample of
the results) takes the highest-scoring detection of any class that scores at least ``--score`` and whose
centre lies within ``--distance`` metres (BEV); its class is what the model called the box, "missed" when
there is none. A class whose AP falls while its boxes are still found, under another class's name, lost
its classification, not its localisation: the per-class AP cannot tell the two apart, this can.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

TOOLS = Path(__file__).resolve().parent
MISSED = "missed"
LARGE_VEHICLES = ["car", "truck", "construction_vehicle", "bus", "trailer"]


def _heading_errors():
    """tools/heading_errors.py (its ground-truth reader), under the name the tests load it by."""
    name = "simdistill_heading_errors"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TOOLS / "heading_errors.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def called_as(
    gt: dict[str, list[dict]], results: dict[str, list[dict]], score: float, distance: float
) -> Counter:
    """For the boxes of ``gt`` (sample token -> annotations) in the samples of ``results``: how often the
    best detection near each (any class, score >= ``score``, centre within ``distance`` m) has each class."""
    counts: Counter = Counter()
    for token, dets in results.items():
        boxes = [b for b in gt.get(token, []) if b.get("num_lidar_pts", 1) > 0]
        if not boxes:
            continue
        cands = [d for d in dets if d["detection_score"] >= score]
        centres = np.array([d["translation"][:2] for d in cands]).reshape(-1, 2)
        scores = np.array([d["detection_score"] for d in cands])
        for box in boxes:
            near = np.linalg.norm(centres - np.asarray(box["translation"][:2]), axis=1) <= distance
            if not near.any():
                counts[MISSED] += 1
                continue
            best = int(np.flatnonzero(near)[scores[near].argmax()])
            counts[cands[best]["detection_name"]] += 1
    return counts


def format_row(name: str, counts: Counter, top: int = 4) -> str:
    total = sum(counts.values())
    if not total:
        return f"  {name:<22} no boxes"
    shares = ", ".join(f"{k} {v / total:.0%}" for k, v in counts.most_common(top))
    return f"  {name:<22} {total:5d} boxes: {shares}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="dataset root (v1.0-synth/ tables)")
    p.add_argument(
        "--results",
        type=Path,
        nargs="+",
        required=True,
        help="nuScenes results JSON (simdistill evaluate --out)",
    )
    p.add_argument("--classes", nargs="+", default=LARGE_VEHICLES)
    p.add_argument("--score", type=float, default=0.2)
    p.add_argument("--distance", type=float, default=2.0)
    args = p.parse_args(argv)
    gt = {name: _heading_errors().load_gt(args.data, name) for name in args.classes}
    for path in args.results:
        results = json.loads(path.read_text())["results"]
        print(f"{path} (score >= {args.score}, within {args.distance} m):")
        for name in args.classes:
            print(format_row(name, called_as(gt[name], results, args.score, args.distance)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
