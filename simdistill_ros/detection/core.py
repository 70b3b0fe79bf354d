"""DetectorCore: one synchronised multi-camera frame -> Box3D detections in the base frame. No ROS.

The live node and ``simdistill detect`` both call :meth:`DetectorCore.detect`, so a bag replayed through
the node and the same bag run offline give the same boxes. Model inputs are built by
:mod:`simdistill_ros.models.preprocess`, the rule training and evaluation use, so the model sees at run
time what it saw when it was scored; the per-rig part (pixel maps, K') is cached per calibration.

Two backends run the model: ``torch`` (the checkpoint's nn.Module) and ``onnxruntime`` (its ONNX export,
:mod:`simdistill_ros.deployment.onnx_runtime`); both decode the head's maps with the same Python code.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from simdistill_ros.defaults import DEFAULT_SCORE_THRESHOLD
from simdistill_ros.deployment.export import geometry_inputs
from simdistill_ros.deployment.onnx_runtime import OnnxRuntimeRunner, check_backend, load_runner
from simdistill_ros.errors import UserError
from simdistill_ros.geometry import Box3D, boxes_from_array, intrinsics_problem
from simdistill_ros.models import CameraInputs, load_model
from simdistill_ros.models.batchnorm_fold import fold_batchnorm
from simdistill_ros.models.checkpoint import CheckpointWarning, resolve_device
from simdistill_ros.models.head import decode_head_maps
from simdistill_ros.models.lift_splat import splat_geometry
from simdistill_ros.models.preprocess import normalize_image, resize_affine, warp_image


class FrameInputError(UserError):
    """One frame's input cannot be used (camera set, image layout, calibration): skip the frame."""


@dataclass
class CameraFrame:
    """One camera's share of a frame.

    image: (H, W, 3) uint8 RGB.
    intrinsics: the camera matrix (3, 3) (P's for rectified images, else K) for images of ``info_hw`` =
        (height, width) as the CameraInfo states them; ``None`` or (0, 0) means "the image's own size".
    cam_to_base: (4, 4) optical frame (x right, y down, z forward) -> base frame.
    """

    name: str
    image: np.ndarray
    intrinsics: np.ndarray
    cam_to_base: np.ndarray
    info_hw: tuple[int, int] | None = None
    stamp_ns: int = 0


@dataclass
class FrameResult:
    """Detections of one frame (base frame) and where the time went: preprocess (validation, resize,
    normalisation, rig geometry), model (the network up to the head's maps), postprocess (peaks, NMS,
    boxes)."""

    stamp_ns: int
    boxes: list[Box3D]
    preprocess_ms: float
    model_ms: float
    geometry_updated: bool  # the calibration differed from the previous frame's
    postprocess_ms: float = 0.0


@dataclass
class CameraTensor:
    """One camera's model input made ahead of the frame (the live node makes it as the image arrives):
    the pixel map it was made with, (3, H, W) float32 normalised. Used only if the frame's map is the same."""

    affine: np.ndarray
    tensor: np.ndarray


@dataclass
class _Geometry:
    """Per-rig tensors, rebuilt only when the calibration (or an image size) changes."""

    key: bytes
    affines: list[np.ndarray]  # per camera (3, 3): source pixels -> model input pixels
    intrinsics: torch.Tensor  # (1, N, 3, 3) for the model input
    cam_to_base: torch.Tensor  # (1, N, 4, 4)
    splat: dict[str, np.ndarray] = field(default_factory=dict)  # onnxruntime: the graph's geometry inputs


class DetectorCore:
    """A camera-only checkpoint (student or baseline) ready to run on frames.

    ``camera_names`` (optional) fixes the rig: frames must then hold exactly these cameras, in this order.
    ``backend``: "torch" runs ``model``; "onnxruntime" runs ``runner`` (an
    :class:`~simdistill_ros.deployment.onnx_runtime.OnnxRuntimeRunner`; ``model`` may then be None).
    """

    def __init__(
        self,
        model: torch.nn.Module | None,
        input_hw: tuple[int, int],
        device: torch.device,
        *,
        model_type: str = "student",
        fp16: bool = False,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        max_detections: int = 100,
        camera_names: Sequence[str] | None = None,
        backend: str = "torch",
        runner: OnnxRuntimeRunner | None = None,
    ) -> None:
        if model_type == "teacher":
            raise UserError("the detector is camera-only; a teacher checkpoint needs LiDAR (use a student)")
        self.backend = check_backend(backend)
        if backend == "onnxruntime" and runner is None:
            raise ValueError("the onnxruntime backend needs a runner")
        if backend == "torch" and model is None:
            raise ValueError("the torch backend needs a model")
        self.model = model.eval() if model is not None else None
        self.runner = runner
        self.config = runner.config if runner is not None else model.config  # type: ignore[union-attr]
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.device = device
        self.model_type = model_type
        # Half precision only pays (and is only well supported) on CUDA.
        self.fp16 = bool(fp16) and device.type == "cuda" and backend == "torch"
        self.notes: list[str] = []
        if fp16 and not self.fp16:
            why = "on the CPU" if device.type != "cuda" else "with the onnxruntime backend"
            self.notes.append(f"fp16 requested {why}: running in fp32")
        self.score_threshold = float(score_threshold)
        self.max_detections = int(max_detections)
        self.camera_names = list(camera_names) if camera_names is not None else None
        # The rig the checkpoint was trained on (meta.json ``cameras``): the default camera order.
        self.trained_cameras: list[str] | None = None
        self.geometry_updates = 0
        self._geometry: _Geometry | None = None

    @classmethod
    def from_checkpoint(
        cls,
        model: str | Path,
        device: str = "auto",
        backend: str = "torch",
        verify: bool = True,
        **kwargs: object,
    ) -> DetectorCore:
        """Load a checkpoint directory or shipped name (``baseline_v3``). ``device``: auto, cpu, cuda;
        ``verify``: check the weights' sha256.

        ``backend="onnxruntime"`` runs the checkpoint's ONNX export (made on first use and cached), or an
        ``.onnx`` file written by ``simdistill export``."""
        check_backend(backend)
        if backend == "onnxruntime" and Path(model).suffix == ".onnx":
            dev = resolve_device(device)
            runner, cfg = load_runner(model, dev.type)
            return cls(
                None, cfg.input_hw, dev, model_type=runner.model_type, backend=backend,
                runner=runner, **kwargs,
            )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("default", CheckpointWarning)  # an unverifiable checkpoint is news
            net, cfg, meta, dev = load_model(model, device, verify)
        model_type = meta.get("model_type", "")
        if model_type == "teacher":
            raise UserError("the detector is camera-only; a teacher checkpoint needs LiDAR (use a student)")
        runner = load_runner(model, dev.type)[0] if backend == "onnxruntime" else None
        if runner is None:
            fold_batchnorm(net)  # inference only: a pass over every feature map fewer
        core = cls(net, cfg.input_hw, dev, model_type=model_type, backend=backend, runner=runner, **kwargs)
        core.trained_cameras = list(meta.get("cameras") or []) or None
        return core

    @property
    def runs_on(self) -> str:
        """What runs the network, for logs: ``torch`` or ``onnxruntime fp32`` / ``onnxruntime int8``."""
        return "torch" if self.runner is None else f"onnxruntime {self.runner.precision}"

    # validation and model inputs ------------------------------------------------------------------------
    def _validate(self, cameras: Sequence[CameraFrame]) -> None:
        if not cameras:
            raise FrameInputError("a frame needs at least one camera")
        names = [c.name for c in cameras]
        if self.camera_names is not None and names != self.camera_names:
            raise FrameInputError(
                f"frame has {len(names)} cameras {names}, the rig expects {len(self.camera_names)} "
                f"{self.camera_names} (same order)"
            )
        if len(set(names)) != len(names):
            raise FrameInputError(f"camera names must be unique, got {names}")
        for c in cameras:
            img = c.image
            if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                desc = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
                raise FrameInputError(f"camera {c.name!r}: image must be RGB uint8 (H, W, 3), got {desc}")
            if img.shape[0] == 0 or img.shape[1] == 0:
                raise FrameInputError(f"camera {c.name!r}: empty image {img.shape}")
            # K describes images of info_hw (the CameraInfo's size) when given, else the image's own size
            kh, kw = c.info_hw if c.info_hw is not None and tuple(c.info_hw) != (0, 0) else img.shape[:2]
            problem = intrinsics_problem(np.asarray(c.intrinsics, dtype=np.float64), int(kw), int(kh))
            if problem is not None:
                raise FrameInputError(f"camera {c.name!r}: unusable intrinsics {problem}")
            t = np.asarray(c.cam_to_base, dtype=np.float64)
            if t.shape != (4, 4) or not np.isfinite(t).all():
                raise FrameInputError(f"camera {c.name!r}: camera-to-base transform is not a finite 4x4")
            if abs(np.linalg.det(t[:3, :3]) - 1.0) > 1e-3:
                raise FrameInputError(f"camera {c.name!r}: camera-to-base rotation is not a rotation")

    def camera_affine(
        self, image_hw: tuple[int, int], intrinsics: np.ndarray, info_hw: tuple[int, int] | None
    ) -> np.ndarray:
        """The pixel map (3, 3) of one camera's image (of ``image_hw``, its CameraInfo K for ``info_hw``)
        to the model input: what :meth:`prepare` applies."""
        k = image_intrinsics("", intrinsics, image_hw, info_hw)
        return resize_affine(tuple(image_hw), self.input_hw, k)

    def camera_tensor(self, image: np.ndarray, affine: np.ndarray) -> CameraTensor:
        """One camera's model input: resized and cropped by ``affine``, normalised."""
        return CameraTensor(affine, normalize_image(warp_image(image, affine, self.input_hw)))

    def _rig_geometry(self, cameras: Sequence[CameraFrame]) -> tuple[_Geometry, bool]:
        ks = [image_intrinsics(c.name, c.intrinsics, c.image.shape[:2], c.info_hw) for c in cameras]
        ts = [np.asarray(c.cam_to_base, dtype=np.float64) for c in cameras]
        digest = hashlib.blake2b(digest_size=16)
        for c, k, t in zip(cameras, ks, ts):
            digest.update(np.asarray(c.image.shape[:2], np.int64).tobytes() + k.tobytes() + t.tobytes())
        key = digest.digest()
        if self._geometry is not None and self._geometry.key == key:
            return self._geometry, False
        affines = [resize_affine(tuple(c.image.shape[:2]), self.input_hw, k) for c, k in zip(cameras, ks)]
        k_in = np.stack([a @ k for a, k in zip(affines, ks)]).astype(np.float32)
        self._geometry = _Geometry(
            key=key,
            affines=affines,
            intrinsics=torch.from_numpy(k_in)[None].to(self.device),
            cam_to_base=torch.from_numpy(np.stack(ts).astype(np.float32))[None].to(self.device),
        )
        if self.runner is not None:
            geom = splat_geometry(
                self.config.grid, self._geometry.intrinsics.cpu(), self._geometry.cam_to_base.cpu(),
                self.input_hw, self.runner.feature_hw,
            )  # fmt: skip
            self._geometry.splat = {k: v.numpy() for k, v in geometry_inputs(geom).items()}
        self.geometry_updates += 1
        return self._geometry, True

    def prepare(
        self, cameras: Sequence[CameraFrame], ready: Sequence[CameraTensor | None] | None = None
    ) -> tuple[object, bool]:
        """(CameraInputs with images (1, N, 3, H, W), K (1, N, 3, 3), cam_to_base (1, N, 4, 4); whether the
        rig geometry was rebuilt). ``ready``: per camera, its input made ahead (:meth:`camera_tensor`), used
        where its pixel map is this frame's. Raises :class:`FrameInputError` for unusable input."""
        self._validate(cameras)
        geom, updated = self._rig_geometry(cameras)
        ready = list(ready) if ready is not None else [None] * len(cameras)
        tensors = [
            r.tensor
            if r is not None and np.array_equal(r.affine, a)
            else self.camera_tensor(c.image, a).tensor
            for c, a, r in zip(cameras, geom.affines, ready)
        ]
        images = torch.from_numpy(np.stack(tensors))[None].to(self.device)
        return CameraInputs(images, geom.intrinsics, geom.cam_to_base), updated

    # running --------------------------------------------------------------------------------------------
    def detect(
        self,
        cameras: Sequence[CameraFrame],
        stamp_ns: int = 0,
        ready: Sequence[CameraTensor | None] | None = None,
    ) -> FrameResult:
        """Boxes (base frame, score >= threshold, at most ``max_detections``) of one frame; ``ready`` as in
        :meth:`prepare`."""
        t0 = time.perf_counter()
        inputs, updated = self.prepare(cameras, ready)
        t1 = time.perf_counter()
        head = self.head_outputs(inputs)
        t2 = time.perf_counter()
        det = decode_head_maps(
            head, self.config.grid, self.config.head, self.score_threshold, self.max_detections
        )[0]
        boxes_np = det.boxes.float().cpu().numpy()
        boxes = boxes_from_array(boxes_np, det.labels.cpu().numpy(), det.scores.float().cpu().numpy())
        t3 = time.perf_counter()
        return FrameResult(
            int(stamp_ns), boxes, (t1 - t0) * 1e3, (t2 - t1) * 1e3, updated, postprocess_ms=(t3 - t2) * 1e3
        )

    def head_outputs(self, inputs: object) -> dict[str, torch.Tensor]:
        """The head's raw maps (heatmap logits, offset, height, size, rot, vel) of prepared inputs."""
        if self.runner is not None:
            assert self._geometry is not None  # prepare() built it
            images = inputs.images.cpu().numpy()  # type: ignore[attr-defined]
            return self.runner(images, self._geometry.splat)
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16, enabled=self.fp16):
            head = self.model(inputs).head  # type: ignore[misc]
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # the model time is honest
        return head

    def detect_frame(self, frame: object) -> FrameResult:
        """Run on a :class:`simdistill_ros.frames.Frame` read from a bag."""
        return self.detect(cameras_from_frame(frame), frame.stamp_ns)  # type: ignore[attr-defined]


def image_intrinsics(
    name: str, intrinsics: np.ndarray, image_hw: tuple[int, int], info_hw: tuple[int, int] | None
) -> np.ndarray:
    """K (3, 3) for the image as received: a CameraInfo for another resolution is scaled to it
    (pixel-corner convention, like ``PinholeCamera.scaled``)."""
    k = np.asarray(intrinsics, dtype=np.float64).copy()
    h, w = image_hw
    if info_hw is not None and tuple(info_hw) not in ((0, 0), (h, w)):
        ih, iw = info_hw
        if ih <= 0 or iw <= 0:
            raise FrameInputError(f"camera {name!r}: CameraInfo size {iw}x{ih} is invalid")
        k[0] *= w / iw
        k[1] *= h / ih
    return k


def cameras_from_frame(frame: object) -> list[CameraFrame]:
    """The :class:`CameraFrame` s of a bag :class:`~simdistill_ros.frames.Frame` (rig order)."""
    out = []
    for cam in frame.rig.cameras:  # type: ignore[attr-defined]
        out.append(
            CameraFrame(
                cam.name,
                frame.images[cam.name],  # type: ignore[attr-defined]
                cam.intrinsics,
                cam.cam_to_base.matrix(),
                (cam.height, cam.width),
                frame.image_stamps_ns.get(cam.name, frame.stamp_ns),  # type: ignore[attr-defined]
            )
        )
    return out
