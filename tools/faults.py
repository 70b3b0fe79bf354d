"""Fault injection: feed the commands and the ROS-free core broken inputs and tabulate what happens.

Usage: .venv/bin/python tools/faults.py [--subprocess] [--work DIR] [-k SUBSTRING]   (or `make faults`)

Each :class:`Case` breaks one thing (a corrupt jpeg, flipped checkpoint bytes, a malformed results file,
...) in a small synthetic workspace, runs the real code on it and returns a :class:`Row`: the case, whether
the process stayed alive or its exit code, the outcome and the reason it logged. ``expect`` says what is
right (exit status and a pattern the reason must match); ``test/test_faults.py`` runs every case and checks
it. Commands run in this process by default (``simdistill_ros.cli.main``, fast); ``--subprocess`` runs each
as its own ``python -m simdistill_ros.cli`` process. More cases (the live node's) are appended to
:data:`CASES` with :func:`case`, and their rows go into the same table.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import io
import json
import logging
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclasses.dataclass
class Row:
    """One line of the table. ``status``: "exit N" for a command, "alive" for an in-process call that
    returned, "traceback" for an uncaught exception."""

    case: str
    status: str
    outcome: str
    reason: str
    ok: bool = False
    seconds: float = 0.0


@dataclasses.dataclass
class Case:
    name: str
    run: Callable[[Workspace], Row]
    expect_status: str  # "exit 2", "exit 0", "alive"
    expect_reason: str  # regex the logged reason must match


CASES: list[Case] = []


def case(name: str, expect_status: str, expect_reason: str) -> Callable:
    """Register ``fn(ws) -> (status, outcome, reason)`` as a case."""

    def register(fn: Callable[[Workspace], tuple[str, str, str]]) -> Callable:
        def run(ws: Workspace) -> Row:
            t0 = time.perf_counter()
            status, outcome, reason = fn(ws)
            return Row(name, status, outcome, reason, seconds=time.perf_counter() - t0)

        CASES.append(Case(name, run, expect_status, expect_reason))
        return fn

    return register


def check(c: Case, row: Row) -> Row:
    row.ok = row.status == c.expect_status and re.search(c.expect_reason, row.reason) is not None
    return row


# running commands ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Result:
    code: int | None  # None: an uncaught exception (a traceback)
    stdout: str
    stderr: str

    @property
    def status(self) -> str:
        return "traceback" if self.code is None else f"exit {self.code}"

    def reason(self) -> str:
        """The error line (or the last stderr line; a traceback's last line)."""
        lines = [ln for ln in self.stderr.strip().splitlines() if ln.strip()]
        errors = [ln for ln in lines if ": error: " in ln]
        return (errors or lines or [""])[-1].strip()

    @property
    def one_line(self) -> bool:
        """One error line and no traceback (warnings logged before it are fine)."""
        errors = [ln for ln in self.stderr.splitlines() if ": error: " in ln]
        return len(errors) == 1 and "Traceback" not in self.stderr


class Workspace:
    """A small synthetic world, built once in ``root``: a dataset with two scenes (val has one), a copy
    of the shipped student and a store replayed with the shipped teacher."""

    def __init__(self, root: Path, subprocess_mode: bool = False) -> None:
        self.root = Path(root)
        self.subprocess = subprocess_mode
        self.root.mkdir(parents=True, exist_ok=True)

    def cli(self, *args: str) -> Result:
        argv = [str(a) for a in args]
        if self.subprocess:
            env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
            proc = subprocess.run(
                [sys.executable, "-m", "simdistill_ros.cli", *argv], capture_output=True, text=True, env=env
            )
            code = None if "Traceback (most recent call last)" in proc.stderr else proc.returncode
            return Result(code, proc.stdout, proc.stderr)
        from simdistill_ros.cli import main
        from simdistill_ros.models.checkpoint import CheckpointWarning

        out, err = io.StringIO(), io.StringIO()
        # A fresh process prints logged warnings on stderr (logging's last resort); pytest's handler
        # would keep them from it, so they are written to the captured stderr here.
        log_handler = logging.StreamHandler(err)
        log_handler.setLevel(logging.WARNING)
        logging.getLogger().addHandler(log_handler)
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("default", CheckpointWarning)  # shown every time, as in a fresh process
            try:
                code: int | None = main(argv)
            except SystemExit as e:  # argparse
                code = int(e.code or 0)
            except Exception:
                code = None
                err.write(traceback.format_exc())
            finally:
                logging.getLogger().removeHandler(log_handler)
        for w in caught:  # recorded (not printed) so that they reach the row under pytest too
            if issubclass(w.category, CheckpointWarning):
                err.write(f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}\n")
        return Result(code, out.getvalue(), err.getvalue())

    # shared fixtures -------------------------------------------------------------------------------------
    @property
    def world(self) -> Path:
        world = self.root / "world"
        if not (world / "v1.0-synth").is_dir():
            from simdistill_ros.synth.export import synthesize

            shutil.rmtree(world, ignore_errors=True)
            synthesize(world, 2, 2, seed=5, image_size=(64, 112), val_fraction=0.5, progress=False)
            splits = json.loads((world / "v1.0-synth" / "splits.json").read_text())
            splits["empty"] = []
            (world / "v1.0-synth" / "splits.json").write_text(json.dumps(splits))
        return world

    @property
    def bag(self) -> Path:
        return sorted((self.world / "bags").iterdir())[0]

    def results(self) -> dict:
        """The val split's ground truth as a results dict (scores mAP 1)."""
        from simdistill_ros.evaluation.nuscenes_eval import gt_as_results

        return gt_as_results(self.world, "val")

    def student(self, name: str) -> Path:
        """A fresh copy of the shipped student."""
        from simdistill_ros.models.checkpoint import shipped_models_dir

        dst = self.root / "ckpt" / name
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(shipped_models_dir() / "student_tiny", dst)
        return dst

    def store(self, name: str) -> Path:
        """A fresh copy of a store replayed from the first bag with the shipped teacher."""
        base = self.root / "store_base"
        if not (base / "index").is_dir():
            r = self.cli("replay", "--teacher", "teacher_tiny", "--bags", self.bag, "--out", base)
            assert r.code == 0, r.stderr
        dst = self.root / "stores" / name
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(base, dst)
        return dst

    def rewrite_bag(self, name: str, change: Callable[[str, object], object]) -> Path:
        """A copy of :attr:`bag` with every message passed through ``change(topic, msg)``."""
        from simdistill_ros.frames.bag_reader import BagReader
        from simdistill_ros.frames.bag_writer import SensorBagWriter

        dst = self.root / "bags" / name
        shutil.rmtree(dst, ignore_errors=True)
        dst.parent.mkdir(parents=True, exist_ok=True)
        with BagReader(self.bag) as src, SensorBagWriter(dst) as out:
            for topic, stamp, msg in src.messages():
                out.write(topic, src.topics[topic], change(topic, msg), stamp)
        return dst


def _cli_row(r: Result, outcome_ok: str) -> tuple[str, str, str]:
    if r.code is None:
        return r.status, "traceback", r.reason()
    if r.code == 0:
        warned = [ln.strip() for ln in (r.stdout + r.stderr).splitlines() if "warning" in ln.lower()]
        return r.status, outcome_ok, (warned or ["-"])[0]
    return r.status, "refused, one line" if r.one_line else "refused, several lines", r.reason()


# images (the one decoder) ----------------------------------------------------------------------------------
def _decode_row(fn: Callable[[], np.ndarray], truth: np.ndarray | None) -> tuple[str, str, str]:
    from simdistill_ros.frames.images import ImageDecodeError

    try:
        img = fn()
    except ImageDecodeError as err:
        return "alive", f"refused ({type(err).__name__})", str(err)
    if truth is not None and np.array_equal(img, truth):
        return "alive", "decoded right", "-"
    return "alive", "DECODED WRONG", "-"


RGB = np.random.default_rng(0).integers(0, 256, (224, 400, 3), dtype=np.uint8)


@case("raw rgb8 with row padding (step > width*3)", "alive", "^-$")
def _padded(ws: Workspace):
    from simdistill_ros.frames.images import decode_raw

    padded = np.pad(RGB.reshape(224, -1), ((0, 0), (0, 64)))
    return _decode_row(lambda: decode_raw("rgb8", 224, 400, 1264, padded.tobytes()), RGB)


@case("raw rgb8 with a wrong step", "alive", r"has step 1300 .*needs step >= 1200")
def _wrong_step(ws: Workspace):
    from simdistill_ros.frames.images import decode_raw

    padded = np.pad(RGB.reshape(224, -1), ((0, 0), (0, 64)))
    return _decode_row(lambda: decode_raw("rgb8", 224, 400, 1300, padded.tobytes()), None)


@case("raw mono16 image", "alive", "^-$")
def _mono16(ws: Workspace):
    from simdistill_ros.frames.images import decode_raw

    mono = RGB[..., 0].astype(np.uint16) << 8
    return _decode_row(
        lambda: decode_raw("mono16", 224, 400, 800, mono.astype("<u2").tobytes()),
        np.repeat(RGB[..., :1], 3, axis=2),
    )


@case("raw 32FC1 (depth) image", "alive", r"unsupported Image encoding '32FC1'.*supported: ")
def _depth(ws: Workspace):
    from simdistill_ros.frames.images import decode_raw

    return _decode_row(lambda: decode_raw("32FC1", 4, 4, 16, bytes(64)), None)


@case("bit-flipped jpeg (entropy data cut short)", "alive", r"corrupt jpeg")
def _flipped_jpeg(ws: Workspace):
    from simdistill_ros.frames.images import decode_compressed, encode_jpeg

    jpeg = encode_jpeg(RGB).tobytes()
    bad = jpeg[: len(jpeg) // 2] + b"\xff\xd9"
    return _decode_row(lambda: decode_compressed("jpeg", bad), None)


def _first_only(topic: str, change: Callable) -> Callable:
    """A message change applied to the first message on ``topic`` only."""
    seen: list[bool] = []

    def apply(t: str, msg):
        if t != topic or seen:
            return msg
        seen.append(True)
        return change(msg)

    return apply


def _cut_jpeg(msg):
    data = bytes(msg.data)
    cut = data[: len(data) * 2 // 3] + b"\xff\xd9"  # entropy data cut short, as flipped bytes often do
    return dataclasses.replace(msg, data=np.frombuffer(cut, np.uint8))


@case("detect on a bag with one damaged CAM_FRONT jpeg", "exit 0", r"1 frames, .*corrupt image: 1 ")
def _detect_damaged(ws: Workspace):
    bag = ws.rewrite_bag("damaged_jpegs", _first_only("/CAM_FRONT/image_rect_compressed", _cut_jpeg))
    r = ws.cli("detect", "--bag", bag, "--out", ws.root / "out" / "damaged", "--device", "cpu")
    stats = next((ln for ln in r.stdout.splitlines() if "bag reader:" in ln), "")
    shutil.rmtree(ws.root / "out" / "damaged", ignore_errors=True)
    return r.status, "frames skipped, counted", stats.strip() or r.reason()


def _lacking(topic: str, change: Callable) -> Callable:
    return lambda t, msg: change(msg) if t == topic else msg


def _logged(r: Result, pattern: str) -> str:
    return next(
        (ln.strip() for ln in (r.stdout + r.stderr).splitlines() if re.search(pattern, ln)), r.reason()
    )


@case("replay a bag whose PointCloud2 has no intensity", "exit 0", r"^\S+: /LIDAR_TOP: .*intensity 0 assumed")
def _no_intensity(ws: Workspace):
    drop = lambda msg: dataclasses.replace(msg, fields=[f for f in msg.fields if f.name != "intensity"])  # noqa: E731
    bag = ws.rewrite_bag("no_intensity", _lacking("/LIDAR_TOP", drop))
    store = ws.root / "stores" / "no_intensity"
    shutil.rmtree(store, ignore_errors=True)
    r = ws.cli("replay", "--teacher", "teacher_tiny", "--bags", bag, "--out", store, "--device", "cpu")
    if r.code != 0:
        return _cli_row(r, "")
    from simdistill_ros.targets.store import TargetStore

    frames = TargetStore(store)
    recorded = sum("/LIDAR_TOP" in frames[i].assumed for i in range(len(frames)))
    warned = [ln for ln in r.stderr.splitlines() if "intensity 0 assumed" in ln]
    outcome = f"warned {len(warned)}x, {recorded}/{len(frames)} frames record it"
    reason = _logged(r, "intensity 0 assumed")
    if len(warned) != 1 or recorded != len(frames):  # the row must not pass on its line alone
        reason = f"NOT ONCE AND RECORDED: {reason}"
    return r.status, outcome, reason


@case(
    "detect raw images of a distorting CAM_FRONT",
    "exit 0",
    r"^\S+: /CAM_FRONT/camera_info: .*as if rectified",
)
def _distorted(ws: Workspace):
    distort = lambda msg: dataclasses.replace(  # noqa: E731
        msg, distortion_model="plumb_bob", d=np.array([-0.3, 0.1, 0.0, 0.0, 0.0])
    )
    bag = ws.rewrite_bag("distorted", _lacking("/CAM_FRONT/camera_info", distort))
    # declared raw: rectified images come with their raw camera's D and use P, nothing to warn of
    out = ws.root / "out" / "distorted"
    r = ws.cli("detect", "--bag", bag, "--out", out, "--device", "cpu", "--image-rectification", "raw")
    shutil.rmtree(out, ignore_errors=True)
    warned = [ln for ln in r.stderr.splitlines() if "as if rectified" in ln]
    reason = _logged(r, "as if rectified")
    return r.status, f"detected, warned {len(warned)}x", reason if len(warned) == 1 else f"NOT ONCE: {reason}"


def _intrinsics(k00: float) -> Callable:
    def change(topic: str, msg):
        if topic != "/CAM_FRONT/camera_info":
            return msg
        k = np.asarray(msg.k, dtype=np.float64).copy()
        p = np.asarray(msg.p, dtype=np.float64).copy()
        k[0] = p[0] = k00  # the bag's images are rectified: P's camera matrix is the one used
        return dataclasses.replace(msg, k=k, p=p)

    return change


def _detect_bad_k(ws: Workspace, name: str, k00: float) -> tuple[str, str, str]:
    """Every frame's CAM_FRONT CameraInfo is bad: each frame is refused, then the command says so."""
    bag = ws.rewrite_bag(name, _intrinsics(k00))
    r = ws.cli("detect", "--bag", bag, "--out", ws.root / "out" / name, "--device", "cpu")
    shutil.rmtree(ws.root / "out" / name, ignore_errors=True)
    return _cli_row(r, "detected on bad intrinsics")


@case("detect with CAM_FRONT fx = 1e30", "exit 2", r"bad intrinsics: 2 .*field of view")
def _fx_huge(ws: Workspace):
    return _detect_bad_k(ws, "fx_1e30", 1e30)


@case("detect with CAM_FRONT fx = NaN", "exit 2", r"bad intrinsics: 2 .*NaN")
def _fx_nan(ws: Workspace):
    return _detect_bad_k(ws, "fx_nan", float("nan"))


# checkpoints -----------------------------------------------------------------------------------------------
def _flip_weights(ckpt: Path) -> None:
    f = ckpt / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-4096:] = bytes(b ^ 0xFF for b in data[-4096:])
    f.write_bytes(bytes(data))


@case("4 KB of flipped bytes in model.safetensors", "exit 2", r"sha256 .* differs .*--no-verify")
def _flipped_weights(ws: Workspace):
    ckpt = ws.student("flipped")
    _flip_weights(ckpt)
    r = ws.cli("detect", "--model", ckpt, "--bag", ws.bag, "--out", ws.root / "out" / "flipped")
    return _cli_row(r, "ran on corrupt weights")


@case("the same with --no-verify", "exit 0", r"")
def _flipped_no_verify(ws: Workspace):
    ckpt = ws.student("flipped_nv")
    _flip_weights(ckpt)
    out = ws.root / "out" / "flipped_nv"
    r = ws.cli("detect", "--model", ckpt, "--bag", ws.bag, "--out", out, "--device", "cpu", "--no-verify")
    shutil.rmtree(out, ignore_errors=True)
    return _cli_row(r, "ran unverified, as asked")


@case("checkpoint whose meta.json has no weights_sha256", "exit 0", r"has no weights_sha256")
def _no_sha(ws: Workspace):
    ckpt = ws.student("no_sha")
    meta = json.loads((ckpt / "meta.json").read_text())
    del meta["weights_sha256"]
    (ckpt / "meta.json").write_text(json.dumps(meta))
    out = ws.root / "out" / "no_sha"
    r = ws.cli("detect", "--model", ckpt, "--bag", ws.bag, "--out", out, "--device", "cpu")
    shutil.rmtree(out, ignore_errors=True)
    reason = next((ln.strip() for ln in r.stderr.splitlines() if "weights_sha256" in ln), r.reason())
    return r.status, "loaded with a warning", reason


@case(
    "config.json with the BEV grid doubled (same weights)",
    "exit 2",
    r"config\.json: sha256 .* differs from config_sha256",
)
def _config_grid(ws: Workspace):
    ckpt = ws.student("grid2x")
    cfg = json.loads((ckpt / "config.json").read_text())
    for axis in ("xbound", "ybound"):
        cfg["grid"][axis] = [2 * v for v in cfg["grid"][axis]]
    (ckpt / "config.json").write_text(json.dumps(cfg))
    r = ws.cli("detect", "--model", ckpt, "--bag", ws.bag, "--out", ws.root / "out" / "grid2x")
    return _cli_row(r, "ran with boxes metres off")


@case("checkpoint whose meta.json has no config_sha256", "exit 0", r"has no config_sha256")
def _no_config_sha(ws: Workspace):
    ckpt = ws.student("no_config_sha")
    meta = json.loads((ckpt / "meta.json").read_text())
    del meta["config_sha256"]
    (ckpt / "meta.json").write_text(json.dumps(meta))
    out = ws.root / "out" / "no_config_sha"
    r = ws.cli("detect", "--model", ckpt, "--bag", ws.bag, "--out", out, "--device", "cpu")
    shutil.rmtree(out, ignore_errors=True)
    reason = next((ln.strip() for ln in r.stderr.splitlines() if "config_sha256" in ln), r.reason())
    return r.status, "loaded with a warning", reason


@case(
    'config.json with "image_size": "big" (--no-verify)',
    "exit 2",
    r"config.image_size must be a list of 2 integers",
)
def _config_type(ws: Workspace):
    ckpt = ws.student("big")
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["image_size"] = "big"
    (ckpt / "config.json").write_text(json.dumps(cfg))
    # checked, its checksum refuses it first (the case above); unchecked, its contents are still checked
    r = ws.cli("detect", "--model", ckpt, "--bag", ws.bag, "--out", ws.root / "out" / "big", "--no-verify")
    return _cli_row(r, "ran")


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "pickle payload ran"))


@case("pickle payload at the train --resume paths", "exit 0", r"payload never ran")
def _pickle_resume(ws: Workspace):
    run = ws.root / "run_pickle"
    shutil.rmtree(run, ignore_errors=True)
    common = ["train", "baseline", "--data", ws.world, "--out", run, "--device", "cpu", "--batch-size", "1"]
    r = ws.cli(*common, "--epochs", "1", "--max-steps", "1")
    if r.code != 0:
        return _cli_row(r, "")
    marker = ws.root / "PAYLOAD_RAN"
    marker.unlink(missing_ok=True)
    bomb = pickle.dumps({"optimizer": _Payload(str(marker)), "step": 1})
    for p in ("train_state.pt", "last/train_state.pt", "last/train_state.safetensors"):
        (run / p).write_bytes(bomb)
    r = ws.cli(*common, "--epochs", "2", "--max-steps", "2", "--resume")
    ran = marker.exists()
    return r.status, "payload RAN" if ran else "resumed", "PAYLOAD RAN" if ran else "payload never ran"


@case(
    "train --resume from a run without train_state.json", "exit 2", r"has no train_state\.json .*--init-from"
)
def _resume_without_state(ws: Workspace):
    run = ws.root / "run_no_state"
    shutil.rmtree(run, ignore_errors=True)
    common = ["train", "baseline", "--data", ws.world, "--out", run, "--device", "cpu", "--batch-size", "1"]
    r = ws.cli(*common, "--epochs", "1", "--max-steps", "2")
    if r.code != 0:
        return _cli_row(r, "")
    for name in ("train_state.json", "train_state.safetensors"):
        (run / "last" / name).unlink()
    return _cli_row(ws.cli(*common, "--epochs", "1", "--max-steps", "1", "--resume"), "resumed past its end")


# evaluate --------------------------------------------------------------------------------------------------
def _evaluate_with(ws: Workspace, name: str, results: object, split: str = "val") -> tuple[str, str, str]:
    path = ws.root / "results" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results))
    return _cli_row(ws.cli("evaluate", "--data", ws.world, "--split", split, "--results", path), "scored")


def _first_box(results: dict) -> dict:
    return next(b for boxes in results["results"].values() for b in boxes)


def _mutated(ws: Workspace, change: Callable[[dict], None]) -> dict:
    results = copy.deepcopy(ws.results())
    change(results)
    return results


EVALUATE_CASES = [
    ("a list", lambda ws: [1, 2], r"must be a JSON object .*got a list"),
    ("no 'results' key", lambda ws: {"meta": {}}, r"need 'meta' .* and 'results'"),
    (
        "a missing sample",
        lambda ws: _mutated(ws, lambda r: r["results"].pop(next(iter(r["results"])))),
        r"1 missing .*give every sample a list",
    ),
    (
        "no 'translation'",
        lambda ws: _mutated(ws, lambda r: _first_box(r).pop("translation")),
        r"no 'translation'",
    ),
    (
        "an unknown class",
        lambda ws: _mutated(ws, lambda r: _first_box(r).update(detection_name="spaceship")),
        r"unknown detection_name 'spaceship'",
    ),
    (
        "string coordinates",
        lambda ws: _mutated(ws, lambda r: _first_box(r).update(translation=["1", "2", "3"])),
        r"'translation' must be 3 finite numbers",
    ),
    (
        "NaN size",
        lambda ws: _mutated(ws, lambda r: _first_box(r).update(size=[float("nan"), 1.0, 1.0])),
        r"'size' must be 3 finite positive numbers",
    ),
]
for _name, _make, _reason in EVALUATE_CASES:

    def _register(name: str = _name, make: Callable = _make, reason: str = _reason) -> None:
        @case(f"evaluate: results are {name}", "exit 2", reason)
        def _run(ws: Workspace):
            return _evaluate_with(ws, name.replace(" ", "_").replace("'", ""), make(ws))

    _register()


@case("evaluate: a bad split name", "exit 2", r"split 'vall' is not in .*use --split with one of")
def _bad_split(ws: Workspace):
    return _evaluate_with(ws, "bad_split", ws.results(), split="vall")


@case("evaluate: an empty split", "exit 2", r"split 'empty' .* has no scenes")
def _empty_split(ws: Workspace):
    return _evaluate_with(ws, "empty_split", ws.results(), split="empty")


# replay ----------------------------------------------------------------------------------------------------
@case("replay resuming a store with a corrupt index", "exit 2", r"unreadable index .*re-run that writer")
def _corrupt_index(ws: Workspace):
    store = ws.store("corrupt_index")
    next((store / "index").glob("*.json")).write_text('{"shards": [truncated')
    r = ws.cli("replay", "--teacher", "teacher_tiny", "--bags", ws.bag, "--out", store)
    return _cli_row(r, "resumed")


@case("replay re-run over a store with a damaged shard", "exit 0", r"was damaged \(sha256\).*replayed again")
def _damaged_shard(ws: Workspace):
    store = ws.store("damaged_shard")
    shard = sorted((store / "shards").iterdir())[0]
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF
    shard.write_bytes(bytes(data))
    r = ws.cli("replay", "--teacher", "teacher_tiny", "--bags", ws.bag, "--out", store)
    warning = next((ln for ln in r.stdout.splitlines() if "was damaged" in ln), r.reason())
    return r.status, "damaged frames replayed again", warning.strip()


# the live node: time faults (tools/live_faults.py; test/test_live_time_node.py checks them in detail) -------
LIVE = "live node: "  # the prefix of these rows' names


def _load_live_faults():
    import importlib.util

    spec = importlib.util.spec_from_file_location("simdistill_live_faults", ROOT / "tools" / "live_faults.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return sys.modules[spec.name]


live_faults = _load_live_faults()


def _register_live(live_case) -> None:
    @case(LIVE + live_case.name, "alive", "^" + re.escape(live_case.reason) + ": ")
    def _run(ws: Workspace):
        work = ws.root / "live" / str(live_faults.CASES.index(live_case))
        o = live_faults.run_case(live_case, ws.bag, ws.student("live"), work)
        diag = "WARN/ERROR" if o.diagnosed else "no diagnostics"
        outcome = f"{o.detected_after}/{o.sent_after} after, {diag}"
        logged = [ln.split("]: ", 1)[-1] for ln in o.reason_lines]
        reason = logged[0] if len(logged) == 1 else f"logged {len(logged)} times: {(logged or ['-'])[0]}"
        if not (o.recovered and o.diagnosed):  # the row must not pass on its log line alone
            reason = f"NOT RECOVERED: {reason}"
        return ("alive" if o.alive else "died"), outcome, reason


for _c in live_faults.CASES:
    _register_live(_c)


# the table -------------------------------------------------------------------------------------------------
def run_cases(ws: Workspace, cases: list[Case], on_row: Callable[[Row], None] | None = None) -> list[Row]:
    rows = []
    for c in cases:
        try:
            row = check(c, c.run(ws))
        except Exception as err:  # a case that cannot even set up is a failed row, not a dead table
            first = str(err).splitlines()[0] if str(err) else ""
            row = Row(c.name, "setup failed", type(err).__name__, first)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def format_row(row: Row, width: int = 48) -> str:
    reason = row.reason if len(row.reason) <= 110 else row.reason[:107] + "..."
    mark = "ok " if row.ok else "BAD"
    return f"{mark} {row.case:<{width}} {row.status:<10} {row.outcome:<30} {reason}"


def header(width: int = 48) -> str:
    return f"    {'case':<{width}} {'alive/exit':<10} {'outcome':<30} logged reason"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subprocess", action="store_true", help="run each command as its own process")
    p.add_argument("--work", help="workspace directory (default: a temporary one)")
    p.add_argument("-k", default="", help="only the cases whose name contains this")
    args = p.parse_args(argv)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="simdistill-faults-"))
    ws = Workspace(work, subprocess_mode=args.subprocess)
    cases = [c for c in CASES if args.k in c.name]
    print(header(), flush=True)
    rows = run_cases(ws, cases, on_row=lambda r: print(format_row(r), flush=True))
    bad = [r for r in rows if not r.ok]
    print(f"{len(rows) - len(bad)} of {len(rows)} cases as expected (workspace {work})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
