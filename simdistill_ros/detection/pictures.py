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
# Camera names: dark text on a light plate, a neutral no class colour comes near (classes are bright).
NAME_COLOR = (16, 16, 16)
NAME_PLATE = (225, 225, 225)
LABEL_PLATE = (0, 0, 0)  # behind each ``class score``, so it reads on any image
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


Rect = tuple[float, float, float, float]


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class _Labels:
    """Label texts on a dark plate, placed without overlap: each label tries its candidate positions,
    first one clear of other labels and of the boxes to avoid, then one clear of other labels only; a
    label with no free place is left out (its box keeps its class colour), so a crowded view stays
    legible. Place labels highest score first, after all box lines are drawn."""

    def __init__(self, draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont, size: tuple[int, int]) -> None:
        self.draw, self.font, self.size = draw, font, size
        self.rects: list[Rect] = []
        self.texts: list[str] = []
        self.placed: list[list[int]] = []  # the plates of the texts in ``texts``

    def _rect(self, xy: tuple[float, float], text: str) -> Rect:
        x0, y0, x1, y1 = self.draw.textbbox(xy, text, font=self.font)
        return (x0 - 2, y0 - 1, x1 + 2, y1 + 1)

    def reserve(self, rect: Rect) -> None:
        """Keep labels off ``rect`` (e.g. a camera name)."""
        self.rects.append(rect)

    def put(
        self,
        candidates: Sequence[tuple[float, float]],
        text: str,
        color: tuple[int, int, int],
        avoid: Sequence[Rect] = (),
        plate: tuple[int, int, int] = LABEL_PLATE,
    ) -> bool:
        w, h = self.size
        for strict in (True, False):
            for xy in candidates:
                r = self._rect(xy, text)
                if r[0] < 0 or r[1] < 0 or r[2] > w or r[3] > h:
                    continue
                if any(_overlaps(r, o) for o in self.rects):
                    continue
                if strict and any(_overlaps(r, o) for o in avoid):
                    continue
                self.draw.rectangle(r, fill=plate)
                self.draw.text(xy, text, fill=color, font=self.font)
                self.rects.append(r)
                self.texts.append(text)
                self.placed.append([round(v) for v in r])
                return True
        return False


def _by_score(boxes: Sequence[Box3D]) -> list[Box3D]:
    """Ascending score: drawn in this order, the highest score ends on top."""
    return sorted(boxes, key=lambda b: b.score)


def label_font_px(tile_height: int) -> int:
    """Label text height for a picture ``tile_height`` pixels high: large enough to stay readable when the
    overview shrinks the frame to about half its size."""
    return max(12, round(tile_height / 11))


def camera_yaw(camera: PinholeCamera) -> float:
    """The camera's heading in the base frame (radians, 0 = forward, + = left): where its optical axis
    points, from ``cam_to_base``."""
    axis = camera.cam_to_base.rotation[:, 2]
    return float(np.arctan2(axis[1], axis[0]))


def camera_grid(cameras: Sequence[PinholeCamera]) -> list[tuple[int, int]]:
    """(row, column) of each camera, laid out as the cameras face: row 0 the cameras looking forward
    (|yaw| < 90 deg), left to right as a driver sees them; row 1 those looking back, left to right as in a
    rear-view mirror (back-left, back, back-right). Decided by yaw, not names, so any rig lays out."""
    yaws = [camera_yaw(c) for c in cameras]
    front = sorted((k for k, y in enumerate(yaws) if abs(y) < np.pi / 2), key=lambda k: -yaws[k])
    back = sorted((k for k, y in enumerate(yaws) if abs(y) >= np.pi / 2), key=lambda k: yaws[k] % (2 * np.pi))
    cells: list[tuple[int, int]] = [(0, 0)] * len(cameras)
    for row, ks in enumerate(r for r in (front, back) if r):
        for col, k in enumerate(ks):
            cells[k] = (row, col)
    return cells


def _labelled(img: Image.Image, labels: _Labels) -> Image.Image:
    img.info["labels"] = json.dumps(labels.texts)
    img.info["label_boxes"] = json.dumps(labels.placed)
    return img


def bev_picture(
    boxes: Sequence[Box3D], gt: Sequence[Box3D] = (), size_px: int = 640, range_m: float = 45.0
) -> Image.Image:
    """Top view of the base frame, x forward = up, y left = left; ground truth white (thin), detections in
    their class colour (highest score drawn last, on top) with ``class score`` beside them. A short line
    marks each box's heading. The title sits in its own band above the view (``size_px`` square)."""
    font = _font(label_font_px(round(size_px / 2.6)))
    title_h = font.size + 8 if hasattr(font, "size") else 20
    img = Image.new("RGB", (size_px, size_px + title_h), BACKGROUND)
    draw = ImageDraw.Draw(img)
    scale = size_px / (2 * range_m)
    labels = _Labels(draw, font, img.size)

    def px(x: float, y: float) -> tuple[float, float]:
        return (size_px / 2 - y * scale, title_h + size_px / 2 - x * scale)

    cx, cy = px(0.0, 0.0)
    ring_font = _font(max(10, font.size * 3 // 4) if hasattr(font, "size") else 10)
    for r in range(10, int(range_m) + 1, 10):  # range rings every 10 m
        draw.ellipse([cx - r * scale, cy - r * scale, cx + r * scale, cy + r * scale], outline=(60, 60, 66))
        draw.text((cx + 3, cy - r * scale + 1), f"{r} m", fill=(90, 90, 98), font=ring_font)
    draw.polygon([px(2.5, 0), px(-2, 1), px(-2, -1)], outline=(200, 200, 200))  # the ego vehicle
    dets = _by_score(boxes)
    quads = {}
    for group, width in ((gt, 1), (dets, 2)):
        for b in group:
            color = GT_COLOR if group is gt else class_rgb(b.label)
            quad = [px(x, y) for x, y, _ in b.corners()[:4]]
            draw.polygon(quad, outline=color, width=width)
            front = b.center[:2] + np.array([np.cos(b.yaw), np.sin(b.yaw)]) * b.size[0] / 2
            draw.line([px(*b.center[:2]), px(*front)], fill=color, width=width)
            if group is dets:
                quads[id(b)] = quad
    extents = {
        k: (min(q[0] for q in v), min(q[1] for q in v), max(q[0] for q in v), max(q[1] for q in v))
        for k, v in quads.items()
    }
    for b in reversed(dets):  # the highest score claims its place first
        x0, y0, x1, y1 = extents[id(b)]
        text = box_label(b)
        tw = draw.textlength(text, font=font)
        th = font.size if hasattr(font, "size") else 11
        spots = [(x1 + 3, y0 - 2), (x0 - tw - 5, y0 - 2), (x1 + 3, y1 - th), (x0, y1 + 3), (x0, y0 - th - 5)]
        others = [e for k, e in extents.items() if k != id(b)]
        labels.put(spots, text, class_rgb(b.label), avoid=others)
    title = f"bird's-eye view, +-{range_m:.0f} m, forward = up: {len(boxes)} detections"
    title += f", {len(gt)} ground truth" if gt else ""
    draw.rectangle((0, 0, size_px, title_h - 1), fill=(12, 12, 14))
    title_font, size = font, getattr(font, "size", 11)
    while size > 9 and draw.textlength(title, font=title_font) > size_px - 12:  # the whole title fits
        size -= 1
        title_font = _font(size)
    draw.text((6, 4), title, fill=(230, 230, 230), font=title_font)
    return _labelled(img, labels)


def camera_picture(
    image: np.ndarray,
    camera: PinholeCamera,
    boxes: Sequence[Box3D],
    gt: Sequence[Box3D] = (),
    scale: float = 1.0,
) -> Image.Image:
    """The camera image (H, W, 3) uint8, resized by ``scale``, with box edges projected (edges behind the
    camera are skipped; detections in ascending score, so the highest is on top) and ``class score``
    above each detection in view, kept off the camera name, other labels and, where it can, other boxes.
    Drawn after the resize, so lines and text stay sharp."""
    img = Image.fromarray(image)
    if scale != 1.0:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    draw = ImageDraw.Draw(img)
    font = _font(label_font_px(img.height))
    labels = _Labels(draw, font, img.size)
    labels.put([(4, 2)], camera.name, NAME_COLOR, plate=NAME_PLATE)
    labels.texts.clear()  # the name is not a detection's label
    labels.placed.clear()
    dets = _by_score(boxes)
    placed = []  # (box, its extent in the picture)
    for group in (gt, dets):
        for b in group:
            uv, depth = camera.project(b.corners())
            uv = uv * scale
            color = GT_COLOR if group is gt else class_rgb(b.label)
            drawn = False
            for i, j in _EDGES:
                if depth[i] > 0.1 and depth[j] > 0.1:
                    draw.line([tuple(uv[i]), tuple(uv[j])], fill=color, width=max(1, round(img.height / 200)))
                    drawn = True
            if group is not dets or not drawn:
                continue
            seen = uv[depth > 0.1]
            if seen[:, 0].max() < 0 or seen[:, 0].min() > img.width or seen[:, 1].max() < 0:
                continue  # projects outside the picture
            placed.append((b, (*seen.min(axis=0), *seen.max(axis=0))))
    th = font.size if hasattr(font, "size") else 11
    for b, (x0, y0, _x1, y1) in reversed(placed):  # the highest score claims its place first
        text = box_label(b)
        tw = draw.textlength(text, font=font)
        u = float(np.clip(x0, 2, max(2, img.width - tw - 4)))
        spots = [(u, y0 - th - 4), (u, y1 + 3), (u, max(y0, 0) + 3)]
        spots += [(u, float(np.clip(y0 - th - 4, 2, img.height - th - 4)))]
        others = [e for c, e in placed if c is not b]
        labels.put(spots, text, class_rgb(b.label), avoid=others)
    return _labelled(img, labels)


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
    tile_height: int = 216,
    bev_px: int = 432,
) -> Image.Image:
    """The BEV (at least ``bev_px`` square, under its title band) on the left, the cameras on the right
    laid out as they face (:func:`camera_grid`: forward row on top, back row below, each scaled to
    ``tile_height``), a legend band along the bottom. ``info``: ``legend``, ``labels`` and ``cameras``
    (the camera names row by row, left to right)."""
    tiles = []
    labels: list[str] = []
    for image, cam in zip(images, cameras):
        tile = camera_picture(image, cam, boxes, gt, scale=tile_height / image.shape[0])
        labels += json.loads(tile.info["labels"])
        tiles.append(tile)
    cells = camera_grid(cameras)
    tile_w = max((t.width for t in tiles), default=1)
    rows = 1 + max((r for r, _ in cells), default=-1)
    columns = 1 + max((c for _, c in cells), default=-1)
    bev = bev_picture(boxes, gt, size_px=max(rows * tile_height, bev_px))
    labels = json.loads(bev.info["labels"]) + labels
    width = bev.width + columns * tile_w
    body = Image.new("RGB", (width, max(bev.height, rows * tile_height)), BACKGROUND)
    body.paste(bev, (0, 0))
    for tile, (r, c) in zip(tiles, cells):
        in_row = sum(1 for rc in cells if rc[0] == r)
        x0 = bev.width + (columns - in_row) * tile_w // 2  # a shorter row is centred
        body.paste(tile, (x0 + c * tile_w, r * tile_height))
    order = sorted(range(len(cameras)), key=lambda k: cells[k])
    out = _with_legend(body, labels)
    out.info["cameras"] = json.dumps([cameras[k].name for k in order])
    return out


def save_picture(img: Image.Image, path: str | Path) -> None:
    """PNG with the picture's ``legend``, ``labels`` and ``body_height`` as text chunks."""
    meta = PngInfo()
    for key in ("legend", "labels", "body_height", "cameras"):
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
    png_dir: str | Path, max_frames: int = 6, columns: int = 1, width: int = 1440
) -> Path | None:
    """``overview.png`` in ``png_dir``: up to ``max_frames`` of its frame pictures, evenly spaced over the
    run, on one contact sheet; one frame per row by default, shrunk little enough that the labels
    (:func:`label_font_px`) stay readable. None when the directory holds no frame pictures."""
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
