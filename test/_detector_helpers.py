"""Shared by the detector tests: a tiny random student checkpoint and tiny synthetic bags."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tiny_student_checkpoint(path: Path, seed: int = 0) -> Path:
    """A randomly initialised student small enough for ~0.1 s per six-camera frame on a busy CPU."""
    import torch

    from simdistill_ros.models import StudentModel, save_checkpoint
    from simdistill_ros.models.config import (
        BackboneConfig,
        BEVGridConfig,
        DecoderConfig,
        GCMConfig,
        HeadConfig,
        ModelConfig,
        PillarConfig,
        ViewTransformConfig,
    )

    cfg = ModelConfig(
        image_size=(48, 88),
        grid=BEVGridConfig(xbound=(-38.4, 38.4, 1.6), ybound=(-38.4, 38.4, 1.6), dbound=(1.0, 41.0, 2.0)),
        backbone=BackboneConfig(widths=(8, 16, 32, 32), stem_channels=8, neck_channels=16),
        view_transform=ViewTransformConfig(context_channels=8, depthnet_channels=16, out_channels=16),
        pillars=PillarConfig(point_channels=8, out_channels=16),
        fused_channels=16,
        decoder=DecoderConfig(stage_channels=(16, 32), out_channels=16),
        head=HeadConfig(head_channels=16),
        gcm=GCMConfig(image_heads=2, bev_heads=2),
        sim_context_channels=8,
        sim_bev_channels=16,
    )
    torch.manual_seed(seed)
    return save_checkpoint(path, StudentModel(cfg), cfg, {"note": "random weights for tests"})


def synth_world(out: Path, frames: int = 3, cameras: int = 6, raw: bool = False, seed: int = 5) -> Path:
    """One scene of ``frames`` frames, 64x112 images, no LiDAR; returns the bag path."""
    from simdistill_ros.geometry import CameraRig, nuscenes_like_rig
    from simdistill_ros.synth.export import synthesize

    full = nuscenes_like_rig(64, 112)
    rig = CameraRig(full.cameras[:cameras], full.lidar_to_base)
    synthesize(
        out, 1, frames, seed, image_size=(64, 112), compressed=not raw, with_lidar=False,
        val_fraction=0.0, rig=rig, progress=False,
    )  # fmt: skip
    return next((out / "bags").iterdir())


def copy_bag_with_bad_images(src: Path, dst: Path, topic: str, bad: dict[int, str]) -> None:
    """Copy a bag, replacing the k-th message on ``topic`` (a raw sensor_msgs/Image topic) by a malformed
    one: ``bad[k]`` is "encoding" (an unsupported encoding) or "size" (data shorter than step * height)."""
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import StoragePlugin, Writer

    from simdistill_ros.frames.bag_writer import TF_STATIC_QOS
    from simdistill_ros.frames.messages import typestore

    store = typestore()
    with AnyReader([src], default_typestore=store) as reader:
        writer = Writer(dst, version=8, storage_plugin=StoragePlugin.MCAP)
        writer.open()
        conns = {}
        for c in reader.connections:
            qos = (TF_STATIC_QOS,) if c.topic == "/tf_static" else ()
            conns[c.id] = writer.add_connection(c.topic, c.msgtype, typestore=store, offered_qos_profiles=qos)
        seen = 0
        for c, stamp, raw in reader.messages():
            if c.topic == topic:
                kind = bad.get(seen)
                seen += 1
                if kind is not None:
                    msg = reader.deserialize(raw, c.msgtype)
                    if kind == "encoding":
                        msg.encoding = "32FC1"
                    else:
                        msg.data = np.asarray(msg.data)[: len(msg.data) // 2].copy()
                    raw = store.serialize_cdr(msg, c.msgtype)
            writer.write(conns[c.id], stamp, raw)
        writer.close()
