"""Read MCAP files of Foxglove's nuscenes2mcap converter: protobuf messages with the foxglove schemas
(CompressedImage, RawImage, CameraCalibration, FrameTransform(s), PointCloud), which rosbags cannot decode.

Each message is turned into an object with the attribute names of its ROS 2 counterpart (``header.stamp``,
``k``, ``transforms``, PointCloud2 ``fields``...), so the rest of the reader does not know the difference.
Decoding uses the ``mcap-protobuf-support`` package (in requirements.txt).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from mcap.reader import make_reader
from mcap_protobuf.decoder import DecoderFactory

# foxglove.PackedElementField.NumericType -> sensor_msgs/PointField datatype
_NUMERIC_TO_POINT_FIELD = {1: 2, 2: 1, 3: 4, 4: 3, 5: 6, 6: 5, 7: 7, 8: 8}


def mcap_profile(path: Path) -> str | None:
    """The MCAP header's profile (``ros2`` for rosbag2 files, empty for Foxglove's), None if unreadable."""
    try:
        with open(path, "rb") as f:
            return make_reader(f).get_header().profile
    except Exception:  # not an mcap file, or a broken one: the rosbags reader will say what is wrong
        return None


def _stamp(ts: Any) -> SimpleNamespace:
    return SimpleNamespace(sec=int(ts.seconds), nanosec=int(ts.nanos))


def _header(msg: Any) -> SimpleNamespace:
    return SimpleNamespace(stamp=_stamp(msg.timestamp), frame_id=str(msg.frame_id))


def _transform(t: Any) -> SimpleNamespace:
    tr, q = t.translation, t.rotation
    return SimpleNamespace(
        header=SimpleNamespace(stamp=_stamp(t.timestamp), frame_id=str(t.parent_frame_id)),
        child_frame_id=str(t.child_frame_id),
        transform=SimpleNamespace(
            translation=SimpleNamespace(x=tr.x, y=tr.y, z=tr.z),
            rotation=SimpleNamespace(x=q.x, y=q.y, z=q.z, w=q.w),
        ),
    )


def as_ros(schema: str, msg: Any) -> Any:
    """The ROS-shaped view of a decoded foxglove message (None for schemas the reader does not use)."""
    if schema == "foxglove.CompressedImage":
        return SimpleNamespace(
            header=_header(msg), format=str(msg.format), data=np.frombuffer(msg.data, np.uint8)
        )
    if schema == "foxglove.RawImage":
        return SimpleNamespace(
            header=_header(msg),
            height=int(msg.height),
            width=int(msg.width),
            encoding=str(msg.encoding),
            is_bigendian=0,
            step=int(msg.step),
            data=np.frombuffer(msg.data, np.uint8),
        )
    if schema == "foxglove.CameraCalibration":
        return SimpleNamespace(
            header=_header(msg),
            width=int(msg.width),
            height=int(msg.height),
            distortion_model=str(msg.distortion_model),
            d=list(msg.D),
            k=list(msg.K),
            r=list(msg.R),
            p=list(msg.P),
        )
    if schema == "foxglove.FrameTransform":
        return SimpleNamespace(transforms=[_transform(msg)])
    if schema == "foxglove.FrameTransforms":
        return SimpleNamespace(transforms=[_transform(t) for t in msg.transforms])
    if schema == "foxglove.PointCloud":
        data = np.frombuffer(msg.data, np.uint8)
        stride = int(msg.point_stride)
        fields = [
            SimpleNamespace(
                name=f.name,
                offset=int(f.offset),
                datatype=_NUMERIC_TO_POINT_FIELD.get(int(f.type), 0),
                count=1,
            )
            for f in msg.fields
        ]
        return SimpleNamespace(
            header=_header(msg),
            height=1,
            width=len(data) // stride if stride else 0,
            fields=fields,
            is_bigendian=False,
            point_step=stride,
            row_step=len(data),
            data=data,
            is_dense=True,
        )
    return None


class ProtobufMcap:
    """An open protobuf MCAP file: ``topics`` (topic -> schema name) and :meth:`messages`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._reader = make_reader(self._file, decoder_factories=[DecoderFactory()])
        summary = self._reader.get_summary()
        if summary is None:
            raise ValueError("the file has no summary section (an unfinished recording?)")
        self.topics = {c.topic: summary.schemas[c.schema_id].name for c in summary.channels.values()}

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[tuple[str, int, Any]]:
        """(topic, log time ns, ROS-shaped message) in log-time order."""
        wanted = None if topics is None else list(topics)
        for schema, channel, message, decoded in self._reader.iter_decoded_messages(
            topics=wanted, log_time_order=True
        ):
            msg = as_ros(schema.name, decoded)
            if msg is not None:
                yield channel.topic, int(message.log_time), msg

    def close(self) -> None:
        self._file.close()
