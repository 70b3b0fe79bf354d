"""Per-frame pictures a user can read: a bird's-eye view (detections, optional ground truth) beside the
camera images with the boxes projected into them, a legend band (ground truth vs detections, one colour
per class), class labels and scores on the detections, and one overview sheet per run. PIL only, no ROS.

What each picture shows is also written into it: ``Image.info`` holds ``legend`` (the legend's entries)
and ``labels`` (the label texts drawn), which :func:`save_picture` stores as PNG text chunks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from simdistill_ros.classes import CLASS_COLOR, NUSCENES_CLASSES
from simdistill_ros.geometry import Box3D, PinholeCamera

_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)]
GT_COLOR = (255, 255, 255)
BACKGROUND = (24, 24, 28)
LEGEND_HEIGHT = 30
OVERVIEW_NAME = "overview.png"


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # scalable where Pillow has FreeType
    except (TypeError, OSError):
        return ImageFont.load_default()


def class_rgb(label: str) -> tuple[int, int, int]:
    """The 0-255 RGB colour of a class (the RViz markers' colour)."""
    r, g, b = CLASS_COLOR[label]
    return int(r * 255), int(g * 255), int(b * 255)


def box_label(box: Box3D) -> str:
    """The text drawn on a detection: class and score, e.g. ``car 0.87``."""
    return f"{box.label} {box.score:.2f}"


class _Labels:
    """Label texts placed without overlap: a label that would cover an earlier one is left out (its box
    keeps its class colour), so a crowded view stays legible."""

    def __init__(self, draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont) -> None:
        self.draw, self.font = draw, font
        self.rects: list[tuple[float, float, float, float]] = []
        self.texts: list[str] = []

    def put(self, xy: tuple[float, float], text: str, color: tuple[int, int, int]) -> bool:
        x0, y0, x1, y1 = self.draw.textbbox(xy, text, font=self.font)
        if any(x0 < r[2] and r[0] < x1 and y0 < r[3] and r[1] < y1 for r in self.rects):
            return False
        self.draw.text(xy, text, fill=color, font=self.font)
        self.rects.append((x0, y0, x1, y1))
        self.texts.append(text)
        return True


def _labelled(img: Image.Image, labels: list[str]) -> Image.Image:
    img.info["labels"] = json.dumps(labels)
    return img


def bev_picture(
    boxes: Sequence[Box3D], gt: Sequence[Box3D] = (), size_px: int = 640, range_m: float = 45.0
) -> Image.Image:
    """Top view of the base frame, x forward = up, y left = left; ground truth white (thin), detections in
    their class colour with ``class score`` beside them. A short line marks each box's heading."""
    img = Image.new("RGB", (size_px, size_px), BACKGROUND)
    draw = ImageDraw.Draw(img)
    scale = size_px / (2 * range_m)
    font = _font(max(11, size_px // 50))
    labels = _Labels(draw, font)

    def px(x: float, y: float) -> tuple[float, float]:
        return (size_px / 2 - y * scale, size_px / 2 - x * scale)

    c = size_px / 2
    for r in range(10, int(range_m) + 1, 10):  # range rings every 10 m
        draw.ellipse([c - r * scale, c - r * scale, c + r * scale, c + r * scale], outline=(60, 60, 66))
        draw.text((c + 3, c - r * scale + 1), f"{r} m", fill=(90, 90, 98), font=font)
    draw.polygon([px(2.5, 0), px(-2, 1), px(-2, -1)], outline=(200, 200, 200))  # the ego vehicle
    for group, width in ((gt, 1), (boxes, 2)):
        for b in group:
            color = GT_COLOR if group is gt else class_rgb(b.label)
            quad = [px(x, y) for x, y, _ in b.corners()[:4]]
            draw.polygon(quad, outline=color, width=width)
            front = b.center[:2] + np.array([np.cos(b.yaw), np.sin(b.yaw)]) * b.size[0] / 2
            draw.line([px(*b.center[:2]), px(*front)], fill=color, width=width)
            if group is boxes:
                labels.put((max(q[0] for q in quad) + 2, min(q[1] for q in quad) - 2), box_label(b), color)
    title = f"bird's-eye view, +-{range_m:.0f} m, forward = up: {len(boxes)} detections"
    draw.text((6, 4), title + (f", {len(gt)} ground truth" if gt else ""), fill=(230, 230, 230), font=font)
    return _labelled(img, labels.texts)


def camera_picture(
    image: np.ndarray,
    camera: PinholeCamera,
    boxes: Sequence[Box3D],
    gt: Sequence[Box3D] = (),
    scale: float = 1.0,
) -> Image.Image:
    """The camera image (H, W, 3) uint8, resized by ``scale``, with box edges projected (edges behind the
    camera are skipped) and ``class score`` above each detection in view. Drawn after the resize, so
    lines and text stay sharp."""
    img = Image.fromarray(image)
    if scale != 1.0:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    draw = ImageDraw.Draw(img)
    labels = _Labels(draw, _font(12))
    for group in (gt, boxes):
        for b in group:
            uv, depth = camera.project(b.corners())
            uv = uv * scale
            color = GT_COLOR if group is gt else class_rgb(b.label)
            drawn = False
            for i, j in _EDGES:
                if depth[i] > 0.1 and depth[j] > 0.1:
                    draw.line([tuple(uv[i]), tuple(uv[j])], fill=color, width=1)
                    drawn = True
            if group is not boxes or not drawn:
                continue
            seen = uv[depth > 0.1]
            if seen[:, 0].max() < 0 or seen[:, 0].min() > img.width or seen[:, 1].max() < 0:
                continue  # projects outside the picture
            u = float(np.clip(seen[:, 0].min(), 0, img.width - 60))
            v = float(np.clip(seen[:, 1].min() - 13, 0, img.height - 13))
            labels.put((u, v), box_label(b), color)
    draw.text((4, 2), camera.name, fill=(255, 255, 0), font=_font(12))
    return _labelled(img, labels.texts)


def legend_band(width: int, classes: Sequence[str] = NUSCENES_CLASSES) -> Image.Image:
    """A strip that says what the colours mean: white = ground truth, then one swatch per class
    (detections, labelled ``class score``), wrapped into rows to fit ``width``. ``info["legend"]`` lists
    the entries with their swatch boxes."""
    font = _font(12)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    items = [("legend:", None, 0), ("ground truth", GT_COLOR, 1), ("detections (class score):", None, 0)]
    items += [(c, class_rgb(c), 3) for c in classes]
    placed = []  # (x, row, name, color, line width)
    x, row = 8, 0
    for name, color, line_w in items:
        w = int(measure.textlength(name, font=font)) + (18 if color else 0)
        if x + w > width - 8 and x > 8:
            x, row = 8, row + 1
        placed.append((x, row, name, color, line_w))
        x += w + 14
    row_h = LEGEND_HEIGHT
    img = Image.new("RGB", (width, row_h * (row + 1)), (12, 12, 14))
    draw = ImageDraw.Draw(img)
    entries = []
    for x, r, name, color, line_w in placed:
        y = r * row_h + (row_h - 12) // 2
        if color is None:
            draw.text((x, y - 1), name, fill=(230, 230, 230), font=font)
            continue
        swatch = (x, y, x + 14, y + 12)
        draw.rectangle(swatch, outline=color, width=line_w, fill=color if line_w > 1 else None)
        draw.text((x + 18, y - 1), name, fill=color, font=font)
        entries.append({"name": name, "color": list(color), "box": list(swatch)})
    img.info["legend"] = json.dumps(entries)
    return img


def _with_legend(body: Image.Image, labels: list[str]) -> Image.Image:
    """``body`` with a legend band below; ``info``: legend (boxes in the result), labels, body_height."""
    legend = legend_band(body.width)
    out = Image.new("RGB", (body.width, body.height + legend.height), BACKGROUND)
    out.paste(body, (0, 0))
    out.paste(legend, (0, body.height))
    entries = json.loads(legend.info["legend"])
    for e in entries:
        x0, y0, x1, y1 = e["box"]
        e["box"] = [x0, y0 + body.height, x1, y1 + body.height]
    out.info.update(legend=json.dumps(entries), labels=json.dumps(labels), body_height=str(body.height))
    return out


def frame_picture(
    images: Sequence[np.ndarray],
    cameras: Sequence[PinholeCamera],
    boxes: Sequence[Box3D],
    gt: Sequence[Box3D] = (),
    columns: int = 2,
    tile_height: int = 216,
    bev_px: int = 648,
) -> Image.Image:
    """The BEV (``bev_px`` square) on the left, the cameras tiled ``columns`` wide on the right (each scaled
    to ``tile_height``), a legend band along the bottom. ``info``: ``legend`` and ``labels``."""
    tiles = []
    labels: list[str] = []
    for image, cam in zip(images, cameras):
        tile = camera_picture(image, cam, boxes, gt, scale=tile_height / image.shape[0])
        labels += json.loads(tile.info["labels"])
        tiles.append(tile)
    tile_w = max((t.width for t in tiles), default=1)
    rows = (len(tiles) + columns - 1) // columns
    bev = bev_picture(boxes, gt, size_px=max(rows * tile_height, bev_px))
    labels = json.loads(bev.info["labels"]) + labels
    width = bev.width + (columns * tile_w if tiles else 0)
    body = Image.new("RGB", (width, max(bev.height, rows * tile_height)), BACKGROUND)
    body.paste(bev, (0, 0))
    for k, t in enumerate(tiles):
        body.paste(t, (bev.width + (k % columns) * tile_w, (k // columns) * tile_height))
    return _with_legend(body, labels)


def save_picture(img: Image.Image, path: str | Path) -> None:
    """PNG with the picture's ``legend``, ``labels`` and ``body_height`` as text chunks."""
    meta = PngInfo()
    for key in ("legend", "labels", "body_height"):
        if key in img.info:
            meta.add_text(key, img.info[key])
    img.save(path, pnginfo=meta)


def contact_sheet(
    pictures: Sequence[Image.Image], names: Sequence[str], columns: int = 2, width: int = 720
) -> Image.Image:
    """Frame pictures as thumbnails ``width`` wide, ``columns`` per row, each titled with its name, and one
    legend band along the bottom (the frames' own legends are cropped off)."""
    if not pictures:
        raise ValueError("no pictures for a contact sheet")
    font = _font(14)
    thumbs = []
    for pic in pictures:
        body = pic.crop((0, 0, pic.width, int(pic.info.get("body_height", pic.height))))
        h = max(1, round(body.height * width / body.width))
        thumbs.append(body.resize((width, h), Image.Resampling.LANCZOS))
    title_h = 20
    cell_h = max(t.height for t in thumbs) + title_h
    rows = (len(thumbs) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * width, rows * cell_h), (0, 0, 0))
    draw = ImageDraw.Draw(sheet)
    for k, (thumb, name) in enumerate(zip(thumbs, names)):
        x, y = (k % columns) * width, (k // columns) * cell_h
        draw.text((x + 6, y + 2), name, fill=(230, 230, 230), font=font)
        sheet.paste(thumb, (x, y + title_h))
    labels = [text for pic in pictures for text in json.loads(pic.info.get("labels", "[]"))]
    return _with_legend(sheet, labels)


def write_overview(
    png_dir: str | Path, max_frames: int = 6, columns: int = 2, width: int = 720
) -> Path | None:
    """``overview.png`` in ``png_dir``: up to ``max_frames`` of its frame pictures, evenly spaced over the
    run, on one contact sheet. None when the directory holds no frame pictures."""
    png_dir = Path(png_dir)
    frames = sorted(p for p in png_dir.glob("frame_*.png"))
    if not frames:
        return None
    if len(frames) > max_frames:
        picks = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = [frames[i] for i in sorted(set(picks.tolist()))]
    pictures = []
    for path in frames:
        with Image.open(path) as im:
            im.load()
            pictures.append(im.copy())
            pictures[-1].info.update(im.info)
    names = [p.stem.split("_")[1] for p in frames]
    sheet = contact_sheet(pictures, [f"frame {n}" for n in names], columns=columns, width=width)
    out = png_dir / OVERVIEW_NAME
    save_picture(sheet, out)
    return out
