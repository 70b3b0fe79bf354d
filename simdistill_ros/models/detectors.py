"""The detectors: LiDAR-camera teacher, camera-only baseline (BEVFusion-C analogue), SimDistill student."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from simdistill_ros.models.backbone import build_backbone, conv_bn_relu
from simdistill_ros.models.bev_decoder import BEVDecoder
from simdistill_ros.models.config import ModelConfig
from simdistill_ros.models.fpn import FPN
from simdistill_ros.models.fuser import ConvFuser
from simdistill_ros.models.gcm import GeometryCompensation
from simdistill_ros.models.head import CenterHead
from simdistill_ros.models.lift_splat import LiftSplat, LiftSplatOutput, SplatGeometry
from simdistill_ros.models.pillars import PillarEncoder
from simdistill_ros.models.structures import CameraInputs, Detections, DetectorOutputs


class CameraBranch(nn.Module):
    """Backbone -> FPN (stride 8) -> LiftSplat.

    forward: CameraInputs[, SplatGeometry] -> (LiftSplatOutput with bev (B, C_cam, X, Y), image features
        (B*N, C_neck, fH, fW)); the geometry is computed (and cached) from the calibration when not given.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.backbone = build_backbone(cfg.backbone)
        self.neck = FPN(self.backbone.out_channels, cfg.backbone.neck_channels)
        vt = cfg.view_transform
        self.view_transform = LiftSplat(
            cfg.grid,
            cfg.backbone.neck_channels,
            vt.context_channels,
            vt.out_channels,
            vt.depthnet_channels,
            vt.cache_size,
        )
        self.out_channels = vt.out_channels

    def image_features(self, images: Tensor) -> Tensor:
        """(B, N, 3, H, W) -> (B*N, C_neck, H/8, W/8)."""
        return self.neck(self.backbone(images.flatten(0, 1)))

    def forward(
        self, cameras: CameraInputs, geometry: SplatGeometry | None = None
    ) -> tuple[LiftSplatOutput, Tensor]:
        feats = self.image_features(cameras.images)
        hw = (cameras.images.shape[-2], cameras.images.shape[-1])
        return self.view_transform(feats, cameras.intrinsics, cameras.cam_to_base, hw, geometry), feats


class _Detector(nn.Module):
    model_type = ""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self._frozen = False

    def freeze(self) -> _Detector:
        """Eval mode and no gradients, permanently (``train()`` keeps it in eval). Returns self."""
        self.eval()
        self.requires_grad_(False)
        self._frozen = True
        return self

    def train(self, mode: bool = True) -> _Detector:
        return super().train(mode and not self._frozen)

    def _decode(
        self,
        out: DetectorOutputs,
        score_threshold: float | None,
        max_detections: int | None,
        nms: bool | None,
    ) -> list[Detections]:
        return self.head.decode(out.head, score_threshold, max_detections, nms)  # type: ignore[attr-defined]


class _CameraDetector(_Detector):
    """A camera-only detector (baseline, student): ``detect`` takes the cameras alone."""

    def detect(
        self,
        cameras: CameraInputs,
        score_threshold: float | None = None,
        max_detections: int | None = None,
        nms: bool | None = None,
    ) -> list[Detections]:
        """Forward (no grad, current train/eval mode: call ``eval()`` first) and decode, per sample."""
        with torch.no_grad():
            return self._decode(self(cameras), score_threshold, max_detections, nms)


class TeacherModel(_Detector):
    """LiDAR-camera fusion: camera LSS BEV + pillar LiDAR BEV -> ConvFuser -> BEV decoder -> CenterHead.

    forward(cameras, points) -> DetectorOutputs (camera_bev, lidar_bev, fused_bev, head, depth).
    """

    model_type = "teacher"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.camera = CameraBranch(config)
        self.lidar = PillarEncoder(config.grid, config.pillars)
        self.fuser = ConvFuser([self.camera.out_channels, config.pillars.out_channels], config.fused_channels)
        self.decoder = BEVDecoder(config.fused_channels, config.decoder)
        self.head = CenterHead(config.decoder.out_channels, config.grid, config.head)

    def forward(self, cameras: CameraInputs, points: list[Tensor]) -> DetectorOutputs:
        if len(points) != cameras.batch_size:
            raise ValueError(f"got {len(points)} point clouds for a batch of {cameras.batch_size}")
        cam, _ = self.camera(cameras)
        lidar_bev = self.lidar(points)
        fused = self.fuser([cam.bev, lidar_bev])
        head = self.head(self.decoder(fused))
        return DetectorOutputs(cam.bev, lidar_bev, fused, head, cam.depth)

    def detect(
        self,
        cameras: CameraInputs,
        points: list[Tensor],
        score_threshold: float | None = None,
        max_detections: int | None = None,
        nms: bool | None = None,
    ) -> list[Detections]:
        """Forward (no grad, current train/eval mode: call ``eval()`` first) and decode, per sample."""
        with torch.no_grad():
            return self._decode(self(cameras, points), score_threshold, max_detections, nms)


class BaselineModel(_CameraDetector):
    """Camera only (BEVFusion-C analogue): camera LSS BEV -> BEV decoder -> CenterHead.

    forward(cameras[, geometry]) -> DetectorOutputs with lidar_bev None and fused_bev = camera_bev; a given
    SplatGeometry replaces the one computed from the calibration (ONNX export feeds it as inputs).
    """

    model_type = "baseline"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.camera = CameraBranch(config)
        self.decoder = BEVDecoder(self.camera.out_channels, config.decoder)
        self.head = CenterHead(config.decoder.out_channels, config.grid, config.head)

    def forward(self, cameras: CameraInputs, geometry: SplatGeometry | None = None) -> DetectorOutputs:
        cam, _ = self.camera(cameras, geometry)
        head = self.head(self.decoder(cam.bev))
        return DetectorOutputs(cam.bev, None, cam.bev, head, cam.depth)


class SimulatedLidarBranch(nn.Module):
    """Image features -> image-view GCM -> its own lift (depth + context) splatted with the camera branch's
    cached geometry -> BEV GCM -> adapter to the teacher's LiDAR BEV channel count.

    forward: feats (B*N, C_neck, fH, fW), CameraInputs, the camera branch's SplatGeometry
        -> (B, C_lidar, X, Y)
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        g, neck = config.gcm, config.backbone.neck_channels
        self.image_gcm: nn.Module = (
            GeometryCompensation(neck, g.image_heads, g.image_points) if g.enabled else nn.Identity()
        )
        self.lift = LiftSplat(
            config.grid,
            neck,
            config.sim_context_channels,
            config.sim_bev_channels,
            config.sim_depthnet_channels,
            cache_size=1,
        )
        self.bev_gcm: nn.Module = (
            GeometryCompensation(config.sim_bev_channels, g.bev_heads, g.bev_points, g.bev_stride)
            if g.enabled
            else nn.Identity()
        )
        c_lidar = config.pillars.out_channels
        self.adapter = nn.Sequential(
            conv_bn_relu(config.sim_bev_channels, c_lidar, 3), nn.Conv2d(c_lidar, c_lidar, 1)
        )

    def forward(self, feats: Tensor, cameras: CameraInputs, geometry: SplatGeometry) -> Tensor:
        x = self.image_gcm(feats)
        hw = (cameras.images.shape[-2], cameras.images.shape[-1])
        bev = self.lift(x, cameras.intrinsics, cameras.cam_to_base, hw, geometry=geometry).bev
        return self.adapter(self.bev_gcm(bev))


class StudentModel(_CameraDetector):
    """SimDistill student, camera only: camera LSS BEV + simulated-LiDAR BEV (both from the images) ->
    ConvFuser -> BEV decoder -> CenterHead. ``config.gcm.enabled=False`` is the "GCM removed" ablation.

    forward(cameras[, geometry]) -> DetectorOutputs; lidar_bev is the simulated-LiDAR BEV after the adapter.
    Both branches splat with the one (cached) geometry of the camera branch.
    """

    model_type = "student"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.camera = CameraBranch(config)
        self.sim_lidar = SimulatedLidarBranch(config)
        self.fuser = ConvFuser([self.camera.out_channels, config.pillars.out_channels], config.fused_channels)
        self.decoder = BEVDecoder(config.fused_channels, config.decoder)
        self.head = CenterHead(config.decoder.out_channels, config.grid, config.head)

    def forward(self, cameras: CameraInputs, geometry: SplatGeometry | None = None) -> DetectorOutputs:
        cam, feats = self.camera(cameras, geometry)
        sim = self.sim_lidar(feats, cameras, cam.geometry)
        fused = self.fuser([cam.bev, sim])
        head = self.head(self.decoder(fused))
        return DetectorOutputs(cam.bev, sim, fused, head, cam.depth)


MODEL_TYPES: dict[str, type[_Detector]] = {
    "teacher": TeacherModel,
    "baseline": BaselineModel,
    "student": StudentModel,
}


def build_model(model_type: str, config: ModelConfig) -> _Detector:
    """One of "teacher", "baseline", "student"."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown model type {model_type!r}; expected one of {sorted(MODEL_TYPES)}")
    return MODEL_TYPES[model_type](config)
