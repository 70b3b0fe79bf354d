"""What do the detections call each ground-truth box? Per class, the share of its boxes found as each class.

Each ground-truth box of a class (with at least one LiDAR point, as the devkit keeps them; in every sample
of the results) takes the highest-scoring detection of any class that scores at least ``score`` and whose
centre lies within ``distance`` metres (BEV); its class is what the model called the box, ``missed`` when
there is none. A class whose AP falls while its boxes are still found, under another class's name, lost
its classification, not its localisation: the per-class AP cannot tell the two apart, this can.

The table per results file: ``tools/class_confusion.py``; ``make reproduce`` records it for every run.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from simdistill_ros.dataset.nuscenes_tables import DEFAULT_VERSION, category_to_class

MISSED = "missed"
VEHICLES = ("car", "truck", "construction_vehicle", "bus", "trailer")
SCORE, DISTANCE = 0.2, 2.0


def with_points(boxes: list[dict]) -> list[dict]:
    """The annotations the devkit scores: those with at least one LiDAR point (an unknown count counts)."""
    return [b for b in boxes if b.get("num_lidar_pts", 1) > 0]


def annotations_by_class(dataroot: Path, version: str = DEFAULT_VERSION) -> dict[str, dict[str, list[dict]]]:
    """detection class -> sample token -> that sample's annotations of the class (the tables' records)."""
    tables = Path(dataroot) / version
    category = {c["token"]: c["name"] for c in json.loads((tables / "category.json").read_text())}
    instance = {
        i["token"]: category[i["category_token"]] for i in json.loads((tables / "instance.json").read_text())
    }
    out: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for ann in json.loads((tables / "sample_annotation.json").read_text()):
        name = category_to_class(instance[ann["instance_token"]])
        if name is not None:
            out[name][ann["sample_token"]].append(ann)
    return out


def called_as(
    gt: dict[str, list[dict]],
    results: dict[str, list[dict]],
    score: float = SCORE,
    distance: float = DISTANCE,
) -> Counter:
    """For the boxes of ``gt`` (sample token -> annotations) in the samples of ``results``: how often the
    best detection near each (any class, score >= ``score``, centre within ``distance`` m) has each class."""
    counts: Counter = Counter()
    for token, dets in results.items():
        boxes = with_points(gt.get(token, []))
        if not boxes:
            continue
        cands = [d for d in dets if d["detection_score"] >= score]
        centres = np.array([d["translation"][:2] for d in cands], dtype=np.float64).reshape(-1, 2)
        scores = np.array([d["detection_score"] for d in cands], dtype=np.float64)
        for box in boxes:
            near = np.linalg.norm(centres - np.asarray(box["translation"][:2]), axis=1) <= distance
            if not near.any():
                counts[MISSED] += 1
                continue
            best = int(np.flatnonzero(near)[scores[near].argmax()])
            counts[cands[best]["detection_name"]] += 1
    return counts


def class_called(
    dataroot: Path,
    results: dict[str, list[dict]],
    classes: tuple[str, ...] = VEHICLES,
    version: str = DEFAULT_VERSION,
) -> dict[str, dict]:
    """Per class of ``classes``: {"boxes": n, "called": {class or "missed": share}} over ``results``."""
    gt = annotations_by_class(dataroot, version)
    out = {}
    for name in classes:
        counts = called_as(gt.get(name, {}), results)
        total = sum(counts.values())
        out[name] = {
            "boxes": total,
            "called": {k: v / total for k, v in counts.most_common()} if total else {},
        }
    return out
