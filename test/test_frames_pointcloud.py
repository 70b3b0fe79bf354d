"""PointCloud2 <-> (N, 4) arrays for any field layout, with rosbags and rclpy-like message objects."""

from __future__ import annotations

import array
from types import SimpleNamespace

import numpy as np
import pytest

from simdistill_ros.frames import messages as m
from simdistill_ros.frames.pointcloud import (
    FLOAT32,
    FLOAT64,
    UINT8,
    UINT16,
    pointcloud2_to_array,
    points_to_pointcloud2_fields,
)


def field(name, offset, datatype, count=1):
    return SimpleNamespace(name=name, offset=offset, datatype=datatype, count=count)


def cloud(fields, data, point_step, width, height=1, row_step=None, is_bigendian=False):
    return SimpleNamespace(
        fields=fields,
        data=data,
        point_step=point_step,
        width=width,
        height=height,
        row_step=point_step * width if row_step is None else row_step,
        is_bigendian=is_bigendian,
    )


def pts(n=5, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)


def test_standard_layout_round_trip_through_a_rosbags_message():
    p = pts(7)
    c = points_to_pointcloud2_fields(p)
    assert c.point_step == 16 and c.row_step == 16 * 7 and c.height == 1 and c.width == 7
    assert [(f.name, f.offset, f.datatype, f.count) for f in c.fields] == [
        ("x", 0, FLOAT32, 1),
        ("y", 4, FLOAT32, 1),
        ("z", 8, FLOAT32, 1),
        ("intensity", 12, FLOAT32, 1),
    ]
    assert c.is_dense and not c.is_bigendian
    store = m.typestore()
    T = store.types
    msg = T[m.POINT_CLOUD2](
        header=m.header_msg(5, "LIDAR_TOP"),
        height=c.height,
        width=c.width,
        fields=[
            T[m.POINT_FIELD](name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
            for f in c.fields
        ],
        is_bigendian=c.is_bigendian,
        point_step=c.point_step,
        row_step=c.row_step,
        data=c.data,
        is_dense=c.is_dense,
    )
    back = store.deserialize_cdr(store.serialize_cdr(msg, m.POINT_CLOUD2), m.POINT_CLOUD2)
    np.testing.assert_array_equal(pointcloud2_to_array(back), p)


def test_xyz_only_input_and_empty_cloud():
    c = points_to_pointcloud2_fields(np.ones((3, 3), np.float32))
    np.testing.assert_array_equal(pointcloud2_to_array(c), np.array([[1, 1, 1, 0]] * 3, np.float32))
    empty = points_to_pointcloud2_fields(np.zeros((0, 4), np.float32))
    assert pointcloud2_to_array(empty).shape == (0, 4)
    with pytest.raises(ValueError, match="shape"):
        points_to_pointcloud2_fields(np.zeros((3, 5)))


def test_non_finite_points_are_dropped_and_flagged():
    p = pts(6)
    p[1, 0] = np.nan
    p[3, 2] = np.inf
    p[4, 3] = np.nan  # a NaN intensity keeps the point, intensity 0
    c = points_to_pointcloud2_fields(p)
    assert not c.is_dense
    out = pointcloud2_to_array(c)
    assert len(out) == 4
    np.testing.assert_array_equal(out[[0, 1, 3]], p[[0, 2, 5]])
    assert out[2, 3] == 0.0 and np.all(out[2, :3] == p[4, :3])


def ouster_like(p, ring):
    """x, y, z, intensity float32, ring uint16, padded to point_step 32, fields listed out of order."""
    dt = np.dtype(
        {
            "names": ["x", "y", "z", "intensity", "ring"],
            "formats": ["<f4", "<f4", "<f4", "<f4", "<u2"],
            "offsets": [0, 4, 8, 16, 20],
            "itemsize": 32,
        }
    )
    rec = np.zeros(len(p), dt)
    for j, k in enumerate(["x", "y", "z", "intensity"]):
        rec[k] = p[:, j]
    rec["ring"] = ring
    fields = [
        field("ring", 20, UINT16),
        field("intensity", 16, FLOAT32),
        field("z", 8, FLOAT32),
        field("x", 0, FLOAT32),
        field("y", 4, FLOAT32),
    ]
    return fields, rec.tobytes()


def test_padded_layout_with_ring_field_and_fields_in_any_order():
    p = pts(9)
    fields, data = ouster_like(p, np.arange(9))
    np.testing.assert_array_equal(pointcloud2_to_array(cloud(fields, data, 32, 9)), p)


def test_rclpy_style_array_data_and_list_data():
    p = pts(4)
    fields, data = ouster_like(p, 0)
    np.testing.assert_array_equal(pointcloud2_to_array(cloud(fields, array.array("B", data), 32, 4)), p)
    np.testing.assert_array_equal(pointcloud2_to_array(cloud(fields, list(data), 32, 4)), p)


@pytest.mark.parametrize("datatype,np_type", [(UINT8, "u1"), (UINT16, "u2"), (FLOAT64, "f8")])
def test_other_intensity_types(datatype, np_type):
    p = pts(5)
    p[:, 3] = np.arange(5) * 10
    dt = np.dtype(
        {
            "names": ["x", "y", "z", "i"],
            "formats": ["<f4", "<f4", "<f4", "<" + np_type],
            "offsets": [0, 4, 8, 16],
            "itemsize": 24,
        }
    )
    rec = np.zeros(5, dt)
    rec["x"], rec["y"], rec["z"], rec["i"] = p[:, 0], p[:, 1], p[:, 2], p[:, 3]
    fields = [
        field("x", 0, FLOAT32),
        field("y", 4, FLOAT32),
        field("z", 8, FLOAT32),
        field("intensity", 16, datatype),
    ]
    np.testing.assert_array_equal(pointcloud2_to_array(cloud(fields, rec.tobytes(), 24, 5)), p)


def test_missing_intensity_gives_zeros_and_float64_xyz():
    p = pts(3).astype(np.float64)
    data = np.ascontiguousarray(p[:, :3]).astype("<f8").tobytes()
    fields = [field("x", 0, FLOAT64), field("y", 8, FLOAT64), field("z", 16, FLOAT64)]
    out = pointcloud2_to_array(cloud(fields, data, 24, 3))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, :3], p[:, :3], rtol=1e-6)
    assert np.all(out[:, 3] == 0)


def test_big_endian_cloud():
    p = pts(4)
    fields = [
        field("x", 0, FLOAT32),
        field("y", 4, FLOAT32),
        field("z", 8, FLOAT32),
        field("intensity", 12, FLOAT32),
    ]
    data = p.astype(">f4").tobytes()
    np.testing.assert_array_equal(pointcloud2_to_array(cloud(fields, data, 16, 4, is_bigendian=True)), p)


def test_organised_cloud_with_row_padding():
    p = pts(6)
    rows = p.reshape(2, 3, 4)
    padded = b"".join(r.astype("<f4").tobytes() + b"\xee" * 8 for r in rows)  # row_step 56 = 48 + 8
    fields = [
        field("x", 0, FLOAT32),
        field("y", 4, FLOAT32),
        field("z", 8, FLOAT32),
        field("intensity", 12, FLOAT32),
    ]
    out = pointcloud2_to_array(cloud(fields, padded, 16, 3, height=2, row_step=56))
    np.testing.assert_array_equal(out, p)


def test_clear_errors():
    with pytest.raises(ValueError, match=r"no z field.*\['intensity', 'x', 'y'\]"):
        pointcloud2_to_array(
            cloud(
                [field("x", 0, FLOAT32), field("y", 4, FLOAT32), field("intensity", 8, FLOAT32)],
                b"\0" * 12,
                12,
                1,
            )
        )
    good = [field("x", 0, FLOAT32), field("y", 4, FLOAT32), field("z", 8, FLOAT32)]
    with pytest.raises(ValueError, match="needs 24"):
        pointcloud2_to_array(cloud(good, b"\0" * 20, 12, 2))
    with pytest.raises(ValueError, match="does not fit"):
        pointcloud2_to_array(cloud(good + [field("intensity", 10, FLOAT32)], b"\0" * 12, 12, 1))
    with pytest.raises(ValueError, match="unknown datatype 42"):
        pointcloud2_to_array(cloud([field("x", 0, 42), *good[1:]], b"\0" * 12, 12, 1))
