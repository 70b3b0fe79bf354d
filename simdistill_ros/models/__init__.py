"""Detectors (plain PyTorch): the LiDAR-camera teacher, the camera-only baseline, the SimDistill student."""

from simdistill_ros.models.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_matching_weights,
    load_state_into,
    save_checkpoint,
)
from simdistill_ros.models.config import (
    BackboneConfig,
    BEVGridConfig,
    DecoderConfig,
    GCMConfig,
    HeadConfig,
    LossWeights,
    ModelConfig,
    PillarConfig,
    ViewTransformConfig,
    nuscenes,
    tiny,
)
from simdistill_ros.models.detectors import (
    MODEL_TYPES,
    BaselineModel,
    StudentModel,
    TeacherModel,
    build_model,
)
from simdistill_ros.models.structures import CameraInputs, Detections, DetectorOutputs

__all__ = [
    "MODEL_TYPES",
    "BEVGridConfig",
    "BackboneConfig",
    "BaselineModel",
    "CameraInputs",
    "CheckpointError",
    "DecoderConfig",
    "Detections",
    "DetectorOutputs",
    "GCMConfig",
    "HeadConfig",
    "LossWeights",
    "ModelConfig",
    "PillarConfig",
    "StudentModel",
    "TeacherModel",
    "ViewTransformConfig",
    "build_model",
    "load_checkpoint",
    "load_matching_weights",
    "load_state_into",
    "nuscenes",
    "tiny",
    "save_checkpoint",
]
