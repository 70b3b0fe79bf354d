"""The class vocabulary: the 10 nuScenes detection classes, in the devkit's order."""

from __future__ import annotations

NUSCENES_CLASSES: tuple[str, ...] = (
    "car",
    "truck",
    "construction_vehicle",
    "bus",
    "trailer",
    "barrier",
    "motorcycle",
    "bicycle",
    "pedestrian",
    "traffic_cone",
)

CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(NUSCENES_CLASSES)}

# nuScenes results must name an attribute; these are the usual per-class defaults when a detector
# predicts none (the devkit's attribute metric is the only one that reads them).
DEFAULT_ATTRIBUTE: dict[str, str] = {
    "car": "vehicle.parked",
    "truck": "vehicle.parked",
    "construction_vehicle": "vehicle.parked",
    "bus": "vehicle.moving",
    "trailer": "vehicle.parked",
    "barrier": "",
    "motorcycle": "cycle.without_rider",
    "bicycle": "cycle.without_rider",
    "pedestrian": "pedestrian.moving",
    "traffic_cone": "",
}

# nuScenes general category written into the synthetic dataset's category table for each class.
CATEGORY_NAME: dict[str, str] = {
    "car": "vehicle.car",
    "truck": "vehicle.truck",
    "construction_vehicle": "vehicle.construction",
    "bus": "vehicle.bus.rigid",
    "trailer": "vehicle.trailer",
    "barrier": "movable_object.barrier",
    "motorcycle": "vehicle.motorcycle",
    "bicycle": "vehicle.bicycle",
    "pedestrian": "human.pedestrian.adult",
    "traffic_cone": "movable_object.trafficcone",
}

# RGB colours in [0, 1] for RViz markers and pictures: one clearly different hue per class (the vehicle
# classes most of all), all bright on a dark background; white is kept for ground truth in the pictures.
CLASS_COLOR: dict[str, tuple[float, float, float]] = {
    "car": (0.12, 0.56, 1.0),  # blue
    "truck": (1.0, 0.5, 0.0),  # orange
    "construction_vehicle": (1.0, 0.9, 0.0),  # yellow
    "bus": (0.9, 0.1, 0.1),  # red
    "trailer": (0.7, 0.45, 0.25),  # brown
    "barrier": (0.6, 0.5, 1.0),  # violet
    "motorcycle": (0.95, 0.3, 0.95),  # magenta
    "bicycle": (0.0, 0.9, 0.7),  # teal
    "pedestrian": (0.25, 0.9, 0.25),  # green
    "traffic_cone": (1.0, 0.65, 0.75),  # pink
}


def class_index(name: str) -> int:
    """Index of a nuScenes detection class name; raises ValueError naming the known classes."""
    try:
        return CLASS_INDEX[name]
    except KeyError:
        raise ValueError(f"unknown class {name!r}; known classes: {', '.join(NUSCENES_CLASSES)}") from None
