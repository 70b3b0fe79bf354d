"""sensor_msgs/Image and CompressedImage <-> RGB uint8 (H, W, 3) arrays: the one image decoder.

Raw images honour ``step`` (row padding) and ``is_bigendian``; a ``step`` or data size that does not fit
the encoding and size is refused, never guessed around. 16-bit images keep their top 8 bits. Jpeg data is
decoded with libjpeg-turbo in strict mode (simplejpeg): libjpeg's "Corrupt JPEG data" warnings, which
OpenCV and Pillow only print to stderr and then return a damaged picture, become a
:class:`CorruptImageError` for that image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import simplejpeg


@dataclass(frozen=True)
class RawEncoding:
    """How one sensor_msgs/Image encoding is laid out: bytes per pixel, channels, and the conversion."""

    channels: int  # values per pixel (2 for packed YUV 4:2:2: one luma + one shared chroma byte)
    depth: int  # bytes per value: 1 or 2
    conversion: int | None  # OpenCV code to RGB, None: already RGB


# ROS names (sensor_msgs/image_encodings.hpp), lower-cased. OpenCV names Bayer patterns by the second row's
# first two pixels, so ROS's RGGB is OpenCV's BG (as in cv_bridge).
RAW_ENCODINGS: dict[str, RawEncoding] = {
    "rgb8": RawEncoding(3, 1, None),
    "bgr8": RawEncoding(3, 1, cv2.COLOR_BGR2RGB),
    "rgba8": RawEncoding(4, 1, cv2.COLOR_RGBA2RGB),
    "bgra8": RawEncoding(4, 1, cv2.COLOR_BGRA2RGB),
    "mono8": RawEncoding(1, 1, cv2.COLOR_GRAY2RGB),
    "8uc1": RawEncoding(1, 1, cv2.COLOR_GRAY2RGB),
    "8uc3": RawEncoding(3, 1, cv2.COLOR_BGR2RGB),  # OpenCV's default channel order
    "8uc4": RawEncoding(4, 1, cv2.COLOR_BGRA2RGB),
    "rgb16": RawEncoding(3, 2, None),
    "bgr16": RawEncoding(3, 2, cv2.COLOR_BGR2RGB),
    "rgba16": RawEncoding(4, 2, cv2.COLOR_RGBA2RGB),
    "bgra16": RawEncoding(4, 2, cv2.COLOR_BGRA2RGB),
    "mono16": RawEncoding(1, 2, cv2.COLOR_GRAY2RGB),
    "16uc1": RawEncoding(1, 2, cv2.COLOR_GRAY2RGB),
    "yuv422": RawEncoding(2, 1, cv2.COLOR_YUV2RGB_UYVY),  # ROS's yuv422 is UYVY
    "uyvy": RawEncoding(2, 1, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": RawEncoding(2, 1, cv2.COLOR_YUV2RGB_YUY2),
    "yuyv": RawEncoding(2, 1, cv2.COLOR_YUV2RGB_YUY2),
    "bayer_rggb8": RawEncoding(1, 1, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr8": RawEncoding(1, 1, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg8": RawEncoding(1, 1, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg8": RawEncoding(1, 1, cv2.COLOR_BayerGB2RGB),
    "bayer_rggb16": RawEncoding(1, 2, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr16": RawEncoding(1, 2, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg16": RawEncoding(1, 2, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg16": RawEncoding(1, 2, cv2.COLOR_BayerGB2RGB),
}
_PACKED_YUV = {"yuv422", "uyvy", "yuv422_yuy2", "yuyv"}
# image_transport's compressed plugin writes "<input encoding>; jpeg compressed <encoding>".
COMPRESSED_FORMAT = "rgb8; jpeg compressed bgr8"


class ImageDecodeError(ValueError):
    """An image message that cannot be turned into an RGB array (unsupported encoding, corrupt data)."""


class CorruptImageError(ImageDecodeError):
    """Compressed data the decoder flags as damaged (libjpeg's "Corrupt JPEG data"): skip this image."""


def supported_encodings() -> str:
    """The raw encodings :func:`decode_raw` accepts, for error messages."""
    return ", ".join(sorted(RAW_ENCODINGS))


def _as_bytes(data: Any) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(memoryview(data), dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8)


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"images must be RGB uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    return rgb


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> np.ndarray:
    """JPEG bytes (uint8 array) of an RGB image."""
    bgr = cv2.cvtColor(_check_rgb(rgb), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("OpenCV failed to encode a jpeg")
    return buf.reshape(-1)


def _decode_jpeg(fmt: str, buf: np.ndarray) -> np.ndarray:
    try:
        _, _, colorspace, _ = simplejpeg.decode_jpeg_header(buf)
        grey = str(colorspace).lower() == "gray"
        img = simplejpeg.decode_jpeg(buf, colorspace="GRAY" if grey else "RGB", strict=True)
    except ValueError as err:
        raise CorruptImageError(
            f"corrupt jpeg in CompressedImage with format {fmt!r} ({buf.size} bytes): {err}"
        ) from None
    if grey:
        return cv2.cvtColor(img.reshape(img.shape[0], img.shape[1]), cv2.COLOR_GRAY2RGB)
    return img


def decode_compressed(fmt: str, data: Any) -> np.ndarray:
    """RGB uint8 of a CompressedImage (jpeg or png; 8-bit grey, colour or colour+alpha).

    Raises :class:`CorruptImageError` for jpeg data libjpeg flags as corrupt, :class:`ImageDecodeError` for
    anything else that cannot be decoded."""
    fmt_l = (fmt or "").lower()
    if "compresseddepth" in fmt_l:
        raise ImageDecodeError(
            f"unsupported CompressedImage format {fmt!r} (depth images are not camera images)"
        )
    buf = _as_bytes(data)
    if buf.size >= 3 and buf[0] == 0xFF and buf[1] == 0xD8 and buf[2] == 0xFF:  # jpeg, whatever fmt says
        return _decode_jpeg(fmt, buf)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if img is None:
        raise ImageDecodeError(
            f"cannot decode CompressedImage with format {fmt!r} ({buf.size} bytes): neither jpeg nor png "
            "data, or truncated"
        )
    if img.dtype != np.uint8:
        raise ImageDecodeError(f"CompressedImage with format {fmt!r} decodes to {img.dtype}, expected 8-bit")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)  # OpenCV decodes colour to BGR


def decode_raw(
    encoding: str, height: int, width: int, step: int, data: Any, is_bigendian: int | bool = False
) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a sensor_msgs/Image with one of :data:`RAW_ENCODINGS`.

    ``step`` is the row length in bytes (>= width * bytes per pixel; more is row padding). The data must
    hold ``step * height`` bytes (the last row's padding may be missing); anything else means the message's
    step, size or encoding is wrong and is refused with :class:`ImageDecodeError`."""
    enc = (encoding or "").lower()
    if enc not in RAW_ENCODINGS:
        raise ImageDecodeError(
            f"unsupported Image encoding {encoding!r} (a camera image is needed; supported: "
            f"{supported_encodings()}; or publish a CompressedImage)"
        )
    spec = RAW_ENCODINGS[enc]
    height, width, step = int(height), int(width), int(step)
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"Image {encoding} has an empty size {width}x{height}")
    row = width * spec.channels * spec.depth
    buf = _as_bytes(data)
    full, short = step * height, step * (height - 1) + row
    if step < row or buf.size not in (full, short):
        raise ImageDecodeError(
            f"Image {width}x{height} {encoding} has step {step} and {buf.size} bytes: it needs step >= {row} "
            f"(width x {spec.channels * spec.depth} bytes) and step x height = {full} bytes (the step, size "
            "or encoding of the message is wrong)"
        )
    if enc in _PACKED_YUV and width % 2:
        raise ImageDecodeError(f"Image {encoding} needs an even width (two pixels share chroma), got {width}")
    if enc.startswith("bayer_") and (width < 2 or height < 2):
        raise ImageDecodeError(f"Image {encoding} needs at least 2x2 pixels, got {width}x{height}")
    rows = np.lib.stride_tricks.as_strided(buf, (height, row), (step, 1))
    img = np.ascontiguousarray(rows)
    if spec.depth == 2:
        img = img.view(">u2" if is_bigendian else "<u2")
        img = (img >> 8).astype(np.uint8)  # keep the top 8 bits: the full 16-bit range maps to 0..255
    img = img.reshape(height, width, spec.channels)
    if spec.conversion is None:
        return img
    return cv2.cvtColor(img if spec.channels > 1 else img[:, :, 0], spec.conversion)


def image_to_rgb(msg: Any) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a CompressedImage (has ``.format``) or Image (has ``.encoding``) message."""
    if hasattr(msg, "format"):
        return decode_compressed(msg.format, msg.data)
    return decode_raw(
        msg.encoding,
        int(msg.height),
        int(msg.width),
        int(msg.step),
        msg.data,
        bool(getattr(msg, "is_bigendian", 0)),
    )
