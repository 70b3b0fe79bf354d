"""Read sensor bags (rosbag2 mcap or sqlite3) with the rosbags library, with clear errors.

Every failure of the bag itself (missing path, not a bag, truncated or corrupt data file, missing
topics) is raised as :class:`BagError` naming the file and the problem, never as a library traceback.
Topic names are matched case-insensitively (``/cam_front/...`` and ``/CAM_FRONT/...``); camera topics are
discovered from the bag (image topics with a camera_info beside them) or given explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from rosbags.highlevel import AnyReader

from simdistill_ros.errors import UserError
from simdistill_ros.frames import messages as m
from simdistill_ros.frames.images import CorruptImageError, ImageDecodeError, image_to_rgb
from simdistill_ros.frames.pointcloud import pointcloud2_to_array
from simdistill_ros.frames.tf_tree import TransformTree
from simdistill_ros.frames.topics import TopicNames
from simdistill_ros.geometry import CalibrationError, PinholeCamera, Transform, intrinsics_problem


class BagError(UserError):
    """A bag that cannot be read as asked: the message names the bag (or its file) and the problem."""


class IntrinsicsError(BagError):
    """A CameraInfo whose K cannot describe the camera (uncalibrated, NaN, outside a physical range)."""


@dataclass(frozen=True)
class CameraTopics:
    """The topics of one camera in a bag."""

    name: str
    image_topic: str
    info_topic: str
    compressed: bool


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
        try:
            self._reader = AnyReader([root], default_typestore=typestore or m.typestore())
            self._reader.open()
        except BagError:
            raise
        except Exception as err:  # rosbags, yaml, sqlite and mcap errors all mean the same to the user
            raise BagError(
                f"{self._where()}: cannot open bag ({_describe(err)}); is it truncated or corrupt?"
            ) from None
        self.topics: dict[str, str] = {}
        for c in self._reader.connections:
            self.topics.setdefault(c.topic, m.normalize_msgtype(c.msgtype))

    def _where(self) -> str:
        names = ", ".join(p.name for p in self._data_files)
        return f"{self.path} ({names})" if names else str(self.path)

    # lifecycle -----------------------------------------------------------------------------------------
    def close(self) -> None:
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

    def camera_topics(
        self, topics: TopicNames | None = None, cameras: Sequence[str] | None = None
    ) -> list[CameraTopics]:
        """The image and camera_info topics of ``cameras`` (None: all cameras found in the bag).

        Discovery: every CompressedImage/Image topic that matches an image template of ``topics`` and has
        a camera_info topic for the same camera; order is the bag's topic order (our writer's camera order).
        When a camera has both a compressed and a raw topic, ``topics.compressed`` picks.
        """
        topics = topics or TopicNames()
        if cameras is not None:
            return [self._explicit_camera(topics, c) for c in cameras]
        found: dict[str, CameraTopics] = {}
        names: dict[str, str] = {}  # lowercase -> the name as first seen
        templates = [(topics.image_compressed_template, True), (topics.image_raw_template, False)]
        for topic, msgtype in self.topics.items():
            if msgtype not in m.IMAGE_TYPES:
                continue
            for template, compressed in templates:
                camera = _match_template(template, topic)
                if camera is None or (msgtype == m.COMPRESSED_IMAGE) != compressed:
                    continue
                info = self.find_topic(topics.camera_info(camera))
                if info is None or self.topics[info] != m.CAMERA_INFO:
                    continue
                key = camera.lower()
                cam = CameraTopics(names.setdefault(key, _canonical(camera)), topic, info, compressed)
                old = found.get(key)
                if old is None or (old.compressed != topics.compressed and compressed == topics.compressed):
                    found[key] = cam
        if not found:
            raise BagError(
                f"{self.path}: no camera topics found (looked for {topics.image_compressed_template!r} or "
                f"{topics.image_raw_template!r} with {topics.camera_info_template!r}); the bag has: "
                f"{self.topic_list()}"
            )
        return list(found.values())

    def _explicit_camera(self, topics: TopicNames, camera: str) -> CameraTopics:
        candidates = [
            (topics.image(camera), topics.compressed),
            (topics.with_compressed(not topics.compressed).image(camera), not topics.compressed),
        ]
        for name, compressed in candidates:
            topic = self.find_topic(name)
            if topic is not None and self.topics[topic] == (m.COMPRESSED_IMAGE if compressed else m.IMAGE):
                info = self.require_topic(
                    topics.camera_info(camera), f"camera_info topic for camera {camera!r}"
                )
                return CameraTopics(camera, topic, info, compressed)
        raise BagError(
            f"{self.path}: has no image topic for camera {camera!r} (looked for "
            f"{', '.join(repr(n) for n, _ in candidates)}); the bag has: {self.topic_list()}"
        )

    # messages ------------------------------------------------------------------------------------------
    def messages(self, topics: Iterable[str] | None = None) -> Iterator[tuple[str, int, Any]]:
        """(topic, bag time ns, deserialised message) in bag-time order, streamed."""
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


_SEGMENT = re.compile(r"[^/]+")


def _match_template(template: str, topic: str) -> str | None:
    """The ``{camera}`` part of ``topic`` if it matches ``template`` (case-insensitively), else None."""
    head, _, tail = template.partition("{camera}")
    pattern = re.escape(head) + "(?P<camera>[^/]+)" + re.escape(tail)
    match = re.fullmatch(pattern, topic, flags=re.IGNORECASE)
    return match.group("camera") if match else None


def _canonical(camera: str) -> str:
    """Camera names are nuScenes channels (``CAM_FRONT``) whatever case the topics use."""
    return camera.upper()


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


def intrinsics_from_info(info: Any, topic: str = "") -> np.ndarray:
    """K (3, 3) of a CameraInfo (its range is checked by :func:`camera_from_info`). ``R`` (the
    rectification rotation) is deliberately ignored: converters
    fill it inconsistently, and rectified images are what the K/P describe."""
    k = np.asarray(info.k, dtype=np.float64).reshape(-1)
    if k.size != 9:
        raise BagError(f"{topic or 'camera_info'}: K has {k.size} values, expected 9")
    return k.reshape(3, 3)


def camera_from_info(
    name: str,
    info: Any,
    cam_to_base: Transform,
    image_shape: tuple[int, ...] | None = None,
    topic: str = "",
    frame_id: str | None = None,
) -> PinholeCamera:
    """PinholeCamera of a CameraInfo (size from the image when given: it is what the pixels are).
    :class:`IntrinsicsError` when K is outside a physical range for that size."""
    k = intrinsics_from_info(info, topic)
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
