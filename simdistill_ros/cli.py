"""The `simdistill` command: synthesize data, train, evaluate, detect on bags, replay the teacher.

Each subcommand's implementation is imported only when it runs, so `simdistill --help` stays fast and
subcommands that do not need torch never import it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from simdistill_ros import __version__
from simdistill_ros.defaults import (
    DEFAULT_MODEL,
    DEFAULT_SCORE_THRESHOLD,
    DEFAULT_TEACHER,
    EVAL_SCORE_THRESHOLD,
    IMAGE_RECTIFICATIONS,
    PSEUDO_LABEL_THRESHOLD,
)
from simdistill_ros.errors import UserError, missing_package_error
from simdistill_ros.openmp import bound_openmp_spin


def _add_sensor_flags(p: argparse.ArgumentParser) -> None:
    """The sensor configuration flags every bag-reading command shares (docs/bag_layouts.md)."""
    g = p.add_argument_group(
        "sensors",
        "Which topics hold which sensor. Unset: recognised from the bag (nuscenes2bag, ros2_dataset_bridge, "
        "nuscenes2mcap, driver-style topics); the camera order is the model's (its meta.json).",
    )
    g.add_argument("--params", metavar="FILE", help="ros__parameters YAML (as config/detector.yaml)")
    g.add_argument("--cameras", metavar="A,B,..", help="cameras in model order; the first is the sync ref.")
    g.add_argument("--image-topic", metavar="TOPIC", help="image topic template with {camera}, or a,b,..")
    g.add_argument(
        "--camera-info-topic", metavar="TOPIC", help="CameraInfo topic template with {camera}, or a,b,.."
    )
    g.add_argument("--lidar-topic", metavar="TOPIC", help="LiDAR PointCloud2 topic (default: recognised)")
    g.add_argument("--base-frame", metavar="FRAME", help="base frame of extrinsics and boxes (base_link)")
    g.add_argument(
        "--image-rectification",
        choices=IMAGE_RECTIFICATIONS,
        help="rectified images use CameraInfo's P, raw ones K (default auto: from the image topic's name, "
        "image_rect* rectified)",
    )


def _add_dataroot_flags(p: argparse.ArgumentParser, split_default: str) -> None:
    """Which dataset version, split and frame source a command reads (docs/design.md)."""
    g = p.add_argument_group(
        "dataset", "A nuScenes-format dataroot: the synthetic world, or nuScenes itself."
    )
    g.add_argument(
        "--version",
        default="v1.0-synth",
        help="version folder of the tables: v1.0-synth (default), v1.0-mini, v1.0-trainval",
    )
    g.add_argument(
        "--split",
        default=split_default,
        help=f"split (default: {split_default}): a key of VERSION/splits.json, else one of nuScenes' own "
        "(mini_train, mini_val, train, val) restricted to the version's scenes",
    )
    g.add_argument(
        "--frames-from",
        choices=("auto", "bags", "samples"),
        default="auto",
        help="read the frames from DATA/bags/ (one rosbag2 per scene) or from the dataroot's samples/ and "
        "sweeps/ files through the nuScenes devkit; auto (default): the bags when DATA/bags/ exists",
    )


def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="render a synthetic multi-camera + LiDAR world into rosbag2 files and a nuScenes dataroot",
        description="Procedurally generate driving scenes, render N cameras and a spinning LiDAR with one "
        "ray caster, and write one rosbag2 per scene (nuscenes2bag topic layout) plus a nuScenes-format "
        "dataroot of the same scenes (samples/ and sweeps/ with jpg and pcd.bin files, v1.0-synth tables, "
        "splits.json with train/val scenes).",
    )
    p.add_argument("--out", required=True, help="output directory (created; must not hold a dataset already)")
    p.add_argument("--scenes", type=int, default=2, help="number of scenes (default: 2)")
    p.add_argument("--frames-per-scene", type=int, default=4, help="camera cycles (samples) per scene")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same world")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="rosbag2 storage plugin")
    p.add_argument(
        "--render-size",
        "--image-size",  # the earlier name, kept as an alias
        dest="render_size",
        default="224x400",
        help="size HxW the cameras render their images at (default: 224x400); a model resizes to its input",
    )
    p.add_argument("--raw-images", action="store_true", help="write sensor_msgs/Image instead of jpeg")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.5,
        help="share of scenes in the val split (1.0: all val, a test-only world)",
    )
    p.add_argument(
        "--no-lidar",
        action="store_true",
        help="write bags without the LiDAR topic (the dataroot keeps its pcd.bin: the tables need them)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    p.add_argument(
        "--world",
        choices=("v1", "v2"),
        default="v1",
        help="world version: v1 (default; the world of the shipped *_tiny models) or v2 (vehicles with "
        "distinct fronts and backs: the fair benchmark's and the shipped *_v2 models' world)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="render this many scenes at once, one process each (default: 1); the files are the same "
        "bytes for any number",
    )


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="official nuScenes detection metrics (mAP, NDS, TP errors, per-class AP)",
        description="Run the official nuScenes DetectionEval on a nuScenes-format dataset, restricted to the "
        "classes present in the split. Give exactly one of --results, --model, --detections or "
        "--gt-as-results.",
    )
    p.add_argument(
        "--data", required=True, help="dataset root (v1.0-synth/ and bags/, or a nuScenes dataroot)"
    )
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--results", help="nuScenes results JSON to score")
    g.add_argument(
        "--model",
        help="checkpoint directory (or shipped name, e.g. baseline_v3) to run and score; with "
        "--backend onnxruntime also an .onnx file from `simdistill export` (fp32 or --int8)",
    )
    g.add_argument(
        "--detections",
        metavar="BAG",
        help="score the messages of a detection bag (`simdistill detect --outputs vision_msgs autoware`): "
        "boxes and classes from its Detection3DArray, velocities (mAVE) from its DetectedObjects",
    )
    g.add_argument("--gt-as-results", action="store_true", help="score the ground truth itself (mAP 1.0)")
    _add_dataroot_flags(p, "val")
    p.add_argument("--out", help="directory for metrics_summary.json and the results JSON")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (with --model)")
    p.add_argument(
        "--backend",
        choices=("torch", "onnxruntime"),
        default="torch",
        help="with --model: run it with PyTorch or with ONNX Runtime (camera-only models: a checkpoint is "
        "exported on first use; scores the export, or an int8 export, on the same frames and decoding)",
    )
    p.add_argument(
        "--score-threshold",
        type=float,
        default=EVAL_SCORE_THRESHOLD,
        help="detection score threshold (with --model)",
    )
    p.add_argument(
        "--image-noise",
        type=float,
        default=0.0,
        metavar="SIGMA",
        help="with --model: add Gaussian noise of this standard deviation (grey levels, 0-255) to every "
        "camera image, seeded per frame so every model sees the same noise: how much a model leans on "
        "clean pixels (default 0 = none)",
    )
    _add_no_verify(p)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train the teacher, the camera-only baseline or the SimDistill student",
        description="Train a model on the synthetic world or a nuScenes dataroot (v1.0-mini, "
        "v1.0-trainval: --data ROOT --version VERSION). The student is "
        "distilled from --teacher online, or from a stored replay (--targets).",
    )
    p.add_argument("model", choices=("teacher", "baseline", "student"))
    p.add_argument(
        "--config", default="tiny", choices=("tiny", "tiny_v2", "nuscenes"), help="model config preset"
    )
    p.add_argument(
        "--data", help="dataset root with ground truth (the synthetic world, or a nuScenes dataroot)"
    )
    _add_dataroot_flags(p, "train")
    p.add_argument(
        "--lidar-sweeps",
        type=int,
        default=None,
        help="teacher: LiDAR sweeps per frame, earlier sweeps motion-compensated into the key frame with a "
        "time-lag feature (needs --frames-from samples; default: the config's, 1)",
    )
    p.add_argument("--targets", help="teacher replay target store (student only)")
    p.add_argument("--out", required=True, help="run directory: checkpoints, log.csv")
    p.add_argument("--teacher", help="teacher checkpoint (student only, online distillation)")
    p.add_argument(
        "--init-from",
        help="warm start: copy every weight whose name and shape match from this checkpoint (a student "
        "started from its teacher takes the camera branch, fuser, decoder and head; its simulated-LiDAR "
        "branch starts fresh)",
    )
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: 20)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="peak one-cycle learning rate (default: 2e-3 tiny and tiny_v2, 2e-4 nuscenes)",
    )
    p.add_argument(
        "--backbone-lr-scale",
        type=float,
        default=None,
        help="the camera backbone's peak learning rate as a share of --lr (default: 0.1 for an "
        "ImageNet-pretrained backbone, as in tiny_v2; 1 otherwise)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last")
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    p.add_argument(
        "--disable",
        nargs="*",
        default=[],
        choices=("imd", "cmd", "mmd_feat", "mmd_pred", "gcm", "distill"),
        help="ablations: switch off distillation terms or the GCM (student only)",
    )
    p.add_argument(
        "--sim-channels",
        type=int,
        default=None,
        help="width of the student's simulated-LiDAR branch (its lift's context and BEV channels; default: "
        "the config's, 32 in tiny and tiny_v2)",
    )
    p.add_argument(
        "--sim-depthnet-channels",
        type=int,
        default=None,
        help="hidden width of the simulated-LiDAR branch's depth net (default: the config's, 64 in tiny "
        "and tiny_v2)",
    )
    p.add_argument(
        "--sim-gcm-stride",
        type=int,
        default=None,
        help="run the simulated-LiDAR branch's BEV GCM on the BEV average-pooled by this factor (default: "
        "1). The README's light branch (arm student_light) is --sim-channels 8 --sim-depthnet-channels 32 "
        "--sim-gcm-stride 2",
    )
    p.add_argument(
        "--image-noise",
        type=float,
        default=0.0,
        metavar="SIGMA",
        help="training images get Gaussian noise of a standard deviation drawn per camera from [0, SIGMA] "
        "(0-255 pixel units; default 0 = off)",
    )
    p.add_argument(
        "--color-jitter",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="training images get a gain and a contrast factor drawn per camera from 1 +- FRACTION "
        "(default 0 = off)",
    )
    p.add_argument(
        "--depth-weight",
        type=float,
        default=None,
        help="weight of the LiDAR depth supervision of the camera branch's depth net (BCE on the one-hot bin "
        "of each image feature cell a LiDAR return hits; any model type, LiDAR needed at training time "
        "only; default: the preset's, 0 = off)",
    )
    p.add_argument(
        "--feature-loss",
        choices=("mse", "balanced"),
        default=None,
        help="how the student's feature terms (IMD, CMD, MMD-F) compare BEV maps: 'mse' is SimDistill's "
        "(the default), 'balanced' scales each channel by the teacher's RMS and averages foreground and "
        "background cells apart (weights: --loss-weights feature_fg=.. feature_bg=..)",
    )
    p.add_argument(
        "--loss-weights",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="set loss weights of the model config, e.g. imd=0.5 cmd=2 (names: gt_heatmap, gt_bbox, imd, "
        "cmd, mmd_feat, mmd_pred_heatmap, mmd_pred_box, depth, feature_fg, feature_bg)",
    )
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (smoke runs)")
    p.add_argument(
        "--snapshot-steps",
        type=int,
        nargs="+",
        default=[],
        metavar="N",
        help="also save the weights after these steps as OUT/step_N (to score a run part way: has it "
        "converged?)",
    )
    p.add_argument(
        "--pseudo-labels",
        action="store_true",
        help="with --targets: train on the teacher's boxes even where the store has ground truth",
    )
    p.add_argument(
        "--pseudo-label-threshold",
        type=float,
        default=PSEUDO_LABEL_THRESHOLD,
        help=f"teacher score for a pseudo-label box (default {PSEUDO_LABEL_THRESHOLD})",
    )
    _add_no_verify(p)
    _add_sensor_flags(p)


def _add_detect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "detect",
        help="run a model over a bag and write a bag of its detections (Detection3DArray and/or Autoware "
        "DetectedObjects) + MarkerArray (+ pictures)",
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help="checkpoint directory or shipped model name")
    p.add_argument("--bag", required=True, help="input rosbag2 (mcap or sqlite3)")
    p.add_argument("--out", required=True, help="output rosbag2 path")
    p.add_argument("--png", help="directory for per-frame pictures (BEV + cameras)")
    p.add_argument("--data", help="dataset root with ground truth to draw in the pictures")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--backend",
        choices=("torch", "onnxruntime"),
        default="torch",
        help="run the model with PyTorch or with ONNX Runtime (--model may then be an .onnx file from "
        "`simdistill export`; a checkpoint is exported on first use and cached)",
    )
    p.add_argument(
        "--score-threshold",
        type=float,
        default=DEFAULT_SCORE_THRESHOLD,
        help=f"minimum score kept (default {DEFAULT_SCORE_THRESHOLD}, as the node)",
    )
    p.add_argument(
        "--outputs",
        nargs="+",
        choices=("vision_msgs", "autoware"),
        default=["vision_msgs"],
        help="detection messages to write, as the node's `outputs` parameter: vision_msgs "
        "(vision_msgs/Detection3DArray on /simdistill_detector/detections), autoware "
        "(autoware_perception_msgs/DetectedObjects with velocity on /simdistill_detector/objects), or both "
        "(default vision_msgs)",
    )
    p.add_argument(
        "--orientation-availability",
        choices=("available", "sign_unknown", "unavailable"),
        default="sign_unknown",
        help="DetectedObjects' orientation_availability (default sign_unknown: the shipped models reverse "
        "about a third of the cars; see the README)",
    )
    _add_no_verify(p)
    p.add_argument("--strict", action="store_true", help="exit 1 when any frame was skipped")
    _add_sensor_flags(p)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a camera-only model (baseline, student) to ONNX: images + splat geometry -> head maps",
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help="checkpoint directory or shipped model name")
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument(
        "--cameras", type=int, default=6, help="cameras of the example input (the graph takes any number)"
    )
    p.add_argument(
        "--int8",
        action="store_true",
        help="quantise the convolutions to int8 (static, per-channel weights), calibrated on "
        "--calibration-data",
    )
    p.add_argument(
        "--calibration-data", help="dataset root whose frames calibrate the int8 activation ranges"
    )
    p.add_argument(
        "--calibration-split", default="train", help="split of --calibration-data (default: train)"
    )
    p.add_argument(
        "--calibration-frames", type=int, default=32, help="frames spread over the split (default: 32)"
    )


def _add_replay(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="run the teacher over bags with LiDAR and store distillation targets",
    )
    p.add_argument("--teacher", default=DEFAULT_TEACHER, help="teacher checkpoint directory or shipped name")
    p.add_argument("--bags", nargs="+", help="rosbag2 paths")
    p.add_argument("--out", required=True, help="target store directory")
    p.add_argument(
        "--shard",
        default="0/1",
        help="I/N: process every N-th bag (sorted by path) starting at I; under torchrun RANK/WORLD_SIZE",
    )
    p.add_argument("--data", help="dataset root whose ground truth is stored beside the targets")
    p.add_argument("--device", default="auto")
    p.add_argument("--frames-per-shard", type=int, default=16, help="frames per shard file (default: 16)")
    p.add_argument("--merge", nargs="+", metavar="STORE", help="merge these stores into --out (no replay)")
    p.add_argument(
        "--verify", action="store_true", help="check every shard of --out (sha256), print size and read speed"
    )
    _add_no_verify(p)
    p.add_argument("--strict", action="store_true", help="exit 1 when any frame was skipped")
    _add_sensor_flags(p)


def _add_nuscenes_to_bag(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "nuscenes-to-bag",
        help="write a nuScenes dataroot's scenes as rosbag2 files the detector node and the replay read",
        description="One rosbag2 per scene, every camera and LiDAR sample_data in time order (key frames and "
        "sweeps): the jpgs as CompressedImage with CameraInfo, the LiDAR as PointCloud2 (x, y, z, "
        "intensity), "
        "/tf map -> base_link from the ego poses and /tf_static base_link -> each sensor. Radar is left out.",
    )
    p.add_argument("--data", required=True, help="nuScenes dataroot (samples/, sweeps/, VERSION/)")
    p.add_argument("--version", default="v1.0-mini", help="version folder (default: v1.0-mini)")
    p.add_argument("--out", required=True, help="folder for the bags (one <scene>/ per scene)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--split", help="only this split's scenes (splits.json key or a nuScenes split)")
    g.add_argument("--scenes", nargs="+", metavar="NAME", help="only these scenes")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="rosbag2 storage plugin")
    p.add_argument("--overwrite", action="store_true", help="replace bags that exist")


def _add_no_verify(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="load checkpoints without checking their weights against the sha256 in meta.json",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simdistill",
        description="SimDistill for ROS 2: camera-only 3D detection distilled from a LiDAR-camera teacher.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _add_synth,
        _add_train,
        _add_evaluate,
        _add_detect,
        _add_export,
        _add_replay,
        _add_nuscenes_to_bag,
    ):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Multi-threaded BLAS on thin (N, 3) @ (3, 3) products costs more than it saves on small machines.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    bound_openmp_spin()  # before any subcommand imports torch
    args = build_parser().parse_args(argv)
    try:
        if args.command == "synth":
            from simdistill_ros.synth.command import run_synth_command

            return run_synth_command(args)
        if args.command == "evaluate":
            from simdistill_ros.evaluation.command import run_evaluate_command

            return run_evaluate_command(args)
        if args.command == "train":
            from simdistill_ros.training.command import run_train_command

            return run_train_command(args)
        if args.command == "detect":
            from simdistill_ros.detection.command import run_detect_command

            return run_detect_command(args)
        if args.command == "export":
            from simdistill_ros.deployment.export_command import run_export_command

            return run_export_command(args)
        if args.command == "replay":
            from simdistill_ros.replay.command import run_replay_command

            return run_replay_command(args)
        if args.command == "nuscenes-to-bag":
            from simdistill_ros.dataset.to_bag import run_nuscenes_to_bag_command

            return run_nuscenes_to_bag_command(args)
    except (UserError, FileNotFoundError) as exc:
        print(f"simdistill {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        missing = missing_package_error(exc)
        if missing is None:
            raise
        print(f"simdistill {args.command}: error: {missing}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"simdistill {args.command}: interrupted", file=sys.stderr)
        return 130
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
