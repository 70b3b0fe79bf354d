"""The reproduction tables.

The fair table (``tools/reproduce.sh``): every finished run is recorded as a small JSON under a results
folder that is committed (``record``: metrics, per-class AP, AP per distance threshold, steps, seed, when it
was trained; no checkpoint), and the table is assembled from those JSONs alone (``fair``), so a table can be
trained over several sittings. Arms with several seeds are shown as mean +- sd.

    python tools/reproduction_table.py record --name student_s0 --arm student --seed 0 --run DIR ...
    python tools/reproduction_table.py fair RESULTS_DIR
    python tools/reproduction_table.py levers RESULTS_DIR   # the README's table of levers

The first table (``tools/reproduce_v1.sh``, one seed per row): ``python tools/reproduction_table.py
legacy RUNS_DIR`` reads each run's metrics_summary.json; rows in the order of the paper's table.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (run directory name, what the row is, modalities used at inference)
ROWS: tuple[tuple[str, str, str], ...] = (
    ("teacher", "Teacher (BEVFusion-style LiDAR + camera)", "L+C"),
    ("baseline", "Camera-only baseline (BEVFusion-C analogue)", "C"),
    ("student_nodistill", "Student architecture, no distillation", "C"),
    ("student", "SimDistill student (IMD + CMD + MMD-F + MMD-P)", "C"),
    ("ablate_imd", "  - IMD", "C"),
    ("ablate_cmd", "  - CMD", "C"),
    ("ablate_mmd_feat", "  - MMD-F", "C"),
    ("ablate_mmd_pred", "  - MMD-P", "C"),
    ("ablate_gcm", "  - GCM", "C"),
    ("ablate_init", "  - initialisation from the teacher", "C"),
)


@dataclass
class Row:
    run: str
    label: str
    modality: str
    mean_ap: float
    nd_score: float
    mate: float
    maoe: float
    mave: float


def read_row(run_dir: Path, label: str, modality: str) -> Row | None:
    """Metrics of ``run_dir/eval/metrics_summary.json`` (None when the run has not been evaluated)."""
    summary = run_dir / "eval" / "metrics_summary.json"
    if not summary.is_file():
        return None
    data = json.loads(summary.read_text())
    tp = data.get("tp_errors", {})
    return Row(
        run=run_dir.name,
        label=label,
        modality=modality,
        mean_ap=float(data["mean_ap"]),
        nd_score=float(data["nd_score"]),
        mate=float(tp.get("trans_err", math.nan)),
        maoe=float(tp.get("orient_err", math.nan)),
        mave=float(tp.get("vel_err", math.nan)),
    )


def collect(runs_dir: Path) -> list[Row]:
    return [r for name, label, mod in ROWS if (r := read_row(runs_dir / name, label, mod)) is not None]


def format_markdown(rows: list[Row], reference: str = "baseline") -> str:
    """Markdown table; the last two columns are differences to the ``reference`` run, in points with two
    decimals (small CPU-trained models sit near the floor, where one decimal hides the differences)."""
    ref = next((r for r in rows if r.run == reference), None)
    lines = [
        "| model | input | mAP | NDS | mATE | mAOE | mAVE | dmAP | dNDS |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        d_map = f"{100 * (r.mean_ap - ref.mean_ap):+.2f}" if ref and r is not ref else ""
        d_nds = f"{100 * (r.nd_score - ref.nd_score):+.2f}" if ref and r is not ref else ""
        lines.append(
            f"| {r.label} | {r.modality} | {100 * r.mean_ap:.2f} | {100 * r.nd_score:.2f} | {r.mate:.3f} | "
            f"{r.maoe:.3f} | {r.mave:.3f} | {d_map} | {d_nds} |"
        )
    return "\n".join(lines)


# --- the fair table, from committed result JSONs ------------------------------------------------------------

# (arm, what the row is, modalities at inference, kind). "arm" rows have several seeds; an "ablation" row has
# one seed and says so.
FAIR_ARMS: tuple[tuple[str, str, str, str], ...] = (
    (
        "camera_stage",
        "Teacher's camera stage (camera-only, ImageNet start, with the lineage's arguments)",
        "C",
        "variant",
    ),
    (
        "teacher",
        "Teacher, staged (camera branch from the camera-only model, then LiDAR + fusion)",
        "L+C",
        "arm",
    ),
    ("baseline", "Camera-only baseline, ImageNet-pretrained start", "C", "arm"),
    ("baseline_warm", "Camera-only baseline, warm-started from the teacher like the student", "C", "arm"),
    ("student_nodistill", "Student, same start as SimDistill, no distillation", "C", "arm"),
    ("student", "SimDistill student (IMD + CMD + MMD-F + MMD-P)", "C", "arm"),
    ("ablate_imd", "  - IMD", "C", "ablation"),
    ("ablate_cmd", "  - CMD", "C", "ablation"),
    ("ablate_mmd_feat", "  - MMD-F", "C", "ablation"),
    ("ablate_mmd_pred", "  - MMD-P", "C", "ablation"),
    ("ablate_gcm", "  - GCM", "C", "ablation"),
    ("ablate_init", "  - warm start (pretrained backbone only)", "C", "ablation"),
    (
        "baseline_long",
        "Camera-only baseline, ImageNet start, as many steps as the student's whole lineage (equal training)",
        "C",
        "arm",
    ),
    ("baseline_depth_long", "  the same, with LiDAR depth supervision", "C", "arm"),
    ("student_depth", "SimDistill student with LiDAR depth supervision", "C", "arm"),
    (
        "baseline_depth_warm",
        "Camera-only baseline, warm-started from the teacher, with LiDAR depth supervision",
        "C",
        "arm",
    ),
    (
        "student_v3",
        "Student v3 recipe: depth supervision + balanced distillation (teacher start)",
        "C",
        "arm",
    ),
    ("ablate_v3_imd", "  v3 - IMD", "C", "ablation"),
    ("ablate_v3_cmd", "  v3 - CMD", "C", "ablation"),
    ("ablate_v3_mmd_feat", "  v3 - MMD-F", "C", "ablation"),
    ("ablate_v3_mmd_pred", "  v3 - MMD-P", "C", "ablation"),
    (
        "student_light",
        "SimDistill student, light simulated-LiDAR branch (8 channels, BEV GCM on the 2x-pooled BEV; README "
        "Speed)",
        "C",
        "variant",
    ),
)
TP_KEYS = {
    "mATE": "trans_err",
    "mASE": "scale_err",
    "mAOE": "orient_err",
    "mAVE": "vel_err",
    "mAAE": "attr_err",
}
THRESHOLDS = (0.5, 1.0, 2.0, 4.0)


def metrics_from_summary(summary: dict) -> dict:
    """The numbers a result JSON keeps from a devkit metrics_summary.json: mAP, NDS, TP errors, per-class AP
    (mean over thresholds) and, per distance threshold, the class-mean AP and each class's AP."""
    classes = summary.get("classes_evaluated") or sorted(summary["mean_dist_aps"])
    label_aps = summary["label_aps"]
    by_th: dict[str, float] = {}
    class_by_th: dict[str, dict[str, float]] = {}
    for th in THRESHOLDS:
        key = str(th)
        per_class = {c: float(label_aps[c][key]) for c in classes if key in label_aps.get(c, {})}
        class_by_th[key] = per_class
        by_th[key] = sum(per_class.values()) / len(per_class) if per_class else math.nan
    tp = summary.get("tp_errors", {})
    return {
        "mAP": float(summary["mean_ap"]),
        "NDS": float(summary["nd_score"]),
        **{name: float(tp.get(key, math.nan)) for name, key in TP_KEYS.items()},
        "class_ap": {c: float(summary["mean_dist_aps"][c]) for c in classes},
        "ap_by_threshold": by_th,
        "class_ap_by_threshold": class_by_th,
    }


def record_run(
    out_file: Path,
    name: str,
    arm: str,
    seed: int,
    run_dir: Path,
    extra: dict | None = None,
    data: Path | None = None,
    fresh_data: Path | None = None,
) -> dict:
    """Write ``out_file``: the metrics of ``run_dir/eval/metrics_summary.json`` (val) and, when the run was
    also scored there, of ``run_dir/eval_fresh/metrics_summary.json`` (a world with a seed no model saw),
    plus what the run was (from its checkpoint's meta.json and ``extra``: steps, config, world, data) and
    when it was trained. Given the dataroots (``data``: val, ``fresh_data``), each world's metrics also
    say what the detections called the vehicles' boxes (``class_called``, from the run's results.json)."""
    summary = json.loads((run_dir / "eval" / "metrics_summary.json").read_text())
    fresh_file = run_dir / "eval_fresh" / "metrics_summary.json"
    meta_file = run_dir / "last" / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    trained_at = time.strftime(
        "%Y-%m-%dT%H:%MZ", time.gmtime(meta_file.stat().st_mtime if meta_file.is_file() else time.time())
    )
    record = {
        "name": name,
        "arm": arm,
        "seed": seed,
        "trained_at": trained_at,
        "model_type": meta.get("model_type"),
        "commit": meta.get("commit", ""),
        "command": meta.get("command", ""),
        **(extra or {}),
        "metrics": metrics_from_summary(summary),
    }
    if fresh_file.is_file():
        record["metrics_fresh"] = metrics_from_summary(json.loads(fresh_file.read_text()))
    for key, eval_dir, root in (("metrics", "eval", data), ("metrics_fresh", "eval_fresh", fresh_data)):
        results = run_dir / eval_dir / "results.json"
        if root is not None and key in record and results.is_file():
            record[key]["class_called"] = vehicles_called(Path(root), results)
    curve = read_curve(run_dir / "log.csv")
    if curve:
        record["curve"] = curve
    at_steps = val_at_steps(run_dir)
    if at_steps:
        record["val_at_steps"] = at_steps
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    tmp.replace(out_file)
    return record


def vehicles_called(dataroot: Path, results_json: Path) -> dict[str, dict]:
    """What the detections of ``results_json`` called the vehicle classes' boxes of ``dataroot``'s tables
    (:func:`simdistill_ros.evaluation.confusion.class_called`), shares rounded to 4 digits."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from simdistill_ros.evaluation.confusion import class_called

    called = class_called(dataroot, json.loads(results_json.read_text())["results"])
    return {c: {**v, "called": {k: round(x, 4) for k, x in v["called"].items()}} for c, v in called.items()}


def read_curve(log_csv: Path) -> list[dict]:
    """The run's loss curve: every row of its ``log.csv`` (one per epoch: step, lr, each loss term), as
    numbers; a header repeated by a resumed run is skipped."""
    if not log_csv.is_file():
        return []
    rows = []
    with open(log_csv, newline="") as f:
        for row in csv.DictReader(f):
            try:
                rows.append({k: float(v) for k, v in row.items() if v not in (None, "")})
            except ValueError:
                continue
    return rows


def val_at_steps(run_dir: Path) -> dict[str, dict[str, float]]:
    """{step: {"mAP", "NDS"}} of the run's snapshots scored on val (``RUN/eval_step_<N>/``)."""
    out = {}
    for summary in sorted(run_dir.glob("eval_step_*/metrics_summary.json")):
        step = summary.parent.name.rsplit("_", 1)[1]
        data = json.loads(summary.read_text())
        out[step] = {"mAP": float(data["mean_ap"]), "NDS": float(data["nd_score"])}
    return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


def load_records(results_dir: Path) -> list[dict]:
    """Every run record (``*.json`` with a ``metrics`` key) under ``results_dir``, sorted by name."""
    out = []
    for f in sorted(results_dir.glob("*.json")):
        data = json.loads(f.read_text())
        if isinstance(data, dict) and "metrics" in data and "arm" in data:
            out.append(data)
    return out


def group_by_arm(records: list[dict]) -> dict[str, list[dict]]:
    """{arm: its records, in the order given}."""
    by_arm: dict[str, list[dict]] = {}
    for r in records:
        by_arm.setdefault(r["arm"], []).append(r)
    return by_arm


def _mean_sd(values: list[float], scale: float, digits: int, signed: bool = False) -> str:
    if not values:
        return ""
    mean = statistics.fmean(values) * scale
    head = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    if len(values) == 1:
        return head
    return f"{head} +- {statistics.stdev(values) * scale:.{digits}f}"


def _summary_table(by_arm: dict[str, list[dict]], key: str) -> str:
    """The main table of ``format_fair`` over the records' ``key`` metrics (val or fresh world)."""
    lines = [
        "| model | input | seeds | mAP | NDS | AP@2m | AP@4m | mATE | mAOE |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for arm, label, modality, kind in FAIR_ARMS:
        runs = by_arm.get(arm, [])
        if not runs:
            continue
        m = [r[key] for r in runs]
        seeds = ",".join(str(r["seed"]) for r in runs)
        seeds_text = f"{len(runs)} ({seeds})" + (f" one seed, {kind}" if kind != "arm" else "")
        lines.append(
            f"| {label} | {modality} | {seeds_text} | {_mean_sd([x['mAP'] for x in m], 100, 2)} | "
            f"{_mean_sd([x['NDS'] for x in m], 100, 2)} | "
            f"{_mean_sd([x['ap_by_threshold']['2.0'] for x in m], 100, 2)} | "
            f"{_mean_sd([x['ap_by_threshold']['4.0'] for x in m], 100, 2)} | "
            f"{_mean_sd([x['mATE'] for x in m], 1, 3)} | {_mean_sd([x['mAOE'] for x in m], 1, 3)} |"
        )
    return "\n".join(lines)


# Paired comparisons: (arm, reference arm). Runs of the same seed share the data order and augmentation
# draws, so their per-seed difference is the comparison with the least noise.
PAIRED: tuple[tuple[str, str], ...] = (
    ("student", "baseline_warm"),
    ("student", "student_nodistill"),
    ("student_nodistill", "baseline_warm"),
    ("baseline_long", "baseline"),
    ("student", "baseline_long"),
    ("baseline_depth_long", "baseline_long"),
    ("student_depth", "student"),
    ("student_v3", "baseline_long"),
    ("student_v3", "baseline_depth_long"),
    ("baseline_depth_warm", "baseline_warm"),
    ("student_v3", "baseline_depth_warm"),
    ("student_v3", "student"),
)


def _paired_diffs(
    by_arm: dict[str, list[dict]], arm: str, ref: str, key: str, metric: str
) -> dict[int, float]:
    """{seed: ``arm - ref`` in points} over the seeds both arms ran and scored on ``key`` (val or fresh)."""
    mine = {r["seed"]: r for r in by_arm.get(arm, []) if key in r}
    theirs = {r["seed"]: r for r in by_arm.get(ref, []) if key in r}
    return {s: 100 * (mine[s][key][metric] - theirs[s][key][metric]) for s in sorted(set(mine) & set(theirs))}


def _paired_differences(by_arm: dict[str, list[dict]]) -> str:
    """Per seed, an arm minus its reference (same seed), in points, then mean +- sd over the seeds."""
    labels = {arm: label.strip() for arm, label, _, _ in FAIR_ARMS}
    lines = []
    for arm, ref in PAIRED:
        val = _paired_diffs(by_arm, arm, ref, "metrics", "mAP")
        if not val:
            continue
        cells = []
        for key, where in (("metrics", "val"), ("metrics_fresh", "fresh world")):
            if len(_paired_diffs(by_arm, arm, ref, key, "mAP")) < len(val):  # a seed not scored there
                continue
            for metric in ("mAP", "NDS"):
                diffs = _paired_diffs(by_arm, arm, ref, key, metric)
                each = ", ".join(f"{d:+.2f} (s{seed})" for seed, d in diffs.items())
                summary = (
                    f"; mean {_mean_sd(list(diffs.values()), 1, 2, signed=True)}" if len(diffs) > 1 else ""
                )
                cells.append(f"{where} {metric} {each}{summary}")
        lines.append(f"- {labels[arm]} minus {labels[ref]}: " + "; ".join(cells))
    if not lines:
        return ""
    return (
        "\n\nPaired by seed (same data order and augmentation; points, mean +- sd over seeds):\n\n"
        + "\n".join(lines)
    )


# Where a camera model's gain comes from, each lever as a paired difference (what it adds, arm, reference):
# the lineage arms share their optimizer steps (LONG_STEPS = camera stage + teacher + own run), so none of
# these differences is training length except the first.
GAIN_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("training length: 3000 steps instead of 1000, ImageNet start", "baseline_long", "baseline"),
    ("spending the first 2000 of those steps on the LiDAR teacher's lineage", "baseline_warm",
     "baseline_long"),
    ("LiDAR depth supervision (`--depth-weight 3`), 3000 steps", "baseline_depth_long", "baseline_long"),
    ("LiDAR depth supervision, teacher start", "baseline_depth_warm", "baseline_warm"),
    ("SimDistill's four distillation terms, teacher start", "student", "baseline_warm"),
    ('balanced distillation terms on top of depth supervision (the "v3" recipe)', "student_v3",
     "baseline_depth_warm"),
)  # fmt: skip
# The goal for the best recipe with LiDAR knowledge (baseline_depth_long: depth supervision; the v3
# distillation terms lose to it) over the equal-training baseline (points: mAP, NDS), the margin the paper
# reports for SimDistill over its camera-only baseline
GOAL = ("baseline_depth_long", "baseline_long", 4.8, 4.1)


def _lever_diffs(by_arm: dict[str, list[dict]], arm: str, ref: str) -> list[list[float]]:
    """Paired differences of ``arm - ref`` per seed: val mAP, val NDS, fresh mAP, fresh NDS (points)."""
    return [
        list(_paired_diffs(by_arm, arm, ref, key, metric).values())
        for key in ("metrics", "metrics_fresh")
        for metric in ("mAP", "NDS")
    ]


def lever_table(records: list[dict]) -> str:
    """The levers of ``GAIN_SOURCES`` at one decimal, the table the README quotes (``levers``)."""
    by_arm = group_by_arm(records)
    lines = [
        "| lever | seeds | val mAP | val NDS | fresh mAP | fresh NDS |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for what, arm, ref in GAIN_SOURCES:
        diffs = _lever_diffs(by_arm, arm, ref)
        if diffs[0]:
            # a mean that rounds to zero reads 0.0, not -0.0
            cells = [re.sub(r"^[+-](0\.0)(?= |$)", r"\1", _mean_sd(d, 1, 1, signed=True)) for d in diffs]
            lines.append(f"| {what} | {len(diffs[0])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _gain_sources(by_arm: dict[str, list[dict]]) -> str:
    """The levers as paired differences (mean +- sd over the shared seeds), then the goal's verdict."""
    lines = []
    goal_row = ("the goal: best LiDAR recipe over the equal-training baseline", *GOAL[:2])
    for what, arm, ref in (*GAIN_SOURCES, goal_row):
        diffs = _lever_diffs(by_arm, arm, ref)
        if diffs[0]:
            cells = " | ".join(_mean_sd(d, 1, 2, signed=True) for d in diffs)
            lines.append(f"| {what} | {arm} - {ref} | {len(diffs[0])} | {cells} |")
    if not lines:
        return ""
    out = (
        "\n\nWhere the gain comes from (paired by seed, points; mean +- sd over the seeds both arms ran):\n\n"
        "| lever | arm - reference | seeds | val mAP | val NDS | fresh mAP | fresh NDS |\n"
        "|---|---|---:|---:|---:|---:|---:|\n" + "\n".join(lines)
    )
    arm, ref, goal_map, goal_nds = GOAL
    verdicts = []
    for key, where in (("metrics", "val"), ("metrics_fresh", "the fresh world")):
        d_map = list(_paired_diffs(by_arm, arm, ref, key, "mAP").values())
        d_nds = list(_paired_diffs(by_arm, arm, ref, key, "NDS").values())
        if d_map:
            m, n = statistics.fmean(d_map), statistics.fmean(d_nds)
            met = "met" if m >= goal_map and n >= goal_nds else "not met"
            verdicts.append(f"{met} on {where} ({m:+.2f} mAP, {n:+.2f} NDS over {len(d_map)} seed(s))")
    if verdicts:
        goal = f"Goal ({arm} over {ref} by >= +{goal_map} mAP and +{goal_nds} NDS): "
        out += "\n\n" + goal + "; ".join(verdicts)
    return out


def load_distillation_probes(results_dir: Path) -> dict[str, list[dict]]:
    """{"val": [...], "fresh": [...]}: the ``bev_probe --teacher`` reports of the runs, from
    ``NAME.probe.json`` (val) and ``NAME.probe_fresh.json`` (fresh world), sorted by run name."""
    out: dict[str, list[dict]] = {}
    for world, pattern in (("val", "*.probe.json"), ("fresh", "*.probe_fresh.json")):
        runs = []
        for f in sorted(results_dir.glob(pattern)):
            runs += json.loads(f.read_text())["distillation_probes"]
        if runs:
            out[world] = runs
    return out


def _distillation_probe_table(runs: list[dict]) -> str:
    """One row per student run: how much of each teacher BEV map the student explains (R^2) and each map's
    correlation with the ground truth, the teacher's own last."""
    head = (
        "| run | camera BEV: R^2 of teacher's (IMD) | GT corr | simulated-LiDAR BEV: R^2 of LiDAR's, "
        "foreground (CMD) | GT corr | fused BEV: R^2 of teacher's (MMD-F) | GT corr | "
        "heatmap corr with teacher |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    cells = (("camera_bev", "r2_all_cells"), ("lidar_bev", "r2_foreground"), ("fused_bev", "r2_all_cells"))
    rows = []
    for r in runs:
        name = Path(r["student"]).parent.name or r["student"]  # RUNS/NAME/last -> NAME
        values = [f"{r['maps'][k][r2]:+.2f} | {r['maps'][k]['student_gt_corr']:+.3f}" for k, r2 in cells]
        rows.append(f"| {name} | " + " | ".join(values) + f" | {r['heatmap_corr_with_teacher']:+.3f} |")
    if runs:
        teacher = [f"1 | {runs[0]['maps'][k]['teacher_gt_corr']:+.3f}" for k, _ in cells]
        rows.append("| teacher (its own maps; LiDAR for the middle pair) | " + " | ".join(teacher) + " | 1 |")
    return head + "\n".join(rows)


def _vehicles_called_table(by_arm: dict[str, list[dict]], key: str) -> str:
    """Per arm and vehicle class, over the seeds that recorded it: the share of the class's boxes the
    detections called right, the share missed, and the other class they were called most."""
    labels = {arm: label.strip() for arm, label, _, _ in FAIR_ARMS}
    classes: list[str] = []
    rows = []
    for arm, runs in by_arm.items():
        runs = [r[key]["class_called"] for r in runs if "class_called" in r.get(key, {})]
        if not runs:
            continue
        order = ("car", "truck", "construction_vehicle", "bus", "trailer")  # the devkit's vehicle order
        classes = classes or sorted(runs[0], key=lambda c: (order.index(c) if c in order else len(order), c))
        cells = []
        for c in classes:
            called = [r[c]["called"] for r in runs if r.get(c, {}).get("boxes")]
            if not called:
                cells.append("")
                continue
            mean = {
                k: statistics.fmean(x.get(k, 0.0) for x in called) for k in {k for x in called for k in x}
            }
            other = max((k for k in mean if k not in (c, "missed")), key=mean.get, default=None)
            cell = f"{100 * mean.get(c, 0.0):.0f} / {100 * mean.get('missed', 0.0):.0f}"
            cells.append(
                cell + (f" / {other} {100 * mean[other]:.0f}" if other and mean[other] >= 0.005 else "")
            )
        rows.append(f"| {labels.get(arm, arm)} ({len(runs)}) | " + " | ".join(cells) + " |")
    if not rows:
        return ""
    where = "val" if key == "metrics" else "the fresh world"
    return (
        f"\n\nWhat the detections called the vehicles ({where}; each ground-truth box with a LiDAR point "
        "takes the class of the best detection scoring >= 0.2 within 2 m; % called right / % missed / the "
        "other class called most, %; mean over the seeds in brackets; "
        "`tools/class_confusion.py`):"
        "\n\n| model | " + " | ".join(classes) + " |\n|---|" + "---:|" * len(classes) + "\n" + "\n".join(rows)
    )


def _convergence_table(by_arm: dict[str, list[dict]]) -> str:
    """Val mAP of the snapshots part way and at the end, mean over seeds: did the runs converge?"""
    labels = {arm: label.strip() for arm, label, _, _ in FAIR_ARMS}
    rows = []
    for arm, runs in by_arm.items():
        runs = [r for r in runs if r.get("val_at_steps")]
        if not runs:
            continue
        steps = sorted({int(s) for r in runs for s in r["val_at_steps"]})
        cells = []
        for step in steps:
            values = [r["val_at_steps"][str(step)]["mAP"] for r in runs if str(step) in r["val_at_steps"]]
            cells.append(f"step {step}: {_mean_sd(values, 100, 2)}")
        final = [r["metrics"]["mAP"] for r in runs]
        cells.append(f"step {runs[0]['steps']} (end): {_mean_sd(final, 100, 2)}")
        rows.append(f"- {labels.get(arm, arm)}: " + "; ".join(cells))
    if not rows:
        return ""
    return "\n\nConvergence (val mAP part way through each run, mean +- sd over seeds):\n\n" + "\n".join(rows)


def load_depth_probes(results_dir: Path) -> list[dict]:
    """The ``bev_probe --depth`` reports of the runs (``NAME.depth.json``), sorted by run name."""
    out = []
    for f in sorted(results_dir.glob("*.depth.json")):
        out += json.loads(f.read_text())["depth_probes"]
    return out


def _depth_table(probes: list[dict]) -> str:
    """One row per run: its camera depth against the LiDAR on the feature cells a return hits."""
    if not probes:
        return ""
    rows = [
        "| run | median expected-depth error (m) | argmax within 1 m | entropy (nats) |",
        "|---|---:|---:|---:|",
    ]
    for p in probes:
        name = Path(p["model"]).parent.name or p["model"]
        rows.append(
            f"| {name} | {p['median_abs_error_m']:.2f} | {100 * p['argmax_within_1m']:.0f} % | "
            f"{p['entropy_nats']:.2f} |"
        )
    uniform = probes[0]["uniform_entropy_nats"]
    frames = sorted({str(p["frames"]) for p in probes})
    return (
        f"\n\nCamera depth against the LiDAR (val, {', '.join(frames)} frames, the image feature cells a "
        f"return hits; a uniform distribution has entropy {uniform:.2f}; `bev_probe --depth`):\n\n"
        + "\n".join(rows)
    )


def format_fair(
    records: list[dict],
    probes: list[dict] | None = None,
    distillation_probes: dict[str, list[dict]] | None = None,
    depth_probes: list[dict] | None = None,
) -> str:
    """Markdown: the main table (mean +- sd over seeds) on val and, for the runs also scored there, on a
    fresh world; per-class AP (val), the BEV probes, and when each run was trained."""
    by_arm = group_by_arm(records)
    classes: list[str] = []
    for r in records:
        classes += [c for c in r["metrics"]["class_ap"] if c not in classes]
    out = _summary_table(by_arm, "metrics")
    lineage = sorted({r["lineage_args"] for r in by_arm.get("teacher", []) if r.get("lineage_args")})
    if lineage:
        args = "`, `".join(lineage)
        out += f"\n\nThe teacher's lineage (its camera stage, then the teacher) trained with `{args}`."
    extra_args = sorted({r["train_args"] for r in records if r.get("train_args")})
    if extra_args:
        args = "`, `".join(extra_args)
        out += f"\n\nEvery run here trained with `{args}` on top of its arm's arguments (`TRAIN_ARGS`)."
    fresh = {arm: [r for r in runs if "metrics_fresh" in r] for arm, runs in by_arm.items()}
    if any(fresh.values()):
        seeds = sorted({str(r.get("fresh_seed", "?")) for runs in fresh.values() for r in runs})
        frames = sorted({str(r.get("fresh_frames", "?")) for runs in fresh.values() for r in runs})
        where = f"seed {', '.join(seeds)}, {', '.join(frames)} frames"
        out += f"\n\nOn a fresh world ({where}; no model saw it):\n\n"
        out += _summary_table(fresh, "metrics_fresh")
    out += _paired_differences(by_arm)
    out += _gain_sources(by_arm)
    if classes:
        rows = [
            "| model | " + " | ".join(classes) + " |",
            "|---|" + "---:|" * len(classes),
        ]
        for arm, label, _, _ in FAIR_ARMS:
            runs = by_arm.get(arm, [])
            if runs:
                cells = [
                    _mean_sd(
                        [r["metrics"]["class_ap"][c] for r in runs if c in r["metrics"]["class_ap"]], 100, 1
                    )
                    for c in classes
                ]
                rows.append(f"| {label.strip()} | " + " | ".join(cells) + " |")
        out += (
            "\n\nPer-class AP (mean over the 0.5/1/2/4 m thresholds; mean +- sd over seeds):\n\n"
            + "\n".join(rows)
        )
    if probes:
        out += "\n\nTeacher camera BEV vs ground truth (per-cell correlation, mean over val frames):\n"
        for p in probes:
            run = Path(p["model"]).parent.name or p["model"]  # RUNS/NAME/last -> NAME
            spread = f"sd {p['corr_sd']:.3f}, {p['frames']} frames"
            out += f"\n- {run} ({p['model_type']}): {p['corr_mean']:+.3f} ({spread})"
    for world, runs in (distillation_probes or {}).items():
        where = "val" if world == "val" else "the fresh world"
        frames = sorted({str(r["frames"]) for r in runs})
        out += (
            f"\n\nWhat the distillation put into the student's BEV maps ({where}, {', '.join(frames)} "
            "frames; R^2: the share of the teacher's map the student's explains, 1 a copy, 0 no better than "
            "its mean; GT corr: per-cell energy against the ground-truth heatmap; "
            "`bev_probe --teacher`):\n\n"
        )
        out += _distillation_probe_table(runs)
    out += _vehicles_called_table(by_arm, "metrics") + _vehicles_called_table(by_arm, "metrics_fresh")
    out += _convergence_table(by_arm)
    out += _depth_table(depth_probes or [])
    when = sorted({r["trained_at"][:10] for r in records})
    out += "\n\nRuns trained on: " + ", ".join(
        f"{d} ({n} run{'s' if n != 1 else ''})"
        for d, n in ((d, sum(r["trained_at"].startswith(d) for r in records)) for d in when)
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="write one run's result JSON")
    rec.add_argument("--name", required=True)
    rec.add_argument("--arm", required=True, choices=[a for a, _, _, _ in FAIR_ARMS])
    rec.add_argument("--seed", type=int, required=True)
    rec.add_argument(
        "--run", type=Path, required=True, help="run directory (last/, eval/, optionally eval_fresh/)"
    )
    rec.add_argument("--out", type=Path, required=True, help="result JSON to write")
    rec.add_argument("--extra", default="{}", help="JSON object merged into the record (steps, config, ...)")
    rec.add_argument("--data", type=Path, help="the val world's dataroot: record what vehicles were called")
    rec.add_argument("--fresh-data", type=Path, help="the fresh world's dataroot (the same, there)")
    fair = sub.add_parser("fair", help="assemble the fair table from result JSONs")
    fair.add_argument("results", type=Path)
    levers = sub.add_parser("levers", help="the README's table of levers from result JSONs")
    levers.add_argument("results", type=Path)
    legacy = sub.add_parser("legacy", help="the one-seed table from run directories")
    legacy.add_argument("runs", type=Path, help="directory holding one sub-directory per run")
    legacy.add_argument("--reference", default="baseline", help="run the differences are taken to")
    args = parser.parse_args(argv)
    if args.command == "record":
        record_run(
            args.out,
            args.name,
            args.arm,
            args.seed,
            args.run,
            json.loads(args.extra),
            args.data,
            args.fresh_data,
        )
        return 0
    if args.command == "levers":
        print(lever_table(load_records(args.results)), end="")
        return 0
    if args.command == "fair":
        records = load_records(args.results)
        if not records:
            print(f"no run records under {args.results}")
            return 1
        probe_file = args.results / "teacher_probe.json"
        probes = json.loads(probe_file.read_text())["probes"] if probe_file.is_file() else None
        print(
            format_fair(
                records, probes, load_distillation_probes(args.results), load_depth_probes(args.results)
            )
        )
        return 0
    rows = collect(args.runs)
    if not rows:
        print(f"no evaluated runs under {args.runs} (expected RUN/eval/metrics_summary.json)")
        return 1
    print(format_markdown(rows, args.reference))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
