"""`simdistill nuscenes-to-bag`: a nuScenes dataroot's scenes as rosbag2 files in the project's layout.

One bag per scene, every sample_data of the scene in time order (key frames and sweeps): per camera the jpg
as it is on `/<CAM>/image_rect_compressed` (sensor_msgs/CompressedImage) with its `/<CAM>/camera_info`, the
LiDAR on `/LIDAR_TOP` (PointCloud2, x, y, z, intensity in the LIDAR_TOP frame), `/tf` map -> base_link at
each sensor stamp (its ego pose) and `/tf_static` base_link -> each sensor (calibrated_sensor), written
once at the start. Radar is left out (the detector reads no radar). Files are read one at a time, so
memory stays flat whatever the scene's length; each bag is written atomically by the bag writer, and a
scene whose bag exists is refused unless ``overwrite``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from simdistill_ros.dataset.dataroot import DatasetError, open_nuscenes, read_pcd_bin
from simdistill_ros.dataset.nuscenes_tables import split_scene_names
from simdistill_ros.frames.bag_writer import SensorBagWriter
from simdistill_ros.geometry import PinholeCamera, Transform

BASE_FRAME = "base_link"
WORLD_FRAME = "map"


def _pose(record: dict) -> Transform:
    return Transform.from_quat(record["translation"], record["rotation"])


def dataroot_to_bags(
    dataroot: str | Path,
    version: str,
    out: str | Path,
    split: str | None = None,
    scenes: list[str] | None = None,
    storage: str = "mcap",
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write the scenes of ``split`` (or the named ``scenes``, or all) as ``out/<scene>/`` bags."""
    dataroot, out = Path(dataroot), Path(out)
    nusc = open_nuscenes(dataroot, version)
    present = [s["name"] for s in nusc.scene]
    if scenes:
        unknown = sorted(set(scenes) - set(present))
        if unknown:
            raise DatasetError(f"{dataroot / version}/scene.json has no scene {', '.join(unknown)}")
        names = list(scenes)
    elif split:
        try:
            names = split_scene_names(dataroot, split, version, present=present)
        except KeyError as err:
            raise DatasetError(err.args[0]) from None
    else:
        names = present
    if not overwrite:
        taken = [n for n in names if (out / n).exists()]
        if taken:
            raise DatasetError(f"{out / taken[0]} exists (pass --overwrite to replace the bags)")
    by_name = {s["name"]: s for s in nusc.scene}
    # Every file first: a dataset that names a missing file writes no bag at all.
    records = {name: _scene_records(nusc, by_name[name]) for name in names}
    for rows in records.values():
        for sd in rows:
            if not (dataroot / sd["filename"]).is_file():
                raise DatasetError(
                    f"{dataroot / version}/sample_data.json names {sd['filename']}, which does not exist "
                    f"under {dataroot}"
                )
    written = []
    for name in names:
        path = out / name
        _write_scene(nusc, dataroot, records[name], path, storage, overwrite)
        written.append(path)
        if progress is not None:
            progress(f"{path}: {len(records[name])} messages")
    return written


def _scene_records(nusc, scene: dict) -> list[dict]:
    """The camera and LiDAR sample_data of a scene (key frames and sweeps), in time order."""
    tokens = set()
    tok = scene["first_sample_token"]
    while tok:
        tokens.add(tok)
        tok = nusc.get("sample", tok)["next"]
    rows = [
        sd for sd in nusc.sample_data if sd["sample_token"] in tokens and sd["sensor_modality"] != "radar"
    ]
    return sorted(rows, key=lambda sd: (sd["timestamp"], sd["channel"]))


def _write_scene(nusc, dataroot: Path, rows: list[dict], path: Path, storage: str, overwrite: bool) -> None:
    calibration: dict[str, Transform] = {}
    for sd in rows:
        if sd["channel"] not in calibration:
            cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
            calibration[sd["channel"]] = _pose(cs)
    with SensorBagWriter(path, storage=storage, overwrite=overwrite) as bag:
        first = rows[0]["timestamp"] * 1000
        bag.write_tf_static([(BASE_FRAME, ch, t) for ch, t in calibration.items()], first)
        last_pose = None
        for sd in rows:
            stamp = sd["timestamp"] * 1000
            if stamp != last_pose:
                bag.write_tf(
                    stamp, WORLD_FRAME, BASE_FRAME, _pose(nusc.get("ego_pose", sd["ego_pose_token"]))
                )
                last_pose = stamp
            channel = sd["channel"]
            file = dataroot / sd["filename"]
            if sd["sensor_modality"] == "camera":
                cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
                camera = PinholeCamera(
                    channel, int(sd["width"]), int(sd["height"]), cs["camera_intrinsic"], calibration[channel]
                )
                bag.write_jpeg(channel, stamp, file.read_bytes())
                bag.write_camera_info(camera, stamp)
            else:
                bag.write_points(stamp, read_pcd_bin(file)[:, :4], frame_id=channel)


def run_nuscenes_to_bag_command(args: argparse.Namespace) -> int:
    written = dataroot_to_bags(
        args.data,
        args.version,
        args.out,
        split=args.split,
        scenes=args.scenes,
        storage=args.storage,
        overwrite=args.overwrite,
        progress=print,
    )
    print(f"wrote {len(written)} bags to {args.out}")
    return 0
