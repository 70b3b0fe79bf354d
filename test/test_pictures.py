"""The pictures a user reads: a legend (ground truth vs detections, one colour per class), class labels and
scores on the detections, and one overview sheet per run."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_cli
from PIL import Image

from simdistill_ros.classes import NUSCENES_CLASSES
from simdistill_ros.detection.pictures import (
    GT_COLOR,
    NAME_COLOR,
    OVERVIEW_NAME,
    bev_picture,
    camera_grid,
    camera_picture,
    class_rgb,
    frame_picture,
    save_picture,
    write_overview,
)
from simdistill_ros.geometry import Box3D, PinholeCamera, camera_mount


def _camera() -> PinholeCamera:
    return PinholeCamera.from_fov("CAM_FRONT", 200, 80, 70.0, camera_mount(1.5, 0.0, 1.5, 0.0))


def _scene() -> tuple[list[Box3D], list[Box3D]]:
    dets = [
        Box3D([12.0, 0.0, 0.9], [4.5, 1.9, 1.7], 0.0, "car", score=0.87),
        Box3D([15.0, -5.0, 1.5], [8.0, 2.5, 3.0], 0.0, "truck", score=0.5),
    ]
    gt = [Box3D([12.5, 0.2, 0.9], [4.4, 1.9, 1.6], 0.0, "car")]
    return dets, gt


def _rgb_distance(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    return float(np.linalg.norm(np.subtract(a, b)))


def test_every_class_has_its_own_colour_and_none_is_the_ground_truth_white():
    colours = {c: class_rgb(c) for c in NUSCENES_CLASSES}
    for a, b in itertools.combinations(NUSCENES_CLASSES, 2):
        assert _rgb_distance(colours[a], colours[b]) > 90, (a, b)
    for c in NUSCENES_CLASSES:
        assert _rgb_distance(colours[c], GT_COLOR) > 90, c


def test_frame_picture_draws_a_legend_and_labels_the_detections(tmp_path: Path):
    dets, gt = _scene()
    image = np.full((80, 200, 3), 90, np.uint8)
    pic = frame_picture([image], [_camera()], dets, gt, tile_height=160, bev_px=320)

    legend = json.loads(pic.info["legend"])
    names = [e["name"] for e in legend]
    assert names == ["ground truth", *NUSCENES_CLASSES]
    px = np.asarray(pic)
    for entry in legend:
        x0, y0, x1, y1 = entry["box"]
        assert y0 >= 320  # the band under the BEV and the cameras
        swatch = px[y0 : y1 + 1, x0 : x1 + 1].reshape(-1, 3)
        # The swatch is drawn in the colour the legend names (the ground truth's as an outline).
        assert (swatch == entry["color"]).all(axis=1).sum() >= 20, entry["name"]

    labels = json.loads(pic.info["labels"])
    assert labels.count("car 0.87") == 2  # in the BEV and in the camera
    assert labels.count("truck 0.50") == 2
    assert not any(label.startswith("car 1.00") for label in labels)  # ground truth gets no label

    path = tmp_path / "frame.png"
    save_picture(pic, path)
    with Image.open(path) as saved:
        assert json.loads(saved.text["legend"]) == legend
        assert json.loads(saved.text["labels"]) == labels


def test_labels_in_colour_are_drawn_in_the_picture():
    """The BEV with one labelled car has more car-coloured pixels than the same car drawn unlabelled."""
    car = Box3D([10.0, 0.0, 0.9], [4.5, 1.9, 1.7], 0.0, "car", score=0.42)
    labelled = bev_picture([car], size_px=400)
    assert json.loads(labelled.info["labels"]) == ["car 0.42"]
    with_label = np.asarray(labelled)
    outline_only = np.asarray(bev_picture([], gt=[car], size_px=400))
    car_px = (with_label == class_rgb("car")).all(axis=-1).sum()
    white_px = (outline_only == GT_COLOR).all(axis=-1).sum()
    assert car_px > white_px + 30  # the label's text, beyond the box outline


def test_overlapping_labels_are_left_out():
    crowd = [Box3D([10.0, 0.1 * k, 0.9], [4.5, 1.9, 1.7], 0.0, "car", score=0.5) for k in range(5)]
    pic = bev_picture(crowd, size_px=400)
    labels, plates = json.loads(pic.info["labels"]), json.loads(pic.info["label_boxes"])
    # each label tries a few places around its box; those with no free place are left out
    assert 1 <= len(labels) < len(crowd) and set(labels) == {"car 0.50"} and len(plates) == len(labels)
    for a, b in itertools.combinations(plates, 2):
        assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)  # no label on another


def test_write_overview_puts_evenly_spaced_frames_on_one_sheet(tmp_path: Path):
    dets, gt = _scene()
    image = np.full((80, 200, 3), 90, np.uint8)
    pic = frame_picture([image], [_camera()], dets, gt, tile_height=160, bev_px=320)
    for k in range(10):
        save_picture(pic, tmp_path / f"frame_{k:04d}_{1000 + k}.png")
    out = write_overview(tmp_path, max_frames=4, columns=2, width=300)
    assert out == tmp_path / OVERVIEW_NAME
    with Image.open(out) as sheet:
        assert sheet.width == 600
        assert [e["name"] for e in json.loads(sheet.text["legend"])][0] == "ground truth"
        # frames 0, 3, 6, 9: four pictures' labels
        assert json.loads(sheet.text["labels"]).count("car 0.87") == 8
    assert write_overview(tmp_path / "empty") is None


@pytest.mark.timeout(300)
def test_detect_writes_pictures_and_the_overview(tmp_path: Path):
    world = tmp_path / "w"
    synth = ["synth", "--out", str(world), "--scenes", "1", "--frames-per-scene", "2", "--seed", "4"]
    run_cli(*synth, "--image-size", "64x112", timeout=240)
    bag = next((world / "bags").iterdir())
    pics = tmp_path / "pics"
    detect = ["detect", "--bag", str(bag), "--out", str(tmp_path / "out"), "--png", str(pics)]
    proc = run_cli(*detect, "--data", str(world), "--score-threshold", "0.2", check=False, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    frames = sorted(pics.glob("frame_*.png"))
    assert len(frames) == 2
    assert f"overview: {pics / OVERVIEW_NAME}" in proc.stdout
    with Image.open(frames[0]) as first:
        assert len(json.loads(first.text["legend"])) == 1 + len(NUSCENES_CLASSES)
    assert (pics / OVERVIEW_NAME).is_file()


def _rig() -> list[PinholeCamera]:
    """Six cameras named for nothing: the layout must come from where they look (yaw)."""
    yaws = {"a": -110.0, "b": 0.0, "c": 180.0, "d": 55.0, "e": 110.0, "f": -55.0}
    return [PinholeCamera.from_fov(n, 100, 40, 64.0, camera_mount(1.5, 0.0, 1.5, y)) for n, y in yaws.items()]


def test_camera_tiles_are_laid_out_the_way_the_cameras_face():
    cams = _rig()
    # front row left to right: yaw 55 (front-left), 0, -55; back row as in a mirror: 110, 180, -110
    assert camera_grid(cams) == [(1, 2), (0, 1), (1, 1), (0, 0), (1, 0), (0, 2)]
    images = [np.full((40, 100, 3), 90, np.uint8) for _ in cams]
    pic = frame_picture(images, cams, [], tile_height=40, bev_px=80)
    assert json.loads(pic.info["cameras"]) == ["d", "b", "f", "e", "c", "a"]


def test_the_highest_score_is_drawn_last_and_its_label_is_kept():
    """Two boxes of different classes on the same spot: the higher score's colour is on top, whatever
    order the boxes come in, and its label is the one placed."""
    low = Box3D([10.0, 0.0, 0.9], [4.5, 1.9, 1.7], 0.0, "truck", score=0.3)
    high = Box3D([10.0, 0.0, 0.9], [4.5, 1.9, 1.7], 0.0, "car", score=0.8)
    image = np.full((80, 200, 3), 90, np.uint8)
    for boxes in ([high, low], [low, high]):
        cam = camera_picture(image, _camera(), boxes, scale=2.0)
        px = np.asarray(cam)
        assert (px == class_rgb("car")).all(axis=-1).sum() > 0
        assert json.loads(cam.info["labels"])[0] == "car 0.80"
        bev = np.asarray(bev_picture(boxes, size_px=400))
        car_px = (bev == class_rgb("car")).all(axis=-1).sum()
        truck_px = (bev == class_rgb("truck")).all(axis=-1).sum()
        assert car_px > truck_px  # the truck's outline lies under the car's


def test_camera_names_are_in_a_colour_no_class_has():
    for c in NUSCENES_CLASSES:
        assert _rgb_distance(NAME_COLOR, class_rgb(c)) > 90, c
