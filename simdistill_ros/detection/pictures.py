"""Per-frame pictures: a bird's-eye view (detections, optional ground truth) beside the camera images with
the boxes projected into them. PIL only, no ROS."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from simdistill_ros.classes import CLASS_COLOR
from simdistill_ros.geometry import Box3D, PinholeCamera

_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)]
GT_COLOR = (255, 255, 255)


def _rgb255(label: str) -> tuple[int, int, int]:
    r, g, b = CLASS_COLOR[label]
    return int(r * 255), int(g * 255), int(b * 255)


def bev_picture(
    boxes: Sequence[Box3D], gt: Sequence[Box3D] = (), size_px: int = 480, range_m: float = 45.0
) -> Image.Image:
    """Top view of the base frame, x forward = up, y left = left; GT white, detections in class colours."""
    img = Image.new("RGB", (size_px, size_px), (24, 24, 28))
    draw = ImageDraw.Draw(img)
    scale = size_px / (2 * range_m)

    def px(x: float, y: float) -> tuple[float, float]:
        return (size_px / 2 - y * scale, size_px / 2 - x * scale)

    for r in range(10, int(range_m) + 1, 10):  # range rings every 10 m
        c = size_px / 2
        draw.ellipse([c - r * scale, c - r * scale, c + r * scale, c + r * scale], outline=(60, 60, 66))
    draw.polygon([px(2.5, 0), px(-2, 1), px(-2, -1)], outline=(200, 200, 200))  # the ego vehicle
    for group, width in ((gt, 1), (boxes, 2)):
        for b in group:
            color = GT_COLOR if group is gt else _rgb255(b.label)
            quad = [px(x, y) for x, y, _ in b.corners()[:4]]
            draw.polygon(quad, outline=color, width=width)
            front = b.center[:2] + np.array([np.cos(b.yaw), np.sin(b.yaw)]) * b.size[0] / 2
            draw.line([px(*b.center[:2]), px(*front)], fill=color, width=width)
    draw.text((6, 4), f"BEV +-{range_m:.0f} m: {len(boxes)} detections" + (f", {len(gt)} GT" if gt else ""))
    return img


def camera_picture(
    image: np.ndarray, camera: PinholeCamera, boxes: Sequence[Box3D], gt: Sequence[Box3D] = ()
) -> Image.Image:
    """The camera image (H, W, 3) uint8 with box edges projected (edges behind the camera are skipped)."""
    img = Image.fromarray(image)
    draw = ImageDraw.Draw(img)
    for group in (gt, boxes):
        for b in group:
            uv, depth = camera.project(b.corners())
            color = GT_COLOR if group is gt else _rgb255(b.label)
            for i, j in _EDGES:
                if depth[i] > 0.1 and depth[j] > 0.1:
                    draw.line([tuple(uv[i]), tuple(uv[j])], fill=color, width=1)
    draw.text((4, 2), camera.name, fill=(255, 255, 0))
    return img


def frame_picture(
    images: Sequence[np.ndarray],
    cameras: Sequence[PinholeCamera],
    boxes: Sequence[Box3D],
    gt: Sequence[Box3D] = (),
    columns: int = 3,
    tile_height: int = 160,
) -> Image.Image:
    """BEV on the left, the cameras tiled ``columns`` wide on the right (each scaled to ``tile_height``)."""
    tiles = []
    for image, cam in zip(images, cameras):
        tile = camera_picture(image, cam, boxes, gt)
        w = max(1, round(tile.width * tile_height / tile.height))
        tiles.append(tile.resize((w, tile_height)))
    tile_w = max((t.width for t in tiles), default=1)
    rows = (len(tiles) + columns - 1) // columns
    bev = bev_picture(boxes, gt, size_px=max(rows * tile_height, 320))
    out = Image.new("RGB", (bev.width + columns * tile_w, max(bev.height, rows * tile_height)))
    out.paste(bev, (0, 0))
    for k, t in enumerate(tiles):
        out.paste(t, (bev.width + (k % columns) * tile_w, (k // columns) * tile_height))
    return out
