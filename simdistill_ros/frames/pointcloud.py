"""sensor_msgs/PointCloud2 <-> (N, 4) float32 arrays [x, y, z, intensity].

Writing always uses the plain layout (four float32 fields, point_step 16). Reading accepts whatever a
driver or converter produced: fields in any order, padding, other intensity types, organised clouds
(height > 1, row padding), big-endian data. Only attribute access is used (``.fields``, ``.data``, ...), so
rosbags and rclpy message objects both work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# sensor_msgs/PointField datatype constants.
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)
POINT_FIELD_DTYPES: dict[int, np.dtype] = {
    INT8: np.dtype(np.int8),
    UINT8: np.dtype(np.uint8),
    INT16: np.dtype(np.int16),
    UINT16: np.dtype(np.uint16),
    INT32: np.dtype(np.int32),
    UINT32: np.dtype(np.uint32),
    FLOAT32: np.dtype(np.float32),
    FLOAT64: np.dtype(np.float64),
}
# Names drivers use for the return strength, in order of preference.
INTENSITY_NAMES = ("intensity", "i", "reflectivity")


@dataclass(frozen=True)
class PointFieldSpec:
    """The four values of one sensor_msgs/PointField."""

    name: str
    offset: int
    datatype: int
    count: int = 1


@dataclass(frozen=True)
class PointCloudData:
    """Everything of a sensor_msgs/PointCloud2 except the header."""

    height: int
    width: int
    fields: tuple[PointFieldSpec, ...]
    is_bigendian: bool
    point_step: int
    row_step: int
    data: np.ndarray  # uint8 (point_step * width * height,)
    is_dense: bool


XYZI_FIELDS = (
    PointFieldSpec("x", 0, FLOAT32),
    PointFieldSpec("y", 4, FLOAT32),
    PointFieldSpec("z", 8, FLOAT32),
    PointFieldSpec("intensity", 12, FLOAT32),
)


def points_to_pointcloud2_fields(points: np.ndarray) -> PointCloudData:
    """The unorganised little-endian x, y, z, intensity float32 cloud (point_step 16) of ``points``.

    ``points`` is (N, 4) [x, y, z, intensity] or (N, 3) (intensity 0). Non-finite points are kept and
    flagged by ``is_dense=False``, as drivers do.
    """
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] not in (3, 4):
        raise ValueError(f"points must be (N, 4) [x, y, z, intensity] or (N, 3), got shape {pts.shape}")
    cloud = np.zeros((len(pts), 4), dtype="<f4")
    cloud[:, : pts.shape[1]] = pts
    n = len(cloud)
    return PointCloudData(
        height=1,
        width=n,
        fields=XYZI_FIELDS,
        is_bigendian=False,
        point_step=16,
        row_step=16 * n,
        data=np.frombuffer(cloud.tobytes(), dtype=np.uint8),
        is_dense=bool(np.isfinite(cloud).all()),
    )


def _as_bytes(data: Any) -> np.ndarray:
    """The message's data field as a flat uint8 array (bytes, numpy arrays, array.array, lists)."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8) if data.dtype.itemsize == 1 else data.view(np.uint8)
    try:
        return np.frombuffer(memoryview(data), dtype=np.uint8)
    except TypeError:  # a plain list of ints
        return np.asarray(data, dtype=np.uint8)


NO_INTENSITY = "has no intensity field (none of " + ", ".join(INTENSITY_NAMES) + "): intensity 0 assumed"


def intensity_field(msg: Any) -> str | None:
    """The field of a PointCloud2 read as intensity (the first of ``INTENSITY_NAMES`` it has), else None."""
    names = {f.name for f in msg.fields}
    return next((k for k in INTENSITY_NAMES if k in names), None)


def pointcloud2_to_array(msg: Any) -> np.ndarray:
    """(N, 4) float32 [x, y, z, intensity] of a PointCloud2 with any field layout.

    Points with a non-finite x, y or z are dropped; a missing intensity field gives zeros; a non-finite
    intensity becomes 0. Raises ``ValueError`` naming the problem for unusable layouts.
    """
    fields = {f.name: f for f in msg.fields}
    missing = [c for c in "xyz" if c not in fields]
    if missing:
        raise ValueError(
            f"PointCloud2 has no {', '.join(missing)} field(s); its fields are {sorted(fields) or 'none'}"
        )
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    n = height * width
    if n == 0:
        return np.zeros((0, 4), np.float32)
    if point_step <= 0:
        raise ValueError(f"PointCloud2 point_step is {point_step}")
    # Single-row clouds sometimes carry row_step 0; rows never overlap.
    row_step = max(row_step, width * point_step)
    order = ">" if msg.is_bigendian else "<"
    names = ["x", "y", "z", intensity_field(msg)]
    used = [k for k in names if k is not None]
    formats, offsets = [], []
    for k in used:
        f = fields[k]
        if f.datatype not in POINT_FIELD_DTYPES:
            raise ValueError(f"PointCloud2 field {k!r} has unknown datatype {f.datatype}")
        dt = POINT_FIELD_DTYPES[f.datatype].newbyteorder(order)
        if f.offset < 0 or f.offset + dt.itemsize > point_step:
            raise ValueError(
                f"PointCloud2 field {k!r} (offset {f.offset}, {dt.itemsize} bytes) does not fit in "
                f"point_step {point_step}"
            )
        formats.append(dt)
        offsets.append(int(f.offset))
    raw = _as_bytes(msg.data)
    need = (height - 1) * row_step + width * point_step
    if raw.size < need:
        raise ValueError(
            f"PointCloud2 data has {raw.size} bytes, its layout ({height}x{width} points, point_step "
            f"{point_step}, row_step {row_step}) needs {need}"
        )
    if row_step != width * point_step:  # drop row padding of organised clouds
        raw = np.ascontiguousarray(
            np.lib.stride_tricks.as_strided(raw, (height, width * point_step), (row_step, 1))
        ).reshape(-1)
    else:
        raw = np.ascontiguousarray(raw[: n * point_step])
    dtype = np.dtype({"names": used, "formats": formats, "offsets": offsets, "itemsize": point_step})
    rec = raw.view(dtype)
    out = np.zeros((n, 4), np.float32)
    for j, k in enumerate(used):
        out[:, j] = rec[k]
    out[~np.isfinite(out[:, 3]), 3] = 0.0
    return out[np.isfinite(out[:, :3]).all(axis=1)]
