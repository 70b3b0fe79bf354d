"""launch/autoware.launch.py and config/autoware.yaml: Autoware's topic names, frame and cameras, valid
node parameters. Read without importing launch (absent here)."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from simdistill_ros.defaults import DEFAULT_MODEL
from simdistill_ros.detection.parameters import PARAMETERS, detector_params

ROOT = Path(__file__).resolve().parents[1]


def _launch_arguments(path: Path) -> dict[str, str | None]:
    found = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument":
            default = next((k.value for k in node.keywords if k.arg == "default_value"), None)
            found[node.args[0].value] = default.value if isinstance(default, ast.Constant) else None
    return found


def _params(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())["/**"]["ros__parameters"]


def test_launch_file_declares_autowares_output_topic():
    path = ROOT / "launch" / "autoware.launch.py"
    compile(ast.parse(path.read_text()), path.name, "exec")
    args = _launch_arguments(path)
    assert set(args) == {"output/objects", "params_file", "model", "device", "use_sim_time"}
    assert args["output/objects"] == "/perception/object_recognition/detection/camera_bev/objects"
    assert args["model"] == DEFAULT_MODEL and args["device"] == "auto"
    source = path.read_text()
    for needed in ('"detector_node"', '"detector.yaml"', '"autoware.yaml"', '"objects_topic": objects'):
        assert needed in source, needed


def test_autoware_yaml_overrides_are_valid_node_parameters():
    overrides = _params("autoware.yaml")
    assert set(overrides) <= set(PARAMETERS)
    p = detector_params({**_params("detector.yaml"), **overrides})
    assert p.outputs == ("autoware",) and p.base_frame == "base_link" and not p.compressed
    assert p.camera_names[0] == "CAM_FRONT" and len(p.camera_names) == 6
    assert p.image_topics == [f"/sensing/camera/camera{i}/image_rect_color" for i in range(6)]
    assert p.camera_info_topics == [f"/sensing/camera/camera{i}/camera_info" for i in range(6)]
