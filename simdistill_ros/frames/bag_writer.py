"""Write sensor streams into a rosbag2 (mcap or sqlite3) with the rosbags library.

The bag is written into ``<path>.partial/`` and moved to ``path`` only when the writer closes cleanly;
an exception inside the ``with`` block removes the partial directory, so a bag at ``path`` is always
complete. Every message's bag (log) time is its header stamp.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer

from simdistill_ros.frames import messages as m
from simdistill_ros.frames.images import COMPRESSED_FORMAT, encode_jpeg
from simdistill_ros.frames.pointcloud import points_to_pointcloud2_fields
from simdistill_ros.frames.topics import TopicNames
from simdistill_ros.geometry import PinholeCamera, Transform

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
# rosbag2 metadata version: 8 is what Jazzy writes (9 is Kilted's); newer readers read both.
DEFAULT_BAG_VERSION = 8
_INFINITE = QosTime(sec=2147483647, nsec=4294967295)  # rmw's "infinite" duration as rosbag2 records it
# What `ros2 bag record` stores for a /tf_static publisher: late joiners must still get the transforms.
TF_STATIC_QOS = Qos(
    history=QosHistory.KEEP_LAST,
    depth=1,
    reliability=QosReliability.RELIABLE,
    durability=QosDurability.TRANSIENT_LOCAL,
    deadline=_INFINITE,
    lifespan=_INFINITE,
    liveliness=QosLiveliness.AUTOMATIC,
    liveliness_lease_duration=_INFINITE,
    avoid_ros_namespace_conventions=False,
)


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


class SensorBagWriter:
    """Context manager writing camera images, camera infos, LiDAR sweeps and tf into one rosbag2.

    ``storage`` is ``'mcap'`` or ``'sqlite3'``; ``compressed_images`` writes jpeg CompressedImage (else
    rgb8 Image). An existing bag at ``path`` is refused unless ``overwrite=True``.
    """

    def __init__(
        self,
        path: str | Path,
        storage: str = "mcap",
        topics: TopicNames | None = None,
        compressed_images: bool = True,
        overwrite: bool = False,
        jpeg_quality: int = 90,
        version: int = DEFAULT_BAG_VERSION,
    ) -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
        self.path = Path(path)
        self.storage = storage
        self.compressed_images = bool(compressed_images)
        self.topics = (topics or TopicNames()).with_compressed(self.compressed_images)
        self.overwrite = overwrite
        self.jpeg_quality = int(jpeg_quality)
        self.version = version
        self.store = m.typestore()
        self.counts: dict[str, int] = {}
        self._writer: Writer | None = None
        self._connections: dict[str, Any] = {}
        self._partial = partial_path(self.path)

    # lifecycle -----------------------------------------------------------------------------------------
    def open(self) -> SensorBagWriter:
        if self._writer is not None:
            raise RuntimeError(f"bag writer for {self.path} is already open")
        if self.path.exists() and not self.overwrite:
            raise FileExistsError(f"{self.path} already exists; pass overwrite=True to replace it")
        if self._partial.exists():  # left over by a killed process: it is ours and incomplete
            shutil.rmtree(self._partial)
        self._partial.mkdir(parents=True)
        try:
            # The bag directory inside keeps the final name, so its data file is <name>/<name>.mcap.
            self._writer = Writer(
                self._partial / self.path.name, version=self.version, storage_plugin=STORAGES[self.storage]
            )
            self._writer.open()
        except BaseException:
            self.abort()
            raise
        return self

    def close(self) -> None:
        """Finish the bag and move it into place."""
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        try:
            writer.close()
            if self.path.exists():  # overwrite=True was checked at open
                old = self.path.with_name(self.path.name + ".old")
                shutil.rmtree(old, ignore_errors=True)
                self.path.rename(old)
                (self._partial / self.path.name).rename(self.path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                (self._partial / self.path.name).rename(self.path)
            self._partial.rmdir()
        except BaseException:
            shutil.rmtree(self._partial, ignore_errors=True)
            raise

    def abort(self) -> None:
        """Discard everything written (the partial directory is removed, ``path`` is untouched)."""
        writer, self._writer = self._writer, None
        if writer is not None and writer.storage is not None:
            try:
                writer.storage.abort()  # closes the data file without finishing it
            except Exception:  # noqa: S110 - the directory is removed next anyway
                pass
        shutil.rmtree(self._partial, ignore_errors=True)

    def __enter__(self) -> SensorBagWriter:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # generic -------------------------------------------------------------------------------------------
    def _connection(self, topic: str, msgtype: str, qos: tuple[Qos, ...] = ()) -> Any:
        conn = self._connections.get(topic)
        if conn is None:
            if self._writer is None:
                raise RuntimeError(f"bag writer for {self.path} is not open (use it as a context manager)")
            conn = self._writer.add_connection(topic, msgtype, typestore=self.store, offered_qos_profiles=qos)
            self._connections[topic] = conn
        elif conn.msgtype != msgtype:
            raise ValueError(f"topic {topic!r} already carries {conn.msgtype}, cannot write {msgtype}")
        return conn

    def write(self, topic: str, msgtype: str, msg: Any, stamp_ns: int, qos: tuple[Qos, ...] = ()) -> None:
        """Serialise ``msg`` (a typestore message of ``msgtype``) onto ``topic`` at bag time ``stamp_ns``."""
        msgtype = m.normalize_msgtype(msgtype)
        conn = self._connection(topic, msgtype, qos)
        self._writer.write(conn, int(stamp_ns), self.store.serialize_cdr(msg, msgtype))
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def write_serialized(self, topic: str, msgtype: str, data: bytes, stamp_ns: int) -> None:
        """Already CDR-serialised bytes (e.g. ``rclpy.serialization.serialize_message``) of ``msgtype``."""
        msgtype = m.normalize_msgtype(msgtype)
        conn = self._connection(topic, msgtype)
        self._writer.write(conn, int(stamp_ns), bytes(data))
        self.counts[topic] = self.counts.get(topic, 0) + 1

    # sensors -------------------------------------------------------------------------------------------
    def write_image(self, camera: str, stamp_ns: int, rgb: np.ndarray, frame_id: str | None = None) -> None:
        """One RGB uint8 (H, W, 3) image of ``camera`` (jpeg CompressedImage or rgb8 Image)."""
        header = m.header_msg(stamp_ns, frame_id or camera, self.store)
        topic = self.topics.image(camera)
        if self.compressed_images:
            data = encode_jpeg(rgb, self.jpeg_quality)
            msg = self.store.types[m.COMPRESSED_IMAGE](header=header, format=COMPRESSED_FORMAT, data=data)
            self.write(topic, m.COMPRESSED_IMAGE, msg, stamp_ns)
            return
        rgb = np.ascontiguousarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"images must be RGB uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        msg = self.store.types[m.IMAGE](
            header=header,
            height=h,
            width=w,
            encoding="rgb8",
            is_bigendian=0,
            step=3 * w,
            data=rgb.reshape(-1),
        )
        self.write(topic, m.IMAGE, msg, stamp_ns)

    def write_jpeg(self, camera: str, stamp_ns: int, data: bytes, frame_id: str | None = None) -> None:
        """Jpeg bytes of ``camera`` as they are (a dataset's file): a CompressedImage, not re-encoded."""
        if not self.compressed_images:
            raise ValueError("write_jpeg needs compressed_images=True")
        header = m.header_msg(stamp_ns, frame_id or camera, self.store)
        msg = self.store.types[m.COMPRESSED_IMAGE](
            header=header, format=COMPRESSED_FORMAT, data=np.frombuffer(data, np.uint8)
        )
        self.write(self.topics.image(camera), m.COMPRESSED_IMAGE, msg, stamp_ns)

    def write_camera_info(self, camera: PinholeCamera, stamp_ns: int) -> None:
        """CameraInfo of an undistorted camera: K, P = [K | 0], R = identity, no distortion (plumb_bob)."""
        k = np.asarray(camera.intrinsics, dtype=np.float64)
        p = np.zeros((3, 4))
        p[:, :3] = k
        T = self.store.types
        msg = T[m.CAMERA_INFO](
            header=m.header_msg(stamp_ns, camera.frame_id, self.store),
            height=int(camera.height),
            width=int(camera.width),
            distortion_model="plumb_bob",
            d=np.zeros(0, np.float64),
            k=k.reshape(9).copy(),
            r=np.eye(3).reshape(9),
            p=p.reshape(12),
            binning_x=0,
            binning_y=0,
            roi=T["sensor_msgs/msg/RegionOfInterest"](
                x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
            ),
        )
        self.write(self.topics.camera_info(camera.name), m.CAMERA_INFO, msg, stamp_ns)

    def write_points(self, stamp_ns: int, points: np.ndarray, frame_id: str = "LIDAR_TOP") -> None:
        """One LiDAR sweep (N, 4) [x, y, z, intensity] in ``frame_id`` as PointCloud2."""
        cloud = points_to_pointcloud2_fields(points)
        T = self.store.types
        fields = [
            T[m.POINT_FIELD](name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
            for f in cloud.fields
        ]
        msg = T[m.POINT_CLOUD2](
            header=m.header_msg(stamp_ns, frame_id, self.store),
            height=cloud.height,
            width=cloud.width,
            fields=fields,
            is_bigendian=cloud.is_bigendian,
            point_step=cloud.point_step,
            row_step=cloud.row_step,
            data=cloud.data,
            is_dense=cloud.is_dense,
        )
        self.write(self.topics.lidar, m.POINT_CLOUD2, msg, stamp_ns)

    def _tf_message(self, transforms: Iterable[tuple[str, str, Transform]], stamp_ns: int) -> Any:
        T = self.store.types
        stamped = [
            T["geometry_msgs/msg/TransformStamped"](
                header=m.header_msg(stamp_ns, parent, self.store),
                child_frame_id=child,
                transform=m.transform_msg(t, self.store),
            )
            for parent, child, t in transforms
        ]
        return T[m.TF_MESSAGE](transforms=stamped)

    def write_tf(self, stamp_ns: int, parent: str, child: str, transform: Transform) -> None:
        """A dynamic transform on /tf: ``transform`` maps ``child`` into ``parent`` at ``stamp_ns``."""
        self.write(
            self.topics.tf, m.TF_MESSAGE, self._tf_message([(parent, child, transform)], stamp_ns), stamp_ns
        )

    def write_tf_static(self, transforms: Iterable[tuple[str, str, Transform]], stamp_ns: int) -> None:
        """Static transforms (parent, child, child-to-parent) in one message on /tf_static, recorded with
        transient-local durability like a real ``ros2 bag record`` of a static broadcaster."""
        msg = self._tf_message(list(transforms), stamp_ns)
        self.write(self.topics.tf_static, m.TF_MESSAGE, msg, stamp_ns, qos=(TF_STATIC_QOS,))
