"""sensor_msgs/Image and CompressedImage <-> RGB uint8 (H, W, 3) arrays."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

# Raw encodings we decode: channels and the OpenCV conversion to RGB (None: already RGB).
RAW_ENCODINGS: dict[str, tuple[int, int | None]] = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
    "8uc1": (1, cv2.COLOR_GRAY2RGB),
    "8uc3": (3, cv2.COLOR_BGR2RGB),  # OpenCV's default channel order
}
# image_transport's compressed plugin writes "<input encoding>; jpeg compressed <encoding>".
COMPRESSED_FORMAT = "rgb8; jpeg compressed bgr8"


class ImageDecodeError(ValueError):
    """An image message that cannot be turned into an RGB array (unsupported encoding, corrupt data)."""


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


def decode_compressed(fmt: str, data: Any) -> np.ndarray:
    """RGB uint8 of a CompressedImage (jpeg or png; 8-bit grey, colour or colour+alpha)."""
    fmt_l = (fmt or "").lower()
    if "compresseddepth" in fmt_l:
        raise ImageDecodeError(
            f"unsupported CompressedImage format {fmt!r} (depth images are not camera images)"
        )
    buf = _as_bytes(data)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if img is None:
        raise ImageDecodeError(f"cannot decode CompressedImage with format {fmt!r} ({buf.size} bytes)")
    if img.dtype != np.uint8:
        raise ImageDecodeError(f"CompressedImage with format {fmt!r} decodes to {img.dtype}, expected 8-bit")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)  # OpenCV decodes colour to BGR


def decode_raw(encoding: str, height: int, width: int, step: int, data: Any) -> np.ndarray:
    """RGB uint8 of a sensor_msgs/Image with one of :data:`RAW_ENCODINGS` (row padding allowed)."""
    enc = (encoding or "").lower()
    if enc not in RAW_ENCODINGS:
        raise ImageDecodeError(
            f"unsupported Image encoding {encoding!r}; supported: {', '.join(sorted(RAW_ENCODINGS))}"
        )
    channels, conversion = RAW_ENCODINGS[enc]
    row = width * channels
    step = step or row
    buf = _as_bytes(data)
    if step < row or buf.size < step * (height - 1) + row:
        raise ImageDecodeError(
            f"Image {width}x{height} {encoding} needs step >= {row} and {step * max(height - 1, 0) + row} "
            f"bytes, has step {step} and {buf.size} bytes"
        )
    rows = np.lib.stride_tricks.as_strided(buf, (height, row), (step, 1))
    img = np.ascontiguousarray(rows).reshape(height, width, channels)
    if conversion is None:
        return img
    return cv2.cvtColor(img if channels > 1 else img[:, :, 0], conversion)


def image_to_rgb(msg: Any) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a CompressedImage (has ``.format``) or Image (has ``.encoding``) message."""
    if hasattr(msg, "format"):
        return decode_compressed(msg.format, msg.data)
    return decode_raw(msg.encoding, int(msg.height), int(msg.width), int(msg.step), msg.data)
