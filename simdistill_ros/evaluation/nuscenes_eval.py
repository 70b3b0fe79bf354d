"""Scoring detections with the official nuScenes DetectionEval (devkit 1.2.0) on a nuScenes-format dataset.

The metric itself is the devkit's; this module only prepares what it needs and guards its sharp edges:
- nuScenes' own split names (train, val, ...) are hard-wired to the official scenes (and an assert on the
  version name), so the devkit is given the splits.json alias from :func:`eval_split_name`;
- the config averages over all 10 classes: a class absent from the split's GT would count AP 0. The
  classes are restricted to those present in the filtered GT by setting ``cfg.class_names`` after the
  constructor (the constructor stores a view of ``class_range``'s keys, so assigning a new
  ``class_range`` alone would change nothing; ``class_range`` itself stays whole because the
  constructor's distance filter looks every prediction's class up in it);
- an all-empty result set makes the constructor crash (it looks for a box to learn the box type), so it
  is evaluated by running the same official ``evaluate()`` on empty predictions;
- missing samples raise a KeyError deep in the loader, malformed boxes an AssertionError or a TypeError
  deep in the devkit: results are checked first (:func:`check_results`), and every problem is an
  :class:`EvaluationError` (a UserError: one line, exit 2 on the command line) naming what to fix.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simdistill_ros.classes import DEFAULT_ATTRIBUTE, NUSCENES_CLASSES
from simdistill_ros.dataset.nuscenes_tables import (
    DEFAULT_VERSION,
    eval_split_name,
    load_split_samples,
    official_split_scenes,
    read_splits,
    split_scene_names,
)
from simdistill_ros.errors import UserError
from simdistill_ros.geometry import Box3D, Transform

CONFIG_NAME = "detection_cvpr_2019"
MAX_BOXES_PER_SAMPLE = 500  # the devkit rejects results with more boxes in a sample
TP_METRICS = ("trans_err", "scale_err", "orient_err", "vel_err", "attr_err")
TP_SHORT = {
    "trans_err": "mATE",
    "scale_err": "mASE",
    "orient_err": "mAOE",
    "vel_err": "mAVE",
    "attr_err": "mAAE",
}


class EvaluationError(UserError, ValueError):
    """Results, split or dataset that cannot be scored; the message says what to fix."""


def check_split(dataroot: str | Path, split: str, version: str = DEFAULT_VERSION) -> list[str]:
    """The scene names of ``split``; EvaluationError when neither splits.json nor nuScenes' own splits (on
    the version's scenes, e.g. mini_val on v1.0-mini) have it, or it is empty."""
    path = Path(dataroot) / version / "splits.json"
    official = _official_split_present(dataroot, split, version)
    if official and (not path.is_file() or split not in read_splits(dataroot, version)):
        return official
    try:
        splits = read_splits(dataroot, version)
    except FileNotFoundError as err:
        raise EvaluationError(str(err)) from None
    except (OSError, ValueError) as err:
        raise EvaluationError(
            f"{path} is unreadable ({err}); rewrite the dataset with `simdistill synth`"
        ) from None
    names = sorted(k for k in splits if not k.startswith("custom_")) if isinstance(splits, dict) else []
    scenes = splits.get(split) if isinstance(splits, dict) else None
    if scenes is None:
        raise EvaluationError(
            f"split {split!r} is not in {path}; use --split with one of: {', '.join(names)}"
        )
    if not isinstance(scenes, list) or not scenes:
        raise EvaluationError(
            f"split {split!r} in {path} has no scenes: nothing to evaluate; use --split with a split that "
            f"has scenes ({', '.join(n for n in names if splits.get(n))})"
        )
    return scenes


def _official_split_present(dataroot: str | Path, split: str, version: str) -> list[str]:
    """The scenes of nuScenes' own split ``split`` that the version holds ([] for any other split)."""
    scene_file = Path(dataroot) / version / "scene.json"
    if official_split_scenes(split) is None or not scene_file.is_file():
        return []
    present = [r["name"] for r in json.loads(scene_file.read_text())]
    return split_scene_names(dataroot, split, version, present=present) if present else []


def _finite_numbers(value: object, n: int, allow_nan: bool = False) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == n
        and all(
            isinstance(v, (int, float))
            and not isinstance(v, bool)
            and (math.isfinite(v) or (allow_nan and math.isnan(v)))
            for v in value
        )
    )


def check_results(results: object, tokens: list[str] | None = None) -> None:
    """Raise EvaluationError (one line: where, what is wrong, what to do) unless ``results`` is a nuScenes
    detection results dict whose boxes the devkit can load, covering every sample in ``tokens``."""
    from nuscenes.eval.detection.constants import ATTRIBUTE_NAMES

    fix = "fix the results file (nuScenes detection results format)"
    if not isinstance(results, dict):
        raise EvaluationError(
            f"results must be a JSON object with 'meta' and 'results', got a {type(results).__name__}; {fix}"
        )
    if not isinstance(results.get("results"), dict) or not isinstance(results.get("meta"), dict):
        raise EvaluationError(
            "results need 'meta' (an object) and 'results' (sample token -> list of boxes), found keys "
            f"{sorted(results)[:8]}; {fix}"
        )
    per_sample = results["results"]
    if tokens is not None:
        missing = [t for t in tokens if t not in per_sample]
        if missing:
            raise EvaluationError(
                f"results cover {len(tokens) - len(missing)} of the {len(tokens)} samples of the split: "
                f"{len(missing)} missing (e.g. {missing[:3]}); give every sample a list, empty if nothing "
                "found"
            )
        extra = [t for t in per_sample if t not in set(tokens)]
        if extra:
            raise EvaluationError(
                f"results hold {len(extra)} samples that are not in the split (e.g. {extra[:3]}); score them "
                "on their own split, or leave them out"
            )
    fields = {
        "translation": (3, "3 finite numbers (x, y, z in metres)"),
        "size": (3, "3 finite positive numbers (width, length, height in metres)"),
        "rotation": (4, "4 finite numbers (quaternion w, x, y, z)"),
        "velocity": (2, "2 finite numbers (vx, vy in m/s; NaN where unknown)"),
    }
    for token, boxes in per_sample.items():
        if not isinstance(boxes, list):
            raise EvaluationError(
                f"sample {token!r}: boxes must be a list, got {type(boxes).__name__}; {fix}"
            )
        if len(boxes) > MAX_BOXES_PER_SAMPLE:
            raise EvaluationError(
                f"sample {token!r}: {len(boxes)} boxes, the devkit allows {MAX_BOXES_PER_SAMPLE}; keep the "
                "highest-scoring ones"
            )
        for i, box in enumerate(boxes):
            where = f"sample {token!r} box {i}"
            if not isinstance(box, dict):
                raise EvaluationError(f"{where}: must be an object, got {type(box).__name__}; {fix}")
            if box.get("sample_token") != token:
                raise EvaluationError(
                    f"{where}: 'sample_token' is {box.get('sample_token')!r}, not the sample it is listed "
                    f"under; {fix}"
                )
            for key, (n, what) in fields.items():
                if key not in box:
                    raise EvaluationError(f"{where}: no {key!r} (needs {what}); {fix}")
                if not _finite_numbers(box[key], n, allow_nan=key == "velocity") or (
                    key == "size" and min(box[key]) <= 0
                ):
                    raise EvaluationError(
                        f"{where}: {key!r} must be {what}, got {json.dumps(box[key])[:60]}; {fix}"
                    )
            name = box.get("detection_name")
            if name not in NUSCENES_CLASSES:
                raise EvaluationError(
                    f"{where}: unknown detection_name {name!r} (classes: {', '.join(NUSCENES_CLASSES)}); "
                    f"{fix}"
                )
            score = box.get("detection_score")
            if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
                raise EvaluationError(
                    f"{where}: 'detection_score' must be a finite number, got {score!r}; {fix}"
                )
            attr = box.get("attribute_name")
            if attr != "" and attr not in ATTRIBUTE_NAMES:
                raise EvaluationError(
                    f"{where}: unknown attribute_name {attr!r} (one of the nuScenes attributes, or ''); {fix}"
                )


@dataclass
class EvalReport:
    """The devkit's metrics for one split (TP errors: NaN where the devkit defines none)."""

    split: str
    mean_ap: float
    nd_score: float
    tp_errors: dict[str, float]  # trans_err, scale_err, orient_err, vel_err, attr_err (means over classes)
    class_aps: dict[str, float]  # mean over distance thresholds
    class_tp_errors: dict[str, dict[str, float]]
    classes: list[str]  # the classes evaluated (present in the split's filtered GT)
    label_aps: dict[str, dict[float, float]] = field(default_factory=dict)  # class -> threshold -> AP
    num_samples: int = 0
    num_gt_boxes: int = 0  # after the devkit's distance / points filter
    num_pred_boxes: int = 0  # after the same filter
    eval_time_s: float = 0.0  # loading the tables included
    notes: list[str] = field(default_factory=list)

    @property
    def mate(self) -> float:
        return self.tp_errors["trans_err"]

    @property
    def mase(self) -> float:
        return self.tp_errors["scale_err"]

    @property
    def maoe(self) -> float:
        return self.tp_errors["orient_err"]

    @property
    def mave(self) -> float:
        return self.tp_errors["vel_err"]

    @property
    def maae(self) -> float:
        return self.tp_errors["attr_err"]

    def to_dict(self) -> dict:
        return {
            "split": self.split,
            "mAP": self.mean_ap,
            "NDS": self.nd_score,
            **{TP_SHORT[k]: v for k, v in self.tp_errors.items()},
            "class_aps": self.class_aps,
            "class_tp_errors": self.class_tp_errors,
            "classes": self.classes,
            "num_samples": self.num_samples,
            "num_gt_boxes": self.num_gt_boxes,
            "num_pred_boxes": self.num_pred_boxes,
            "eval_time_s": self.eval_time_s,
            "notes": self.notes,
        }


# Results ---------------------------------------------------------------------------------------------------
def results_from_boxes(
    per_sample: dict[str, list[Box3D]],
    ego_poses: dict[str, Transform],
    attributes: dict[str, list[str]] | None = None,
    meta: dict | None = None,
) -> dict:
    """nuScenes results JSON (a dict) from base-frame boxes per sample token.

    ``ego_poses[token]`` is base_link in map for the frame the boxes are in. Every sample to be scored must
    be a key (an empty list is fine). Attributes default to the class's usual one. At most 500 boxes per
    sample are kept (the highest scores), as the devkit allows no more.
    """
    missing = [t for t in per_sample if t not in ego_poses]
    if missing:
        raise KeyError(f"no ego pose for {len(missing)} sample(s), e.g. {missing[:3]}")
    results: dict[str, list[dict]] = {}
    for token, boxes in per_sample.items():
        attrs = attributes.get(token) if attributes is not None else None
        if attrs is not None and len(attrs) != len(boxes):
            raise ValueError(f"sample {token}: {len(attrs)} attributes for {len(boxes)} boxes")
        order = sorted(range(len(boxes)), key=lambda i: -boxes[i].score)[:MAX_BOXES_PER_SAMPLE]
        records = []
        for i in order:
            b = boxes[i]
            rec = b.to_nuscenes(ego_poses[token])
            records.append(
                {
                    "sample_token": token,
                    **rec,
                    "detection_name": b.label,
                    "detection_score": float(b.score),  # the devkit insists on a Python float
                    "attribute_name": attrs[i] if attrs is not None else DEFAULT_ATTRIBUTE[b.label],
                }
            )
        results[token] = records
    base_meta = {
        "use_camera": True,
        "use_lidar": False,
        "use_radar": False,
        "use_map": False,
        "use_external": False,
    }
    return {"meta": {**base_meta, **(meta or {})}, "results": results}


def gt_as_results(dataroot: str | Path, split: str, version: str = DEFAULT_VERSION) -> dict:
    """The split's ground truth as results (score 1, GT attributes, devkit-estimated velocities).

    Boxes without LiDAR/radar points are left out: the devkit drops them from the GT, so they would
    count as false positives. Scoring this must give mAP 1.0."""
    per_sample, poses, attrs = {}, {}, {}
    for s in load_split_samples(dataroot, split, version):
        keep = [i for i in range(len(s.boxes)) if s.num_lidar_pts[i] + s.num_radar_pts[i] > 0]
        per_sample[s.token] = [s.boxes[i] for i in keep]
        attrs[s.token] = [s.attributes[i] for i in keep]
        poses[s.token] = s.ego_pose
    return results_from_boxes(per_sample, poses, attrs, meta={"use_lidar": True, "source": "ground truth"})


# Evaluation ------------------------------------------------------------------------------------------------
def _quiet(verbose: bool):
    if verbose:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))  # tqdm bars
    return stack


def evaluate(
    dataroot: str | Path,
    split: str,
    results: str | Path | dict,
    version: str = DEFAULT_VERSION,
    out_dir: str | Path | None = None,
    verbose: bool = False,
    render_curves: bool = False,
) -> EvalReport:
    """Score ``results`` (a results dict or a path to its JSON) on ``split`` with the official DetectionEval.

    With ``out_dir``, writes metrics_summary.json and metrics_details.json there (as the devkit's
    ``main`` does) and, with ``render_curves``, its PR/TP plots."""
    from nuscenes import NuScenes
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.common.data_classes import EvalBoxes
    from nuscenes.eval.common.loaders import get_samples_of_custom_split
    from nuscenes.eval.detection.evaluate import DetectionEval
    from nuscenes.utils.splits import is_predefined_split

    dataroot = Path(dataroot)
    if not isinstance(results, dict):
        results = json.loads(Path(results).read_text())
    check_results(results)
    scenes = check_split(dataroot, split, version)
    splits = read_splits(dataroot, version) if (dataroot / version / "splits.json").is_file() else {}
    # nuScenes' own split on its own dataset (mini_val on v1.0-mini) goes to the devkit as it is.
    official = split not in splits
    eval_set = split if official else eval_split_name(split)
    if not official and (eval_set not in splits or is_predefined_split(eval_set)):
        raise EvaluationError(
            f"{dataroot / version / 'splits.json'} has no usable key {eval_set!r} for split {split!r} "
            f"(keys: {sorted(splits)}); the devkit maps nuScenes' own split names to the official scenes, "
            "so write the dataset with NuScenesTableWriter, which adds the alias"
        )
    started = time.perf_counter()
    notes: list[str] = []
    with _quiet(verbose):
        nusc = NuScenes(version=version, dataroot=str(dataroot), verbose=verbose)
        if official:
            wanted = set(scenes)
            in_split = {r["token"] for r in nusc.scene if r["name"] in wanted}
            tokens = [r["token"] for r in nusc.sample if r["scene_token"] in in_split]
        else:
            tokens = get_samples_of_custom_split(split_name=eval_set, nusc=nusc)
    if not tokens:
        raise EvaluationError(f"split {split!r} has no samples: nothing to evaluate")
    check_results(results, tokens)
    num_pred = sum(len(results["results"][t]) for t in tokens)
    if num_pred == 0:
        # The constructor cannot take an empty result set: give it the GT, then score empty predictions.
        notes.append("no predictions in the split: scored as empty detections (AP 0, TP errors 1)")
        to_load = gt_as_results(dataroot, split, version)
        if sum(len(v) for v in to_load["results"].values()) == 0:
            raise EvaluationError(
                f"split {split!r} has no ground-truth box with LiDAR points: nothing to score"
            )
    else:
        to_load = results
    with tempfile.TemporaryDirectory(prefix="nuscenes-eval-") as tmp:
        out = Path(out_dir) if out_dir is not None else Path(tmp) / "out"
        results_path = Path(tmp) / "results.json"
        results_path.write_text(json.dumps(to_load))
        cfg = config_factory(CONFIG_NAME)
        try:
            with _quiet(verbose):
                ev = DetectionEval(nusc, cfg, str(results_path), eval_set, str(out), verbose=verbose)
        except AssertionError as exc:
            raise EvaluationError(f"the nuScenes devkit rejected the results: {exc}") from exc
        if num_pred == 0:
            ev.pred_boxes = EvalBoxes()
            for t in tokens:
                ev.pred_boxes.add_boxes(t, [])
        present = {b.detection_name for b in ev.gt_boxes.all}
        classes = [c for c in NUSCENES_CLASSES if c in present]
        if not classes:
            raise EvaluationError(
                f"split {split!r} has no ground-truth box left after the devkit's filter "
                "(within the class range and with LiDAR/radar points): nothing to score"
            )
        ev.cfg.class_names = classes
        with _quiet(verbose), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # nanmean over classes with no defined error
            metrics, md_list = ev.evaluate()
            summary = metrics.serialize()
            if out_dir is not None:
                summary_out = {**summary, "meta": dict(results["meta"]), "classes_evaluated": classes}
                (out / "metrics_summary.json").write_text(json.dumps(summary_out, indent=2))
                (out / "metrics_details.json").write_text(json.dumps(md_list.serialize(), indent=2))
                if render_curves:
                    ev.render(metrics, md_list)
    skipped = [c for c in NUSCENES_CLASSES if c not in present]
    if skipped:
        notes.append(f"classes without GT in the split (not averaged): {', '.join(skipped)}")
    return EvalReport(
        split=split,
        mean_ap=float(summary["mean_ap"]),
        nd_score=float(summary["nd_score"]),
        tp_errors={k: float(summary["tp_errors"][k]) for k in TP_METRICS},
        class_aps={c: float(summary["mean_dist_aps"][c]) for c in classes},
        class_tp_errors={c: {k: float(metrics.get_label_tp(c, k)) for k in TP_METRICS} for c in classes},
        classes=classes,
        label_aps={c: {float(th): float(ap) for th, ap in summary["label_aps"][c].items()} for c in classes},
        num_samples=len(tokens),
        num_gt_boxes=len(ev.gt_boxes.all),
        num_pred_boxes=len(ev.pred_boxes.all),
        eval_time_s=time.perf_counter() - started,
        notes=notes,
    )


def format_report(report: EvalReport) -> str:
    """A readable table: mAP, NDS, TP errors, then per-class AP and TP errors."""

    def num(v: float) -> str:
        return "   n/a" if v is None or not np.isfinite(v) else f"{v:6.3f}"

    lines = [
        f"nuScenes detection ({CONFIG_NAME}) on split {report.split!r}: {report.num_samples} samples, "
        f"{report.num_gt_boxes} GT boxes, {report.num_pred_boxes} predicted boxes (after the range filter)",
        f"mAP  {num(report.mean_ap)}",
        f"NDS  {num(report.nd_score)}",
        "  ".join(f"{TP_SHORT[k]} {num(report.tp_errors[k])}" for k in TP_METRICS),
        "",
        f"{'class':<22}{'AP':>7}{'ATE':>7}{'ASE':>7}{'AOE':>7}{'AVE':>7}{'AAE':>7}",
    ]
    for c in report.classes:
        errs = "".join(f"{num(report.class_tp_errors[c][k]):>7}" for k in TP_METRICS)
        lines.append(f"{c:<22}{num(report.class_aps[c]):>7}{errs}")
    lines += [f"note: {n}" for n in report.notes]
    lines.append(f"eval time {report.eval_time_s:.2f} s (tables loaded and scored)")
    return "\n".join(lines)
