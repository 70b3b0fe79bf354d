"""Read sensor bags (rosbag2 mcap or sqlite3) with the rosbags library, with clear errors.

Every failure of the bag itself (missing path, not a bag, truncated or corrupt data file, missing
topics) is raised as :class:`BagError` naming the file and the problem, never as a library traceback.
Topic names are matched case-insensitively (``/cam_front/...`` and ``/CAM_FRONT/...``); camera topics come
from the bag's recognised layout or a :class:`~simdistill_ros.frames.sensors.SensorConfig`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from rosbags.highlevel import AnyReader

from simdistill_ros.errors import UserError
from simdistill_ros.frames import messages as m
from simdistill_ros.frames.foxglove import ProtobufMcap, mcap_profile
from simdistill_ros.frames.images import CorruptImageError, ImageDecodeError, image_to_rgb
from simdistill_ros.frames.layouts import BagSensors, CameraTopics, resolve_sensors
from simdistill_ros.frames.pointcloud import pointcloud2_to_array
from simdistill_ros.frames.sensors import SensorConfig, SensorConfigError
from simdistill_ros.frames.tf_tree import TransformTree
from simdistill_ros.geometry import CalibrationError, PinholeCamera, Transform, intrinsics_problem


class BagError(UserError):
    """A bag that cannot be read as asked: the message names the bag (or its file) and the problem."""


class IntrinsicsError(BagError):
    """A CameraInfo whose K cannot describe the camera (uncalibrated, NaN, outside a physical range)."""


def _bag_root(path: Path) -> Path:
    """The path rosbags should open: a rosbag2 directory, or a bare .mcap file."""
    if not path.exists():
        raise BagError(f"{path}: no such bag (the path does not exist)")
    if path.is_dir():
        if (path / "metadata.yaml").exists():
            return path
        mcaps = sorted(path.glob("*.mcap"))
        if len(mcaps) == 1:  # a recording whose metadata.yaml was lost: the mcap file is self-describing
            return mcaps[0]
        content = sorted(p.name for p in path.iterdir())[:10]
        raise BagError(f"{path}: not a rosbag2 directory (no metadata.yaml; it holds {content or 'nothing'})")
    if path.suffix == ".mcap":
        return path
    if path.suffix == ".db3" and (path.parent / "metadata.yaml").exists():
        return path.parent
    raise BagError(f"{path}: not a rosbag2 bag (expected a directory with metadata.yaml or an .mcap file)")


def _describe(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text if len(text) < 400 else text[:400] + "..."


class BagReader:
    """An open sensor bag. Use as a context manager (or call :meth:`close`)."""

    def __init__(self, path: str | Path, typestore: Any | None = None) -> None:
        self.path = Path(path)
        root = _bag_root(self.path)
        self._data_files = [
            p for p in (root.iterdir() if root.is_dir() else [root]) if p.name != "metadata.yaml"
        ]
        self._proto: ProtobufMcap | None = None
        self._reader = None
        if root.suffix == ".mcap" and mcap_profile(root) not in (None, "ros2"):
            try:  # Foxglove's nuscenes2mcap: protobuf messages, not ROS 2 CDR
                self._proto = ProtobufMcap(root)
            except Exception as err:
                raise BagError(f"{self._where()}: cannot open the protobuf MCAP ({_describe(err)})") from None
            self.topics: dict[str, str] = dict(self._proto.topics)
            return
        try:
            self._reader = AnyReader([root], default_typestore=typestore or m.typestore())
            self._reader.open()
        except BagError:
            raise
        except Exception as err:  # rosbags, yaml, sqlite and mcap errors all mean the same to the user
            raise BagError(
                f"{self._where()}: cannot open bag ({_describe(err)}); is it truncated or corrupt?"
            ) from None
        self.topics = {}
        for c in self._reader.connections:
            self.topics.setdefault(c.topic, m.normalize_msgtype(c.msgtype))

    def _where(self) -> str:
        names = ", ".join(p.name for p in self._data_files)
        return f"{self.path} ({names})" if names else str(self.path)

    # lifecycle -----------------------------------------------------------------------------------------
    def close(self) -> None:
        proto, self._proto = getattr(self, "_proto", None), None
        if proto is not None:
            proto.close()
        reader, self._reader = getattr(self, "_reader", None), None
        if reader is not None:
            try:
                reader.close()
            except Exception:  # noqa: S110 - closing a broken bag must not hide the first error
                pass

    def __enter__(self) -> BagReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # topics --------------------------------------------------------------------------------------------
    def topic_list(self) -> str:
        return ", ".join(f"{t} [{ty}]" for t, ty in sorted(self.topics.items())) or "no topics"

    def find_topic(self, name: str) -> str | None:
        """The bag's spelling of ``name``: exact match first, then case-insensitive (if unambiguous)."""
        if name in self.topics:
            return name
        matches = [t for t in self.topics if t.lower() == name.lower()]
        return matches[0] if len(matches) == 1 else None

    def require_topic(self, name: str, what: str = "topic") -> str:
        topic = self.find_topic(name)
        if topic is None:
            raise BagError(f"{self.path}: has no {what} {name!r}; the bag has: {self.topic_list()}")
        return topic

    def sensors(
        self, config: SensorConfig | None = None, model_cameras: Sequence[str] | None = None
    ) -> BagSensors:
        """The bag's cameras (in the configured or the model's order), LiDAR and tf topics; the layout is
        recognised from the topics and types (:mod:`simdistill_ros.frames.layouts`)."""
        try:
            return resolve_sensors(self.topics, config, model_cameras, where=str(self.path))
        except SensorConfigError as err:
            raise BagError(str(err)) from None

    def camera_topics(
        self, config: SensorConfig | None = None, cameras: Sequence[str] | None = None
    ) -> list[CameraTopics]:
        """The image and camera_info topics of ``cameras`` (None: every camera of the bag, nuScenes order)."""
        config = config or SensorConfig()
        if cameras is not None:
            config = replace(config, cameras=tuple(cameras))
        return self.sensors(config).cameras

    # messages ------------------------------------------------------------------------------------------
    def messages(self, topics: Iterable[str] | None = None) -> Iterator[tuple[str, int, Any]]:
        """(topic, bag time ns, deserialised message) in bag-time order, streamed."""
        if self._proto is not None:
            yield from self._proto_messages(topics)
            return
        if self._reader is None:
            raise BagError(f"{self.path}: bag is closed")
        wanted = None if topics is None else set(topics)
        conns = [c for c in self._reader.connections if wanted is None or c.topic in wanted]
        if not conns:
            return
        it = self._reader.messages(connections=conns)
        while True:
            try:
                conn, stamp, raw = next(it)
                msg = self._reader.deserialize(raw, conn.msgtype)
            except StopIteration:
                return
            except Exception as err:
                raise BagError(
                    f"{self._where()}: reading failed ({_describe(err)}); the bag is truncated or corrupt"
                ) from None
            yield conn.topic, int(stamp), msg

    def _proto_messages(self, topics: Iterable[str] | None) -> Iterator[tuple[str, int, Any]]:
        assert self._proto is not None
        it = self._proto.messages(topics)
        while True:
            try:
                item = next(it)
            except StopIteration:
                return
            except Exception as err:
                raise BagError(
                    f"{self._where()}: reading failed ({_describe(err)}); the file is truncated or corrupt"
                ) from None
            yield item


# message conversions ------------------------------------------------------------------------------------
def stamp_of(msg: Any) -> int:
    """Header stamp (ns) of a stamped message."""
    return m.stamp_to_ns(msg.header.stamp)


def decode_image(msg: Any, topic: str = "") -> np.ndarray:
    """RGB uint8 (H, W, 3) of an Image/CompressedImage; :class:`BagError` names topic and encoding.
    Damaged jpeg data stays a :class:`CorruptImageError` (naming the topic): one bad image skips a frame,
    not the bag."""
    try:
        return image_to_rgb(msg)
    except CorruptImageError as err:
        raise CorruptImageError(f"{topic or 'image'}: {err}") from None
    except ImageDecodeError as err:
        raise BagError(f"{topic or 'image'}: {err}") from None


def intrinsics_from_info(info: Any, topic: str = "", rectified: bool = True) -> np.ndarray:
    """The camera matrix (3, 3) of a CameraInfo's images (:func:`messages.image_intrinsics`: P for
    rectified images, K for raw ones; its range is checked by :func:`camera_from_info`). ``R`` (the
    rectification rotation) is deliberately ignored: converters fill it inconsistently, and the camera
    frame of rectified images is the one tf names."""
    try:
        return m.image_intrinsics(info, rectified)
    except ValueError as err:
        raise BagError(f"{topic or 'camera_info'}: {err}") from None


def camera_from_info(
    name: str,
    info: Any,
    cam_to_base: Transform,
    image_shape: tuple[int, ...] | None = None,
    topic: str = "",
    frame_id: str | None = None,
    rectified: bool = True,
) -> PinholeCamera:
    """PinholeCamera of a CameraInfo (size from the image when given: it is what the pixels are).
    :class:`IntrinsicsError` when its camera matrix (P for ``rectified`` images, else K) is outside a
    physical range for that size."""
    k = intrinsics_from_info(info, topic, rectified)
    width, height = int(info.width), int(info.height)
    if image_shape is not None:
        ih, iw = image_shape[:2]
        if (width, height) not in ((0, 0), (iw, ih)):
            raise BagError(
                f"{topic or 'camera_info'}: camera_info is {width}x{height} but the image is {iw}x{ih}"
            )
        width, height = iw, ih
    problem = intrinsics_problem(k, width, height)
    if problem is not None:
        raise IntrinsicsError(f"{topic or 'camera_info'}: unusable intrinsics {problem}")
    frame_id = frame_id or info.header.frame_id or name
    try:
        return PinholeCamera(name, width, height, k, cam_to_base, frame_id=frame_id)
    except CalibrationError as err:
        raise BagError(f"{topic or 'camera_info'}: {err}") from None


def add_tf_message(tree: TransformTree, msg: Any, static: bool) -> None:
    """Add every transform of a tf2_msgs/TFMessage to ``tree``."""
    for t in msg.transforms:
        transform = m.transform_from_msg(t.transform)
        if static:
            tree.add_static(t.header.frame_id, t.child_frame_id, transform)
        else:
            tree.add(t.header.frame_id, t.child_frame_id, transform, m.stamp_to_ns(t.header.stamp))


def points_from_msg(msg: Any, topic: str = "") -> np.ndarray:
    """(N, 4) float32 of a PointCloud2; layout problems become :class:`BagError` naming the topic."""
    try:
        return pointcloud2_to_array(msg)
    except ValueError as err:
        raise BagError(f"{topic or 'PointCloud2'}: {err}") from None
