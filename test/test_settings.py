"""One name and one home per setting: the score thresholds and the pseudo-label threshold are defined in
``defaults.py`` and imported everywhere else; the model input size is read as ``ModelConfig.input_hw``.

The test reads the package's source with ``ast`` (no torch, no ROS) and names each stray literal.
"""

from __future__ import annotations

import ast
from pathlib import Path

from simdistill_ros import defaults
from simdistill_ros.models.config import HeadConfig, ModelConfig

PACKAGE = Path(__file__).resolve().parents[1] / "simdistill_ros"
THRESHOLDS = ("score_threshold", "pseudo_label_threshold")


def _sources() -> list[tuple[str, ast.AST]]:
    files = sorted(PACKAGE.rglob("*.py"))
    return [(str(p.relative_to(PACKAGE.parent)), ast.parse(p.read_text())) for p in files]


def _number(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def stray_thresholds(path: str, tree: ast.AST) -> list[str]:
    """Threshold values written as numbers outside defaults.py: parameter defaults, dataclass fields,
    keyword arguments, command-line defaults and module constants."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args.posonlyargs + node.args.args
            pairs = list(zip(args[len(args) - len(node.args.defaults) :], node.args.defaults))
            pairs += [(a, d) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults) if d is not None]
            numbered = [(a, d) for a, d in pairs if a.arg in THRESHOLDS and _number(d)]
            found += [f"{path}:{d.lineno}: {a.arg}={d.value}" for a, d in numbered]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if node.target.id in THRESHOLDS and _number(node.value):
                found.append(f"{path}:{node.lineno}: field {node.target.id} = {node.value.value}")
        elif isinstance(node, ast.Assign) and path != "simdistill_ros/defaults.py":
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            found += [f"{path}:{node.lineno}: {n} = ..." for n in names if n.endswith("_THRESHOLD")]
        elif isinstance(node, ast.Call):
            for k in node.keywords:
                if k.arg in THRESHOLDS and _number(k.value):
                    found.append(f"{path}:{node.lineno}: {k.arg}={k.value.value}")
            flags = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if any(f.startswith("--") and "threshold" in f for f in flags):
                found += [
                    f"{path}:{node.lineno}: {flags[0]} default={k.value.value}"
                    for k in node.keywords
                    if k.arg == "default" and _number(k.value)
                ]
    return found


def stray_input_sizes(path: str, tree: ast.AST) -> list[str]:
    """Reads of ``image_size`` outside the config that defines it: the code says ``input_hw``."""
    if path == "simdistill_ros/models/config.py":
        return []
    return [
        f"{path}:{n.lineno}: .image_size"
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and n.attr == "image_size"
    ]


def test_every_threshold_has_one_home():
    stray = [line for path, tree in _sources() for line in stray_thresholds(path, tree)]
    assert not stray, "threshold literals outside simdistill_ros/defaults.py:\n" + "\n".join(stray)


def test_the_model_input_size_has_one_name():
    stray = [line for path, tree in _sources() for line in stray_input_sizes(path, tree)]
    assert not stray, "model input size read as image_size (say ModelConfig.input_hw):\n" + "\n".join(stray)


def test_the_checks_find_what_they_look_for():
    code = (
        "def f(score_threshold=0.2): pass\n"
        "class C:\n    pseudo_label_threshold: float = 0.3\n"
        "g(score_threshold=0.5)\n"
        "p.add_argument('--score-threshold', type=float, default=0.1)\n"
        "MY_THRESHOLD = 0.4\n"
        "x = tuple(cfg.image_size)\n"
    )
    tree = ast.parse(code)
    assert len(stray_thresholds("simdistill_ros/x.py", tree)) == 5
    assert len(stray_input_sizes("simdistill_ros/x.py", tree)) == 1


def test_the_defaults_are_the_ones_the_config_and_commands_use():
    assert HeadConfig().score_threshold == defaults.HEAD_SCORE_THRESHOLD
    cfg = ModelConfig(image_size=(160, 400))
    assert cfg.input_hw == (160, 400) and "input_hw" not in cfg.to_dict()
