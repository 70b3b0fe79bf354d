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

# RGB colours in [0, 1] for RViz markers and pictures.
CLASS_COLOR: dict[str, tuple[float, float, float]] = {
    "car": (1.0, 0.62, 0.0),
    "truck": (1.0, 0.39, 0.28),
    "construction_vehicle": (0.91, 0.59, 0.27),
    "bus": (1.0, 0.27, 0.0),
    "trailer": (1.0, 0.55, 0.0),
    "barrier": (0.44, 0.5, 0.56),
    "motorcycle": (1.0, 0.24, 0.39),
    "bicycle": (0.86, 0.08, 0.24),
    "pedestrian": (0.0, 0.0, 0.9),
    "traffic_cone": (0.18, 0.31, 0.31),
}


def class_index(name: str) -> int:
    """Index of a nuScenes detection class name; raises ValueError naming the known classes."""
    try:
        return CLASS_INDEX[name]
    except KeyError:
        raise ValueError(f"unknown class {name!r}; known classes: {', '.join(NUSCENES_CLASSES)}") from None
