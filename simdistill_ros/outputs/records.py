"""Box3D <-> the JSON record the detection recorder writes per box."""

from __future__ import annotations

from simdistill_ros.geometry import Box3D


def box_record(b: Box3D) -> dict:
    """JSON-friendly record of a box; ``velocity`` (vx, vy in the base frame, m/s) is what the message
    carried (zero from a Detection3DArray alone)."""
    return {
        "label": b.label,
        "score": float(b.score),
        "center": [float(v) for v in b.center],
        "size": [float(v) for v in b.size],
        "yaw": float(b.yaw),
        "velocity": [float(v) for v in b.velocity],
        "id": b.instance_id,
    }


def box_from_record(r: dict) -> Box3D:
    """Inverse of :func:`box_record` (records without ``velocity`` get zero)."""
    return Box3D(
        r["center"],
        r["size"],
        r["yaw"],
        r["label"],
        r.get("velocity", [0.0, 0.0]),
        score=r["score"],
        instance_id=r.get("id", ""),
    )
