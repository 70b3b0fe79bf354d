"""Topic names of the sensor bags (nuscenes2bag layout by default, every name configurable)."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class TopicNames:
    """Where each sensor stream lives. ``{camera}`` in a template is replaced by the camera's name.

    ``compressed`` selects which image template :meth:`image` uses (the writer writes that one; the reader
    accepts either, preferring this one when a bag has both).
    """

    image_compressed_template: str = "/{camera}/image_rect_compressed"
    image_raw_template: str = "/{camera}/image_rect"
    camera_info_template: str = "/{camera}/camera_info"
    lidar: str = "/LIDAR_TOP"
    tf: str = "/tf"
    tf_static: str = "/tf_static"
    compressed: bool = True

    def __post_init__(self) -> None:
        for name in ("image_compressed_template", "image_raw_template", "camera_info_template"):
            if "{camera}" not in getattr(self, name):
                raise ValueError(f"TopicNames.{name} must contain '{{camera}}', got {getattr(self, name)!r}")

    @classmethod
    def raw(cls, **kwargs) -> TopicNames:
        """Names for bags with uncompressed sensor_msgs/Image topics."""
        return cls(compressed=False, **kwargs)

    @property
    def image_template(self) -> str:
        return self.image_compressed_template if self.compressed else self.image_raw_template

    def image(self, camera: str) -> str:
        return self.image_template.format(camera=camera)

    def camera_info(self, camera: str) -> str:
        return self.camera_info_template.format(camera=camera)

    def with_compressed(self, compressed: bool) -> TopicNames:
        return replace(self, compressed=compressed)
