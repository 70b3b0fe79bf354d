"""Precision, recall and F1 of a model's boxes at several score thresholds: how the default
``score_threshold`` of the node and ``simdistill detect`` is chosen.

Usage: .venv/bin/python tools/score_threshold.py --data DATAROOT --results RESULTS_JSON [RESULTS_JSON ...]
       [--thresholds 0.2 0.25 0.3 0.4] [--distance 2.0]

A detection is a true positive when it is matched to a ground-truth box of its class (with at least one
LiDAR point, as the devkit keeps them) whose centre lies within ``--distance`` metres (BEV); detections are
matched best score first, each box at most once. Only the samples of the results file count; scoring
(``simdistill evaluate --out``) keeps boxes from 0.05 up, so every threshold above that can be read from
one results file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simdistill_ros.dataset.nuscenes_tables import DEFAULT_VERSION  # noqa: E402
from simdistill_ros.evaluation.confusion import DISTANCE, annotations_by_class, with_points  # noqa: E402

THRESHOLDS = (0.2, 0.25, 0.3, 0.4)


def match_counts(
    gt: dict[str, dict[str, list[dict]]], results: dict[str, list[dict]], threshold: float, distance: float
) -> tuple[int, int, int]:
    """(true positives, detections, ground-truth boxes) over the samples of ``results``."""
    tp = n_det = n_gt = 0
    for token, dets in results.items():
        for name in {d["detection_name"] for d in dets} | {c for c in gt if token in gt[c]}:
            boxes = with_points(gt.get(name, {}).get(token, []))
            mine = sorted(
                (d for d in dets if d["detection_name"] == name and d["detection_score"] >= threshold),
                key=lambda d: -d["detection_score"],
            )
            n_gt += len(boxes)
            n_det += len(mine)
            if not boxes:
                continue
            centres = np.array([b["translation"][:2] for b in boxes], dtype=np.float64)
            free = np.ones(len(boxes), dtype=bool)
            for d in mine:
                dist = np.linalg.norm(centres - np.asarray(d["translation"][:2]), axis=1)
                dist[~free] = np.inf
                j = int(dist.argmin())
                if dist[j] <= distance:
                    free[j] = False
                    tp += 1
    return tp, n_det, n_gt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="dataset root (VERSION/ tables)")
    p.add_argument("--version", default=DEFAULT_VERSION)
    p.add_argument("--results", type=Path, nargs="+", required=True, help="simdistill evaluate --out's JSON")
    p.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS))
    p.add_argument("--distance", type=float, default=DISTANCE)
    args = p.parse_args(argv)
    gt = annotations_by_class(args.data, args.version)
    for path in args.results:
        results = json.loads(path.read_text())["results"]
        print(f"{path} ({len(results)} frames, same class within {args.distance} m):")
        print("  threshold  precision  recall    F1  boxes a frame")
        for t in args.thresholds:
            tp, n_det, n_gt = match_counts(gt, results, t, args.distance)
            precision, recall = tp / max(n_det, 1), tp / max(n_gt, 1)
            f1 = 2 * precision * recall / max(precision + recall, 1e-12)
            per_frame = n_det / max(len(results), 1)
            print(f"  {t:9.2f}  {precision:9.2f}  {recall:6.2f}  {f1:4.2f}  {per_frame:13.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
