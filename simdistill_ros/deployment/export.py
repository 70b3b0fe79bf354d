"""ONNX export of the camera-only detectors (baseline, student): normalised images + splat geometry -> head.

The graph covers everything from the normalised images to the CenterPoint head's raw maps. The splat
geometry depends only on the calibration, so it stays outside the graph: the caller computes it once per
rig (:func:`simdistill_ros.models.lift_splat.splat_geometry`) and feeds its three index vectors. Decoding
and NMS stay in Python (:func:`simdistill_ros.models.head.decode`).

Inputs: ``images`` (1, N, 3, H, W) float32 (N dynamic), ``splat_point``, ``splat_slot`` (M,) int64 and
``splat_slot_cell`` (N*fW*J,) int64 (M and J dynamic: see :class:`SplatGeometry`). Outputs: ``heatmap``
(1, K, X, Y) logits and ``offset``, ``height``, ``size``, ``rot``, ``vel`` as in
:class:`~simdistill_ros.models.head.CenterHead`. The model's config and type travel in the file's metadata
(``simdistill.config``, ``simdistill.model_type``, ``simdistill.feature_hw``).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from simdistill_ros.geometry import nuscenes_like_rig
from simdistill_ros.models.config import ModelConfig
from simdistill_ros.models.head import REG_FIELDS
from simdistill_ros.models.lift_splat import SplatGeometry, splat_geometry
from simdistill_ros.models.structures import CameraInputs

if TYPE_CHECKING:  # onnx is imported where a file is read, not with the package
    import onnx

INPUT_NAMES = ("images", "splat_point", "splat_slot", "splat_slot_cell")
OUTPUT_NAMES = ("heatmap",) + tuple(name for name, _ in REG_FIELDS)
OPSET = 18  # GridSample (16+) and ScatterElements with reduction "add" (16+)
PRECISION_KEY = "simdistill.precision"  # "int8" in a `simdistill export --int8` file, absent in fp32 ones
# bumped whenever the graph changes for the same weights, so that cached exports are made again
# (2: the splat's sums are ScatterElements, not ScatterND: see :func:`racy_scatter_nodes`)
EXPORT_REVISION = 2


class ExportableDetector(nn.Module):
    """A baseline or student with the splat geometry as tensor inputs.

    forward: images (1, N, 3, H, W), splat_point / splat_slot (M,) int64, splat_slot_cell (N*fW*J,) int64
        -> (heatmap, offset, height, size, rot, vel), each (1, C, X, Y)
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        kind = getattr(model, "model_type", type(model).__name__)
        if kind not in ("baseline", "student"):
            raise ValueError(f"only the camera-only models (baseline, student) export; got {kind!r}")
        self.model = model

    def forward(
        self, images: Tensor, splat_point: Tensor, splat_slot: Tensor, splat_slot_cell: Tensor
    ) -> tuple[Tensor, ...]:
        b, n = images.shape[:2]
        # the calibration enters only through the geometry; the models read just (B, N) from these
        cams = CameraInputs(images, images.new_zeros(b, n, 3, 3), images.new_zeros(b, n, 4, 4))
        out = self.model(cams, SplatGeometry(splat_point, splat_slot, splat_slot_cell))
        return tuple(out.head[name] for name in OUTPUT_NAMES)


def feature_hw(input_hw: tuple[int, int]) -> tuple[int, int]:
    """The camera features' size for a model input of ``input_hw``: the FPN neck's stride-8 map."""
    return input_hw[0] // 8, input_hw[1] // 8


def geometry_inputs(geometry: SplatGeometry) -> dict[str, Tensor]:
    """The graph's geometry inputs of a :class:`SplatGeometry`."""
    return {
        "splat_point": geometry.point,
        "splat_slot": geometry.slot,
        "splat_slot_cell": geometry.slot_cell,
    }


def sample_inputs(config: ModelConfig, num_cameras: int = 6) -> dict[str, Tensor]:
    """Inputs of a nuScenes-like rig at the config's image size (to trace and to check an export)."""
    h, w = config.input_hw
    rig = nuscenes_like_rig(h, w)
    n = min(num_cameras, len(rig))
    k = torch.from_numpy(rig.intrinsics_array()[:n])[None].float()
    t = torch.from_numpy(rig.cam_to_base_array()[:n])[None].float()
    geom = splat_geometry(config.grid, k, t, (h, w), feature_hw((h, w)))
    images = torch.randn(1, n, 3, h, w, generator=torch.Generator().manual_seed(0))
    return {"images": images, **geometry_inputs(geom)}


def export_onnx(
    model: nn.Module,
    config: ModelConfig,
    out: str | os.PathLike,
    num_cameras: int = 6,
    opset: int = OPSET,
) -> Path:
    """Write ``model`` (baseline or student, eval mode, CPU) as ONNX to ``out``; returns the path.

    Uses the dynamo exporter (``torch.onnx.export(..., dynamo=True)``, needs onnxscript); the camera
    count N, the number of in-grid frustum points M and of column slots are dynamic, the image size is
    the config's.
    """
    import onnx

    wrapper = ExportableDetector(model.eval().cpu())
    inputs = sample_inputs(config, num_cameras)
    n, m = torch.export.Dim("cameras", min=1, max=64), torch.export.Dim("points", min=2)
    slots = torch.export.Dim("slots", min=2)
    dims = {"images": {1: n}, "splat_point": {0: m}, "splat_slot": {0: m}, "splat_slot_cell": {0: slots}}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            wrapper,
            tuple(inputs.values()),
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes=dims,
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    proto = program.model_proto
    meta = {
        "simdistill.model_type": model.model_type,
        "simdistill.config": json.dumps(config.to_dict()),
        "simdistill.feature_hw": json.dumps(list(feature_hw(config.input_hw))),
    }
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(proto, str(tmp))
    os.replace(tmp, out)  # a reader never sees half a file
    return out


def load_graph(path: str | os.PathLike) -> onnx.ModelProto:
    """The ``onnx.ModelProto`` of an exported file, for the readers below when one caller needs both."""
    import onnx

    return onnx.load(str(path), load_external_data=False)


def read_metadata(
    path: str | os.PathLike, graph: onnx.ModelProto | None = None
) -> tuple[str, ModelConfig, tuple[int, int]]:
    """(model_type, config, feature_hw) stored in an exported file (``graph``: its proto, if parsed)."""
    proto = load_graph(path) if graph is None else graph
    props = {p.key: p.value for p in proto.metadata_props}
    if "simdistill.config" not in props:
        raise ValueError(f"{path}: not an ONNX file written by `simdistill export` (no simdistill metadata)")
    fhw = json.loads(props["simdistill.feature_hw"])
    config = ModelConfig.from_dict(json.loads(props["simdistill.config"]))
    return props["simdistill.model_type"], config, (int(fhw[0]), int(fhw[1]))


def racy_scatter_nodes(path: str | os.PathLike, graph: onnx.ModelProto | None = None) -> list[str]:
    """Names of the ScatterND nodes with a reduction in an exported file (files of EXPORT_REVISION 1;
    ``graph``: its proto, if parsed).

    onnxruntime's CPU kernel for them splits the updates over the intra-op threads without atomics, so
    where indices repeat (every splat) sums are lost at random: such a file is only right in one thread.
    """
    proto = load_graph(path) if graph is None else graph
    return [
        node.name
        for node in proto.graph.node
        if node.op_type == "ScatterND"
        and any(a.name == "reduction" and a.s not in (b"", b"none") for a in node.attribute)
    ]


def max_difference(
    path: str | os.PathLike, model: nn.Module, config: ModelConfig, num_cameras: int = 6
) -> float:
    """Largest absolute difference between onnxruntime's and torch's head maps on a random input."""
    import onnxruntime as ort

    inputs = sample_inputs(config, num_cameras)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(list(OUTPUT_NAMES), {k: v.numpy() for k, v in inputs.items()})
    with torch.no_grad():
        ref = ExportableDetector(model.eval())(*inputs.values())
    return max(float(abs(g - r.numpy()).max()) for g, r in zip(got, ref))


def precision(path: str | os.PathLike) -> str:
    """``fp32`` or ``int8``: the arithmetic of an exported file."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}.get(PRECISION_KEY, "fp32")
