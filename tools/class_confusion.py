"""What do the detections call each ground-truth box? Per class, the share of its boxes found as each class.

Usage: .venv/bin/python tools/class_confusion.py --data DATAROOT --results RESULTS_JSON [RESULTS_JSON ...]
       [--classes car truck construction_vehicle bus trailer] [--score 0.2] [--distance 2.0]

The counting is ``simdistill_ros.evaluation.confusion`` (``make reproduce`` records it for every run); this
prints it for any results JSON of ``simdistill evaluate --out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simdistill_ros.dataset.nuscenes_tables import DEFAULT_VERSION  # noqa: E402
from simdistill_ros.evaluation.confusion import (  # noqa: E402
    DISTANCE,
    SCORE,
    VEHICLES,
    annotations_by_class,
    called_as,
)


def format_row(name: str, counts: Counter, top: int = 4) -> str:
    total = sum(counts.values())
    if not total:
        return f"  {name:<22} no boxes"
    shares = ", ".join(f"{k} {v / total:.0%}" for k, v in counts.most_common(top))
    return f"  {name:<22} {total:5d} boxes: {shares}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="dataset root (VERSION/ tables)")
    p.add_argument("--version", default=DEFAULT_VERSION)
    p.add_argument(
        "--results",
        type=Path,
        nargs="+",
        required=True,
        help="nuScenes results JSON (simdistill evaluate --out)",
    )
    p.add_argument("--classes", nargs="+", default=list(VEHICLES))
    p.add_argument("--score", type=float, default=SCORE)
    p.add_argument("--distance", type=float, default=DISTANCE)
    args = p.parse_args(argv)
    gt = annotations_by_class(args.data, args.version)
    for path in args.results:
        results = json.loads(path.read_text())["results"]
        print(f"{path} (score >= {args.score}, within {args.distance} m):")
        for name in args.classes:
            print(format_row(name, called_as(gt.get(name, {}), results, args.score, args.distance)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
