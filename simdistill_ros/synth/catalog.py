"""What each kind of thing in the world looks like: class sizes, paint palettes and box-primitive shapes.

Objects are built from a few axis-aligned boxes ("parts") in the object's own frame (origin at the box
centre, x forward, z up). Parts stay a few centimetres inside the annotated box so that LiDAR returns with
range noise still fall inside it, as annotators' boxes do in real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simdistill_ros.synth.materials import Material, Pattern

# nuScenes mean sizes (length, width, height) in metres.
MEAN_SIZE: dict[str, tuple[float, float, float]] = {
    "car": (4.62, 1.95, 1.73),
    "truck": (6.93, 2.51, 2.84),
    "bus": (11.19, 2.94, 3.47),
    "pedestrian": (0.73, 0.67, 1.77),
    "motorcycle": (2.11, 0.77, 1.47),
    "bicycle": (1.70, 0.61, 1.29),
    "barrier": (0.48, 2.49, 0.98),
    "traffic_cone": (0.41, 0.41, 1.07),
    "trailer": (12.29, 2.90, 3.87),
    "construction_vehicle": (6.37, 2.73, 3.19),
}

INSET = 0.03  # geometry inset from the annotated box (metres)
GLASS = (0.10, 0.13, 0.17)
WINDSCREEN = (0.04, 0.06, 0.09)  # darker than side glass: a camera sees into the unlit cabin
HEADLIGHT = (1.0, 0.97, 0.86)
TAILLIGHT = (0.78, 0.04, 0.04)
GRILLE = (0.05, 0.05, 0.055)

CAR_PAINT = (
    (0.92, 0.92, 0.90),
    (0.08, 0.08, 0.09),
    (0.62, 0.63, 0.65),
    (0.38, 0.39, 0.41),
    (0.10, 0.16, 0.35),
    (0.62, 0.08, 0.07),
    (0.20, 0.35, 0.62),
    (0.70, 0.64, 0.52),
    (0.16, 0.30, 0.20),
    (0.85, 0.75, 0.20),
)
TRUCK_PAINT = (
    (0.90, 0.90, 0.88),
    (0.55, 0.56, 0.58),
    (0.15, 0.25, 0.55),
    (0.65, 0.12, 0.10),
    (0.18, 0.40, 0.22),
)
BUS_PAINT = (
    (0.90, 0.90, 0.88),
    (0.75, 0.12, 0.10),
    (0.12, 0.30, 0.65),
    (0.90, 0.72, 0.12),
    (0.20, 0.55, 0.35),
)
SHIRT = (
    (0.80, 0.15, 0.12),
    (0.15, 0.25, 0.60),
    (0.90, 0.90, 0.88),
    (0.10, 0.10, 0.10),
    (0.25, 0.50, 0.30),
    (0.85, 0.60, 0.15),
    (0.50, 0.30, 0.55),
    (0.55, 0.55, 0.58),
    (0.20, 0.55, 0.70),
)
TROUSERS = (
    (0.10, 0.12, 0.25),
    (0.08, 0.08, 0.08),
    (0.45, 0.40, 0.30),
    (0.35, 0.35, 0.38),
    (0.20, 0.30, 0.50),
)
SKIN = ((0.90, 0.72, 0.58), (0.75, 0.55, 0.40), (0.48, 0.32, 0.22), (0.30, 0.20, 0.14))
HAIR = ((0.08, 0.06, 0.05), (0.30, 0.20, 0.10), (0.65, 0.55, 0.35), (0.45, 0.45, 0.45))
BARRIER_STYLE = (
    ((0.85, 0.10, 0.08), (0.95, 0.95, 0.92)),  # red/white plastic
    ((0.95, 0.75, 0.10), (0.08, 0.08, 0.08)),  # yellow/black
)
CONCRETE_BARRIER = (0.66, 0.65, 0.62)
FACADE = (
    (0.78, 0.74, 0.66),
    (0.62, 0.36, 0.28),
    (0.85, 0.84, 0.80),
    (0.55, 0.55, 0.56),
    (0.70, 0.60, 0.45),
    (0.45, 0.50, 0.55),
    (0.88, 0.80, 0.62),
)
FOLIAGE = ((0.20, 0.38, 0.12), (0.28, 0.42, 0.15), (0.16, 0.30, 0.14))
BARK = (0.30, 0.22, 0.15)
METAL = (0.45, 0.46, 0.48)


@dataclass(frozen=True)
class Part:
    """An axis-aligned box in its owner's frame: ``lo``/``hi`` corners (3,) and a material."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    material: Material


def _pick(rng: np.random.Generator, palette: tuple) -> tuple[float, float, float]:
    c = np.asarray(palette[int(rng.integers(len(palette)))], np.float64)
    # Per-instance tint so two "white" cars are not identical.
    return tuple(np.clip(c * rng.uniform(0.88, 1.1) + rng.normal(0, 0.02, 3), 0.0, 1.0).tolist())


class _Shape:
    """Builds parts from fractions of the object's (inset) box: x, y, z fractions in [0, 1]."""

    def __init__(self, size: np.ndarray, inset: float = INSET) -> None:
        length, width, height = size
        self.lo = np.array([-length / 2 + inset, -width / 2 + inset, -height / 2])
        self.ext = np.array([length - 2 * inset, width - 2 * inset, height - inset])
        self.parts: list[Part] = []
        self.z_top = 1.0  # z fractions are of this fraction of the height (a cycle under its rider)

    def add(
        self, x: tuple[float, float], y: tuple[float, float], z: tuple[float, float], mat: Material
    ) -> None:
        lo = self.lo + self.ext * np.array([x[0], y[0], z[0] * self.z_top])
        hi = self.lo + self.ext * np.array([x[1], y[1], z[1] * self.z_top])
        self.parts.append(Part(tuple(lo.tolist()), tuple(hi.tolist()), mat))


# Cycles: nuScenes' mean heights mix parked ones with ridden ones (whose box includes the rider).
CYCLE_HEIGHT = {"bicycle": (1.1, 1.7), "motorcycle": (1.2, 1.75)}  # (parked, ridden)


def mean_size(label: str, moving: bool = False) -> np.ndarray:
    """The centre of the size distribution of ``label`` (nuScenes means; cycles split by rider)."""
    size = np.array(MEAN_SIZE[label])
    if label in CYCLE_HEIGHT:
        size[2] = CYCLE_HEIGHT[label][int(moving)]
    return size


def sample_size(
    label: str, rng: np.random.Generator, spread: float = 0.18, moving: bool = False
) -> np.ndarray:
    """A per-instance size: the class mean with independent +-``spread`` scaling per dimension."""
    return mean_size(label, moving) * rng.uniform(1 - spread, 1 + spread, 3)


def object_parts(
    label: str, size: np.ndarray, rng: np.random.Generator, moving: bool, detail: bool = False
) -> list[Part]:
    """The primitives of one object of class ``label`` and annotated ``size`` (length, width, height).

    ``detail`` gives cars, trucks and buses a front and a back a camera can tell apart (headlights, grille
    and windscreen at +x, red tail lights at -x); it draws no random numbers, so the rest of a world is the
    same with or without it."""
    s = _Shape(size)
    full = (0.0, 1.0)
    rubber = Material((0.04, 0.04, 0.045), reflectivity=0.05)
    if label == "car":
        paint = _pick(rng, CAR_PAINT)
        body = Material(paint, pattern=Pattern.CAR_BODY, reflectivity=0.5)
        s.add((0.12, 0.3), (0.02, 0.98), (0.0, 0.32), rubber)
        s.add((0.7, 0.88), (0.02, 0.98), (0.0, 0.32), rubber)
        cab_x = (0.18, 0.74) if rng.random() < 0.7 else (0.12, 0.9)  # saloon or estate/van
        if detail:
            # a long bonnet and a short boot (the cabin set back), so the silhouette is not symmetric either;
            # body and cabin stop short of the lights and windscreen so that no two faces coincide
            cab_x = (cab_x[0] - 0.06, cab_x[1] - 0.08)
            s.add((0.01, 0.99), full, (0.12, 0.56), body)
            s.add(
                (cab_x[0], cab_x[1] - 0.02),
                (0.07, 0.93),
                (0.56, 1.0),
                Material(paint, GLASS, Pattern.CABIN, 1.0, 0.5, 0.15),
            )
            s.add(
                (cab_x[1] - 0.03, cab_x[1]), (0.1, 0.9), (0.58, 0.96), Material(WINDSCREEN, reflectivity=0.15)
            )
            _lights(s, front=(0.99, 1.0), back=(0.0, 0.01), z=(0.36, 0.5), grille_z=(0.18, 0.36))
        else:
            s.add(full, full, (0.12, 0.56), body)
            s.add(cab_x, (0.07, 0.93), (0.56, 1.0), Material(paint, GLASS, Pattern.CABIN, 1.0, 0.5, 0.15))
    elif label == "truck":
        cab = _pick(rng, TRUCK_PAINT)
        cargo = _pick(rng, TRUCK_PAINT[:2]) if rng.random() < 0.6 else cab
        s.add((0.05, 0.95), (0.05, 0.95), (0.0, 0.2), rubber)
        if detail:
            s.add((0.77, 0.99), full, (0.08, 0.82), Material(cab, GLASS, Pattern.TRUCK_CAB, 1.0, 0.5, 0.15))
            s.add((0.99, 1.0), (0.08, 0.92), (0.5, 0.8), Material(WINDSCREEN, reflectivity=0.15))
            _lights(s, front=(0.99, 1.0), back=(0.0, 0.005), z=(0.16, 0.24), grille_z=(0.24, 0.46))
        else:
            s.add((0.77, 1.0), full, (0.08, 0.82), Material(cab, GLASS, Pattern.TRUCK_CAB, 1.0, 0.5, 0.15))
        s.add(
            (0.005 if detail else 0.0, 0.75),
            full,
            (0.12, 1.0),
            Material(cargo, pattern=Pattern.CONTAINER, scale=0.5, reflectivity=0.55),
        )
    elif label == "bus":
        paint = _pick(rng, BUS_PAINT)
        s.add((0.1, 0.22), (0.02, 0.98), (0.0, 0.2), rubber)
        s.add((0.74, 0.86), (0.02, 0.98), (0.0, 0.2), rubber)
        bus = Material(paint, GLASS, Pattern.BUS, rng.uniform(1.1, 1.6), 0.55, 0.15)
        if detail:
            s.add((0.005, 0.995), full, (0.06, 1.0), bus)
            s.add((0.995, 1.0), (0.06, 0.94), (0.45, 0.92), Material(WINDSCREEN, reflectivity=0.15))
            _lights(s, front=(0.995, 1.0), back=(0.0, 0.005), z=(0.12, 0.2), grille_z=(0.2, 0.32))
        else:
            s.add(full, full, (0.06, 1.0), bus)
    elif label == "trailer":
        paint = _pick(rng, TRUCK_PAINT)
        s.add((0.05, 0.3), (0.03, 0.97), (0.0, 0.3), rubber)
        s.add((0.9, 1.0), (0.4, 0.6), (0.22, 0.32), Material(METAL, reflectivity=0.4))
        s.add(
            (0.0, 0.9),
            full,
            (0.28, 1.0),
            Material(paint, pattern=Pattern.CONTAINER, scale=0.6, reflectivity=0.55),
        )
    elif label == "construction_vehicle":
        yellow = _pick(rng, ((0.92, 0.68, 0.08), (0.95, 0.50, 0.08), (0.85, 0.80, 0.20)))
        paint = Material(yellow, reflectivity=0.5)
        s.add((0.05, 0.95), full, (0.0, 0.3), rubber)
        s.add((0.25, 1.0), (0.05, 0.95), (0.3, 0.62), paint)
        s.add((0.55, 0.92), (0.08, 0.62), (0.62, 1.0), Material(yellow, GLASS, Pattern.CABIN, 1.0, 0.5, 0.15))
        s.add((0.0, 0.3), (0.66, 0.86), (0.3, 0.88), paint)
        s.add((0.0, 0.12), (0.2, 0.86), (0.05, 0.3), Material(METAL, reflectivity=0.45))
    elif label == "pedestrian":
        shirt = Material(_pick(rng, SHIRT), reflectivity=0.4)
        trousers = Material(_pick(rng, TROUSERS), reflectivity=0.3)
        head = Material(
            _pick(rng, SKIN), _pick(rng, HAIR), Pattern.HEAD, reflectivity=0.35, reflectivity2=0.2
        )
        if moving:  # mid-stride: legs apart along the heading
            s.add((0.18, 0.45), (0.3, 0.48), (0.0, 0.48), trousers)
            s.add((0.55, 0.82), (0.52, 0.7), (0.0, 0.48), trousers)
        else:
            s.add((0.36, 0.64), (0.28, 0.72), (0.0, 0.48), trousers)
        s.add((0.3, 0.7), (0.2, 0.8), (0.48, 0.83), shirt)
        s.add((0.38, 0.62), (0.04, 0.19), (0.5, 0.81), shirt)
        s.add((0.38, 0.62), (0.81, 0.96), (0.5, 0.81), shirt)
        s.add((0.37, 0.63), (0.37, 0.63), (0.85, 1.0), head)
    elif label == "motorcycle":
        if moving:
            _rider(s, rng, CYCLE_HEIGHT[label][0] / CYCLE_HEIGHT[label][1], helmet=True)
        paint = Material(_pick(rng, CAR_PAINT), reflectivity=0.5)
        s.add((0.0, 0.3), (0.4, 0.6), (0.0, 0.45), rubber)
        s.add((0.7, 1.0), (0.4, 0.6), (0.0, 0.45), rubber)
        s.add((0.2, 0.78), (0.3, 0.7), (0.28, 0.62), paint)
        s.add((0.28, 0.62), (0.33, 0.67), (0.62, 0.72), Material((0.06, 0.06, 0.06), reflectivity=0.1))
        s.add((0.76, 0.84), (0.32, 0.68), (0.55, 1.0), Material(GLASS, reflectivity=0.2))
        s.add((0.7, 0.76), full, (0.78, 0.84), Material(METAL, reflectivity=0.5))
    elif label == "bicycle":
        if moving:
            _rider(s, rng, CYCLE_HEIGHT[label][0] / CYCLE_HEIGHT[label][1], helmet=False)
        frame = Material(_pick(rng, SHIRT), reflectivity=0.5)
        s.add((0.0, 0.4), (0.45, 0.55), (0.0, 0.55), rubber)
        s.add((0.6, 1.0), (0.45, 0.55), (0.0, 0.55), rubber)
        s.add((0.22, 0.76), (0.44, 0.56), (0.38, 0.62), frame)
        s.add((0.28, 0.42), (0.38, 0.62), (0.62, 0.74), Material((0.06, 0.06, 0.06), reflectivity=0.1))
        s.add((0.74, 0.8), (0.44, 0.56), (0.55, 0.92), frame)
        s.add((0.72, 0.82), full, (0.92, 1.0), Material(METAL, reflectivity=0.5))
    elif label == "barrier":
        if rng.random() < 0.3:
            concrete = Material(CONCRETE_BARRIER, reflectivity=0.35)
            s.add(full, full, (0.0, 0.35), concrete)
            s.add((0.22, 0.78), full, (0.35, 1.0), concrete)
        else:
            a, b = BARRIER_STYLE[int(rng.integers(len(BARRIER_STYLE)))]
            s.add((0.0, 1.0), (0.0, 0.12), (0.0, 0.22), Material(METAL, reflectivity=0.3))
            s.add((0.0, 1.0), (0.88, 1.0), (0.0, 0.22), Material(METAL, reflectivity=0.3))
            s.add((0.3, 0.7), full, (0.22, 1.0), Material(a, b, Pattern.STRIPES, 0.5, 0.4, 0.9))
    elif label == "traffic_cone":
        orange = _pick(rng, ((0.95, 0.38, 0.05), (0.98, 0.30, 0.04)))
        cone = Material(orange, (0.95, 0.95, 0.95), Pattern.BAND, 1.0, 0.5, 0.9)
        s.add(full, full, (0.0, 0.05), Material((0.05, 0.05, 0.05), reflectivity=0.1))
        s.add((0.15, 0.85), (0.15, 0.85), (0.05, 0.4), Material(orange, reflectivity=0.5))
        s.add((0.26, 0.74), (0.26, 0.74), (0.4, 0.72), cone)
        s.add((0.36, 0.64), (0.36, 0.64), (0.72, 1.0), cone)
    else:
        raise ValueError(f"no shape for class {label!r}")
    return s.parts


def _lights(
    s: _Shape, front: tuple[float, float], back: tuple[float, float], z: tuple[float, float], grille_z: tuple
) -> None:
    """Two headlights and a dark grille on the front face, two red tail lights on the back face."""
    for y in ((0.06, 0.26), (0.74, 0.94)):
        s.add(front, y, z, Material(HEADLIGHT, reflectivity=0.8))
        s.add(back, y, z, Material(TAILLIGHT, reflectivity=0.8))
    s.add(front, (0.3, 0.7), grille_z, Material(GRILLE, reflectivity=0.3))


def _rider(s: _Shape, rng: np.random.Generator, seat: float, helmet: bool) -> None:
    """A seated rider above the saddle; the cycle's own parts then go below ``seat`` (fraction of height)."""
    clothes = Material(_pick(rng, SHIRT), reflectivity=0.4)
    legs = Material(_pick(rng, TROUSERS), reflectivity=0.3)
    if helmet:
        head = Material(_pick(rng, CAR_PAINT), reflectivity=0.6)
    else:
        head = Material(
            _pick(rng, SKIN), _pick(rng, HAIR), Pattern.HEAD, reflectivity=0.35, reflectivity2=0.2
        )
    s.add((0.36, 0.56), (0.3, 0.44), (0.35, 0.62), legs)
    s.add((0.36, 0.56), (0.56, 0.7), (0.35, 0.62), legs)
    s.add((0.3, 0.52), (0.28, 0.72), (0.6, 0.86), clothes)
    s.add((0.5, 0.74), (0.22, 0.32), (0.66, 0.74), clothes)
    s.add((0.5, 0.74), (0.68, 0.78), (0.66, 0.74), clothes)
    s.add((0.34, 0.5), (0.4, 0.6), (0.87, 1.0), head)
    s.z_top = seat


def building_parts(size: np.ndarray, rng: np.random.Generator) -> list[Part]:
    s = _Shape(size, inset=0.0)
    wall = _pick(rng, FACADE)
    glass = tuple(np.clip(np.array(GLASS) + rng.uniform(0.0, 0.1), 0, 1).tolist())
    s.add(
        (0.0, 1.0),
        (0.0, 1.0),
        (0.0, 1.0),
        Material(wall, glass, Pattern.FACADE, rng.uniform(3.0, 3.6), 0.4, 0.15),
    )
    return s.parts


def tree_parts(size: np.ndarray, rng: np.random.Generator) -> list[Part]:
    s = _Shape(size, inset=0.0)
    s.add((0.44, 0.56), (0.44, 0.56), (0.0, 0.45), Material(BARK, reflectivity=0.3))
    leaf = Material(_pick(rng, FOLIAGE), pattern=Pattern.FOLIAGE, reflectivity=0.5)
    # A stepped crown reads rounder than one box.
    s.add((0.15, 0.85), (0.15, 0.85), (0.38, 0.5), leaf)
    s.add((0.0, 1.0), (0.0, 1.0), (0.5, 0.78), leaf)
    s.add((0.12, 0.88), (0.12, 0.88), (0.78, 0.92), leaf)
    s.add((0.3, 0.7), (0.3, 0.7), (0.92, 1.0), leaf)
    return s.parts


def pole_parts(size: np.ndarray, rng: np.random.Generator) -> list[Part]:
    """A street light: a mast at the back and an arm reaching over the road (+x)."""
    s = _Shape(size, inset=0.0)
    metal = Material(METAL, reflectivity=0.45)
    s.add((0.0, 0.08), (0.3, 0.7), (0.0, 1.0), metal)
    s.add((0.0, 1.0), (0.35, 0.65), (0.96, 1.0), metal)
    return s.parts
