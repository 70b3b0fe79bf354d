"""`simdistill train {teacher,baseline,student}`."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import subprocess
from pathlib import Path

import torch

from simdistill_ros.dataset.nuscenes_tables import DEFAULT_VERSION
from simdistill_ros.dataset.split_frames import frames_source_of, open_split_frames
from simdistill_ros.errors import UserError
from simdistill_ros.frames.sensors import sensor_config_from_args
from simdistill_ros.models import (
    CheckpointError,
    build_model,
    load_checkpoint,
    load_matching_weights,
    resolve_model_path,
    save_checkpoint,
)
from simdistill_ros.models.config import PRESETS
from simdistill_ros.training.augment import ImageAugConfig
from simdistill_ros.training.batch import collate
from simdistill_ros.training.dataset import FrameDataset
from simdistill_ros.training.distributed import init_distributed, shutdown_distributed
from simdistill_ros.training.loop import OptimConfig, TrainingDiverged, format_log_row, train
from simdistill_ros.training.objectives import (
    BaselineObjective,
    OnlineDistillationObjective,
    TeacherObjective,
)
from simdistill_ros.training.store_dataset import (
    StoredDistillationObjective,
    collate_stored,
    open_training_store,
)

# Peak one-cycle learning rate per config preset. The nuScenes-scale models use the reference 2e-4; the tiny
# models train from scratch in about a thousand steps, where 2e-4 leaves them far from converged (teacher on
# 72 frames, train loss after 3 epochs: 4.3 at 2e-4 against 3.0 at 2e-3).
DEFAULT_LR = {"tiny": 2e-3, "tiny_v2": 2e-3, "nuscenes": 2e-4}
# A pretrained (ImageNet) camera backbone is fine-tuned at a tenth of the peak rate, as detectors commonly
# fine-tune pretrained backbones; one trained from scratch learns at the full rate.
PRETRAINED_BACKBONE_LR_SCALE = 0.1


def optim_config(args: argparse.Namespace) -> OptimConfig:
    """The optimiser schedule of ``simdistill train`` (the same for online and store-based training)."""
    return OptimConfig(
        epochs=args.epochs or 20,
        batch_size=args.batch_size or 4,
        lr=args.lr or DEFAULT_LR[args.config],
        seed=args.seed,
        workers=args.workers,
        max_steps=args.max_steps,
        backbone_lr_scale=backbone_lr_scale(args),
    )


def backbone_lr_scale(args: argparse.Namespace) -> float:
    """``--backbone-lr-scale``, or 0.1 for a preset whose backbone starts from ImageNet, else 1."""
    if getattr(args, "backbone_lr_scale", None) is not None:
        return args.backbone_lr_scale
    return PRETRAINED_BACKBONE_LR_SCALE if PRESETS[args.config]().backbone.pretrained else 1.0


def data_hash(dataroot: Path, version: str = DEFAULT_VERSION) -> str:
    """Short hash of the labels and splits: what a checkpoint was trained on."""
    h = hashlib.sha256()
    for name in ("splits.json", "sample.json", "sample_annotation.json"):
        p = dataroot / version / name
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def build_config(args: argparse.Namespace):
    cfg = PRESETS[args.config]()
    disabled = set(args.disable)
    if args.model != "student" and disabled:
        raise UserError("--disable applies to the student only")
    loss = cfg.loss
    if "distill" in disabled:
        disabled |= {"imd", "cmd", "mmd_feat", "mmd_pred"}
    cfg.loss = dataclasses.replace(
        loss,
        use_imd=loss.use_imd and "imd" not in disabled,
        use_cmd=loss.use_cmd and "cmd" not in disabled,
        use_mmd_feat=loss.use_mmd_feat and "mmd_feat" not in disabled,
        use_mmd_pred=loss.use_mmd_pred and "mmd_pred" not in disabled,
    )
    if "gcm" in disabled:
        cfg.gcm = dataclasses.replace(cfg.gcm, enabled=False)
    _apply_loss_options(args, cfg)
    _apply_sim_branch_options(args, cfg)
    return cfg


WEIGHT_NAMES = (
    "gt_heatmap",
    "gt_bbox",
    "imd",
    "cmd",
    "mmd_feat",
    "mmd_pred_heatmap",
    "mmd_pred_box",
    "depth",
    "feature_fg",
    "feature_bg",
)


def _apply_loss_options(args: argparse.Namespace, cfg) -> None:
    """--depth-weight, --feature-loss and --loss-weights NAME=VALUE into ``cfg.loss``."""
    changes: dict = {}
    for item in getattr(args, "loss_weights", None) or []:
        name, sep, value = item.partition("=")
        if not sep or name not in WEIGHT_NAMES:
            raise UserError(
                f"--loss-weights {item}: expected NAME=VALUE with NAME one of {', '.join(WEIGHT_NAMES)}"
            )
        try:
            changes[name] = float(value)
        except ValueError:
            raise UserError(f"--loss-weights {item}: {value!r} is not a number") from None
    if getattr(args, "depth_weight", None) is not None:
        changes["depth"] = args.depth_weight
    for name, value in changes.items():
        if not value >= 0.0 or value == float("inf"):
            raise UserError(f"loss weight {name}={value}: must be a finite number >= 0")
    if getattr(args, "feature_loss", None):
        changes["feature_loss"] = args.feature_loss
    distill_only = {"imd", "cmd", "mmd_feat", "mmd_pred_heatmap", "mmd_pred_box", "feature_fg", "feature_bg"}
    if args.model != "student" and (distill_only & set(changes) or "feature_loss" in changes):
        raise UserError("the distillation weights and --feature-loss apply to the student only")
    cfg.loss = dataclasses.replace(cfg.loss, **changes)


def _apply_sim_branch_options(args: argparse.Namespace, cfg) -> None:
    """--sim-channels / --sim-depthnet-channels / --sim-gcm-stride: the simulated-LiDAR branch's size."""
    given = {
        flag: value
        for flag, value in (
            ("--sim-channels", getattr(args, "sim_channels", None)),
            ("--sim-depthnet-channels", getattr(args, "sim_depthnet_channels", None)),
            ("--sim-gcm-stride", getattr(args, "sim_gcm_stride", None)),
        )
        if value is not None
    }
    if given and args.model != "student":
        raise UserError(f"{', '.join(given)} applies to the student only")
    sim = given.get("--sim-channels")
    if sim is not None:
        if sim < 1 or sim % cfg.gcm.bev_heads or sim % 4:
            heads = cfg.gcm.bev_heads
            raise UserError(
                f"--sim-channels {sim}: must be a positive multiple of 4 and of the BEV GCM's {heads} heads"
            )
        cfg.sim_context_channels = cfg.sim_bev_channels = sim
    depthnet = given.get("--sim-depthnet-channels")
    if depthnet is not None:
        if depthnet < 1:
            raise UserError(f"--sim-depthnet-channels {depthnet}: must be positive")
        cfg.sim_depthnet_channels = depthnet
    stride = given.get("--sim-gcm-stride")
    if stride is not None:
        bx, by = cfg.grid.bev_shape
        if stride < 1 or bx % stride or by % stride:
            raise UserError(f"--sim-gcm-stride {stride}: must be >= 1 and divide the {bx}x{by} BEV grid")
        cfg.gcm = dataclasses.replace(cfg.gcm, bev_stride=stride)


def needs_teacher(cfg) -> bool:
    w = cfg.loss
    return any((w.use_imd, w.use_cmd, w.use_mmd_feat, w.use_mmd_pred))


def image_aug_config(args: argparse.Namespace) -> ImageAugConfig:
    """--image-noise and --color-jitter on top of the default image augmentation."""
    noise, jitter = getattr(args, "image_noise", 0.0), getattr(args, "color_jitter", 0.0)
    if not 0.0 <= noise < float("inf"):
        raise UserError(f"--image-noise {noise}: must be a finite number >= 0")
    if not 0.0 <= jitter < 1.0:
        raise UserError(f"--color-jitter {jitter}: must be in [0, 1)")
    return ImageAugConfig(brightness=jitter, contrast=jitter, noise_sigma=noise)


def run_train_command(args: argparse.Namespace) -> int:
    image_aug = image_aug_config(args)
    if args.targets:
        if args.model != "student":
            raise UserError("--targets (a teacher replay store) trains the student only")
        if image_aug.photometric:
            raise UserError("--image-noise and --color-jitter need --data: a target store trains unaugmented")
        return _train_from_store(args)
    if getattr(args, "pseudo_labels", False):
        raise UserError("--pseudo-labels needs --targets (the teacher's stored boxes)")
    if not args.data:
        raise UserError("--data is required")
    dataroot = Path(args.data)
    version = getattr(args, "version", DEFAULT_VERSION)
    frames_from = frames_source_of(dataroot, getattr(args, "frames_from", "auto"))
    if not (dataroot / version).is_dir():
        raise UserError(f"{dataroot} holds no {version}/ tables (make one with `simdistill synth`)")
    cfg = build_config(args)
    sweeps = getattr(args, "lidar_sweeps", None)
    if sweeps is not None:
        if args.model != "teacher" or sweeps < 1:
            raise UserError("--lidar-sweeps N (N >= 1) applies to the teacher only")
        cfg.pillars = dataclasses.replace(cfg.pillars, lidar_sweeps=sweeps)
    ctx = init_distributed(args.device)
    torch.manual_seed(args.seed)
    try:
        teacher = None
        if args.model == "student" and needs_teacher(cfg):
            if not args.teacher:
                raise UserError("distilling a student needs --teacher CKPT (or --disable distill)")
            teacher, tcfg, tmeta = load_checkpoint(
                resolve_model_path(args.teacher), map_location=ctx.device, verify=not args.no_verify
            )
            if tmeta.get("model_type") != "teacher":
                raise UserError(f"{args.teacher} is a {tmeta.get('model_type')} checkpoint, not a teacher")
            if tcfg.grid != cfg.grid:
                raise UserError("the teacher's BEV grid differs from the student's config")
        # LiDAR is loaded for the models that read it: the teacher, the online teacher, depth supervision
        with_points = args.model == "teacher" or teacher is not None or cfg.loss.depth > 0.0
        frames = open_split_frames(
            dataroot,
            getattr(args, "split", None) or "train",
            version,
            sensors=sensor_config_from_args(args),
            source=frames_from,
            lidar_sweeps=(tcfg if teacher is not None else cfg).pillars.lidar_sweeps,
            with_points=with_points,
        )
        if not len(frames):
            raise UserError(
                f"the train split of {dataroot} holds no frames (a world made with --val-fraction 1.0 "
                "is for evaluation only)"
            )
        cameras = frames.camera_names
        h, w = cfg.input_hw
        dataset = FrameDataset(frames, (h, w), augment=True, with_points=with_points, image_aug=image_aug)
        optim = optim_config(args)
        model = build_model(args.model, cfg)
        _warm_start(model, args, ctx)
        if args.model == "teacher":
            objective = TeacherObjective(cfg)
        elif args.model == "baseline" or teacher is None:
            objective = BaselineObjective(cfg)
        else:
            objective = OnlineDistillationObjective(cfg, teacher)
        run_dir = Path(args.out)
        base_meta = {
            "model_type": args.model,
            "data": str(dataroot.resolve()),
            "data_hash": data_hash(dataroot, version),
            "data_version": version,
            "frames_from": frames_from,
            "commit": git_commit(),
            "teacher": str(args.teacher or ""),
            "init_from": str(args.init_from or ""),
            "disabled": sorted(args.disable),
            "command": "simdistill train " + " ".join(_argv(args)),
            "train_frames": len(dataset),
            "cameras": list(cameras),  # the rig the model learned: the camera order detect/the node use
        }

        if ctx.is_main:
            print(
                f"training {args.model} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params) on "
                f"{len(dataset)} frames, {optim.epochs} epochs, batch {optim.batch_size} x {ctx.world_size}"
            )
        _fit(model, cfg, objective, dataset, collate, optim, run_dir, base_meta, ctx, args)
    finally:
        shutdown_distributed()
    return 0


def _warm_start(model, args: argparse.Namespace, ctx) -> None:
    """--init-from: copy the matching weights of a checkpoint (before --resume, which overrides them)."""
    if not args.init_from:
        return
    try:
        copied, fresh = load_matching_weights(
            model, resolve_model_path(args.init_from), verify=not args.no_verify
        )
    except (CheckpointError, FileNotFoundError) as e:
        raise UserError(f"--init-from: {e}") from None
    if ctx.is_main:
        print(f"initialised {len(copied)} tensors from {args.init_from}; {len(fresh)} start fresh")


def _fit(model, cfg, objective, dataset, collate, optim, run_dir: Path, base_meta: dict, ctx, args) -> None:
    """Run the training loop with checkpoints carrying ``base_meta``; a diverged run is a UserError."""

    def save(path: Path, extra: dict) -> None:
        save_checkpoint(path, model, cfg, {**base_meta, **extra})

    try:
        row = train(
            model,
            objective,
            dataset,
            collate,
            optim,
            run_dir,
            save,
            ctx,
            resume=args.resume,
            verify=not args.no_verify,
            snapshot_steps=getattr(args, "snapshot_steps", None) or (),
        )
    except TrainingDiverged as exc:
        raise UserError(str(exc)) from None
    if ctx.is_main:
        print(f"done: {format_log_row(row)}; checkpoint {run_dir / 'last'}")


def store_label_note(frames: int, with_gt: int, threshold: float) -> str:
    """Where the labels of a store-based run come from, e.g. "640 frames, 600 with ground truth, the other
    40 on teacher pseudo-labels >= 0.3"; only the sources that occur are named."""
    if with_gt >= frames:
        return f"{frames} frames, all with ground truth"
    if with_gt == 0:
        return f"{frames} frames, all on teacher pseudo-labels >= {threshold}"
    return (
        f"{frames} frames, {with_gt} with ground truth, the other {frames - with_gt} on teacher "
        f"pseudo-labels >= {threshold}"
    )


def _train_from_store(args: argparse.Namespace) -> int:
    """The student distilled from a teacher replay store (no teacher, no LiDAR, labels optional)."""
    if args.teacher:
        raise UserError("give --targets or --teacher, not both (the store holds the teacher's outputs)")
    cfg = build_config(args)
    if not needs_teacher(cfg):
        raise UserError("--targets with every distillation term disabled: train with --data instead")
    dataset = open_training_store(args.targets, cfg, args.pseudo_labels, args.pseudo_label_threshold)
    store = dataset.store
    ctx = init_distributed(args.device)
    torch.manual_seed(args.seed)
    try:
        optim = optim_config(args)
        model = build_model("student", cfg)
        _warm_start(model, args, ctx)
        with_gt = 0 if args.pseudo_labels else store.summary()["frames_with_gt"]
        base_meta = {
            "model_type": "student",
            "targets": str(Path(args.targets).resolve()),
            "teacher_hash": store.teacher["hash"],
            "teacher": store.teacher.get("path", ""),
            "data": str(args.data or ""),
            "init_from": str(args.init_from or ""),
            "commit": git_commit(),
            "disabled": sorted(args.disable),
            "command": "simdistill train " + " ".join(_argv(args)),
            "train_frames": len(dataset),
            "frames_with_gt": with_gt,
            "cameras": list(store[0].cameras) if len(store) else [],
        }

        if ctx.is_main:
            print(
                f"training student from target store {args.targets} ("
                f"{store_label_note(len(dataset), with_gt, args.pseudo_label_threshold)}), "
                f"{optim.epochs} epochs, batch {optim.batch_size} x {ctx.world_size}"
            )
        _fit(
            model,
            cfg,
            StoredDistillationObjective(cfg),
            dataset,
            collate_stored,
            optim,
            Path(args.out),
            base_meta,
            ctx,
            args,
        )
    finally:
        shutdown_distributed()
    return 0


def _argv(args: argparse.Namespace) -> list[str]:
    out = [args.model]
    for k, v in vars(args).items():
        if k in ("command", "model") or v in (None, False, [], ""):
            continue
        out += [f"--{k.replace('_', '-')}"] + (
            [] if v is True else [str(x) for x in (v if isinstance(v, list) else [v])]
        )
    return out
