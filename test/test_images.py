"""The one image decoder: every raw encoding with row padding, wrong layouts refused, corrupt jpegs caught."""

from __future__ import annotations

import numpy as np
import pytest

from simdistill_ros.frames.images import (
    CorruptImageError,
    ImageDecodeError,
    decode_compressed,
    decode_raw,
    encode_jpeg,
)

H, W, PAD = 6, 8, 5  # small images; every row carries PAD bytes of padding
RGB = np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)


def pack(rows: np.ndarray, pad: int = PAD) -> tuple[int, bytes]:
    """(step, data) of (H, row bytes) rows with ``pad`` garbage bytes after each row."""
    rows = rows.reshape(rows.shape[0], -1)
    padded = np.concatenate([rows, np.full((rows.shape[0], pad), 0xAB, np.uint8)], axis=1)
    return padded.shape[1], padded.tobytes()


def as_bytes16(values: np.ndarray, big: bool) -> np.ndarray:
    return values.astype(">u2" if big else "<u2").view(np.uint8).reshape(values.shape[0], -1)


@pytest.mark.parametrize(
    ("encoding", "pixels"),
    [
        ("rgb8", RGB),
        ("bgr8", RGB[..., ::-1]),
        ("rgba8", np.dstack([RGB, np.full((H, W), 7, np.uint8)])),
        ("bgra8", np.dstack([RGB[..., ::-1], np.full((H, W), 7, np.uint8)])),
        ("8UC3", RGB[..., ::-1]),
    ],
)
def test_eight_bit_colour_encodings_with_row_padding(encoding, pixels):
    step, data = pack(np.ascontiguousarray(pixels))
    np.testing.assert_array_equal(decode_raw(encoding, H, W, step, data), RGB)


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_is_grey_rgb(encoding):
    step, data = pack(RGB[..., 0].copy())
    np.testing.assert_array_equal(decode_raw(encoding, H, W, step, data), np.repeat(RGB[..., :1], 3, axis=2))


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("encoding", ["mono16", "16UC1", "rgb16", "bgr16", "rgba16", "bgra16"])
def test_sixteen_bit_encodings_keep_the_top_byte_in_either_byte_order(encoding, big):
    low = np.uint16(0x5A)  # the low byte must not leak into the result
    if encoding in ("mono16", "16UC1"):
        values, want = RGB[..., 0].astype(np.uint16) << 8 | low, np.repeat(RGB[..., :1], 3, axis=2)
    else:
        rgb16 = RGB.astype(np.uint16) << 8 | low
        order = rgb16[..., ::-1] if encoding.startswith("bgr") else rgb16
        values = np.dstack([order, np.full((H, W), 0xFFFF, np.uint16)]) if "a" in encoding[3:] else order
        want = RGB
    step, data = pack(as_bytes16(np.ascontiguousarray(values).reshape(H, -1), big))
    np.testing.assert_array_equal(decode_raw(encoding, H, W, step, data, is_bigendian=big), want)


LUMA = np.tile(np.array([40, 210], np.uint8), (H, W // 2))  # dark/bright alternating pixels


@pytest.mark.parametrize(
    ("encoding", "luma_first"),
    [("yuv422", False), ("uyvy", False), ("yuv422_yuy2", True), ("yuyv", True)],
)
def test_packed_yuv422_pixel_order(encoding, luma_first):
    chroma = np.full((H, W), 128, np.uint8)  # U = V = 128: grey
    pairs = np.stack([LUMA, chroma], axis=2) if luma_first else np.stack([chroma, LUMA], axis=2)
    step, data = pack(np.ascontiguousarray(pairs))
    out = decode_raw(encoding, H, W, step, data).astype(int)
    assert np.abs(out - out[..., :1]).max() <= 2  # grey
    assert (out[:, 0::2, 0] < 60).all() and (out[:, 1::2, 0] > 190).all()  # Y of each pixel in its place


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_patterns_demosaic_a_flat_colour(pattern, depth):
    colour = {"r": 200, "g": 100, "b": 30}
    h, w = 8, 10
    mosaic = np.empty((h, w), np.uint16)
    for dy in range(2):
        for dx in range(2):
            mosaic[dy::2, dx::2] = colour[pattern[2 * dy + dx]]
    if depth == 16:
        mosaic = mosaic << 8
        step, data = pack(as_bytes16(mosaic, False))
    else:
        step, data = pack(mosaic.astype(np.uint8))
    out = decode_raw(f"bayer_{pattern}{depth}", h, w, step, data)
    inner = out[2:-2, 2:-2].reshape(-1, 3).astype(int)
    assert np.abs(inner - [200, 100, 30]).max() <= 2, (pattern, inner[:3])


def test_unpadded_and_last_row_unpadded_data_are_accepted():
    flat = RGB.reshape(H, -1)
    np.testing.assert_array_equal(decode_raw("rgb8", H, W, W * 3, flat.tobytes()), RGB)
    step, data = pack(flat)
    np.testing.assert_array_equal(decode_raw("rgb8", H, W, step, data[:-PAD]), RGB)


@pytest.mark.parametrize(
    ("step", "size", "why"),
    [
        (W * 3 - 1, (W * 3 - 1) * H, "step shorter than a row"),
        (W * 3 + 4, (W * 3 + 8) * H, "data padded more than step says"),
        (W * 3 + 8, (W * 3 + 4) * H, "data shorter than step x height"),
        (0, W * 3 * H, "zero step"),
    ],
)
def test_a_wrong_step_is_refused(step, size, why):
    with pytest.raises(ImageDecodeError, match=r"has step .* needs step >= 24 .*step, size or encoding"):
        decode_raw("rgb8", H, W, step, bytes(size))


def test_unsupported_encoding_names_itself_and_what_is_supported():
    want = r"unsupported Image encoding '32FC1' .*supported: .*bayer_rggb8.*mono16"
    with pytest.raises(ImageDecodeError, match=want):
        decode_raw("32FC1", H, W, W * 4, bytes(W * 4 * H))


def test_odd_width_yuv_is_refused():
    with pytest.raises(ImageDecodeError, match="even width"):
        decode_raw("yuv422", 2, 3, 6, bytes(12))


# compressed ------------------------------------------------------------------------------------------------
def textured(h: int = 64, w: int = 96) -> np.ndarray:
    rng = np.random.default_rng(5)
    base = np.linspace(0, 200, w)[None, :, None] + rng.integers(0, 50, (h, w, 3))
    return base.astype(np.uint8)


def test_a_good_jpeg_decodes_like_opencv_in_rgb_order():
    import cv2

    rgb = textured()
    jpeg = encode_jpeg(rgb, quality=95)
    out = decode_compressed("jpeg", jpeg)
    want = cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert out.shape == rgb.shape and np.abs(out.astype(int) - want).mean() < 1.0


def test_a_grey_jpeg_decodes_to_grey_rgb():
    import cv2

    grey = textured()[..., 0]
    ok, buf = cv2.imencode(".jpg", grey)
    out = decode_compressed("jpeg", buf)
    assert out.shape == (*grey.shape, 3) and (out[..., 0] == out[..., 2]).all()


def entropy_start(jpeg: bytes) -> int:
    sos = jpeg.find(b"\xff\xda")
    return sos + 2 + int.from_bytes(jpeg[sos + 2 : sos + 4], "big")


def test_a_truncated_jpeg_is_corrupt():
    jpeg = encode_jpeg(textured()).tobytes()
    cut = jpeg[: (entropy_start(jpeg) + len(jpeg)) // 2] + b"\xff\xd9"
    with pytest.raises(CorruptImageError, match="corrupt jpeg.*(premature|Corrupt)"):
        decode_compressed("jpeg", cut)


def test_bit_flipped_jpegs_are_caught_where_libjpeg_notices():
    """Bit flips in the entropy-coded data: libjpeg flags many ("Corrupt JPEG data: N extraneous bytes"),
    and every flagged one must be an error, never a silently damaged picture. Flips libjpeg cannot see
    (the Huffman code resynchronises) decode like any jpeg: no decoder can tell them apart."""
    jpeg = encode_jpeg(textured(), quality=90).tobytes()
    start = entropy_start(jpeg)
    rng = np.random.default_rng(0)
    flagged = 0
    for _ in range(40):
        damaged = bytearray(jpeg)
        for pos in rng.integers(start, len(jpeg) - 2, 4):
            damaged[pos] ^= 1 << int(rng.integers(8))
        try:
            decode_compressed("jpeg", bytes(damaged))
        except CorruptImageError:
            flagged += 1
    assert flagged >= 5


def test_damaged_huffman_table_is_corrupt():
    jpeg = bytearray(encode_jpeg(textured()).tobytes())
    dht = jpeg.find(b"\xff\xc4")
    jpeg[dht + 5 : dht + 21] = b"\xff" * 16  # code counts that no Huffman tree can hold
    with pytest.raises(ImageDecodeError):
        decode_compressed("jpeg", bytes(jpeg))


def test_garbage_is_not_an_image():
    with pytest.raises(ImageDecodeError, match="neither jpeg nor png"):
        decode_compressed("png", b"not an image at all")
