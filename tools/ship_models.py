"""Copy trained runs into models/ with a model card each: the checkpoints the node and replay default to.

Usage: .venv/bin/python tools/ship_models.py RUNS_DIR [NAME=RUN ...] [--suffix tiny] [--records DIR]
       [--image-sizes DIR] [--pixel-noise DIR] [--note NAME=TEXT ...] [--path-alias OLD=NEW ...]

Each RUNS_DIR/RUN/last becomes models/NAME_SUFFIX. NAME is the checkpoint's type (teacher, baseline or
student), or the type and a qualifier (``baseline_depth``); a bare RUN means NAME=RUN. The card's
metrics come from the run's record of `make reproduce` (RECORDS/RUN.json: val and the fresh world,
per-class AP, AP per threshold) when there is one, else from RUNS_DIR/RUN/eval/metrics_summary.json
(written by `simdistill evaluate --out`).

    tools/ship_models.py runs/reproduce                     # models/{teacher,baseline,student}_tiny
    tools/ship_models.py runs/fair teacher=teacher baseline=baseline_warm_s0 student=student_s0 \
        --suffix v2 --records results/reproduce             # models/{teacher,baseline,student}_v2
    tools/ship_models.py runs/fair baseline=baseline_long_s0 baseline_depth=baseline_depth_long_s0 \
        --suffix v3 --records results/reproduce             # models/baseline_v3, models/baseline_depth_v3
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))  # also when imported, not run

from image_sizes import TOLERANCE  # noqa: E402  (tools/, beside this script)
from reproduction_table import (  # noqa: E402
    _mean_sd,
    _paired_diffs,
    group_by_arm,
    load_records,
    metrics_from_summary,
)

from simdistill_ros.evaluation.confusion import DISTANCE, SCORE  # noqa: E402
from simdistill_ros.models.checkpoint import CONFIG_SHA256_KEY, load_checkpoint, weights_sha256  # noqa: E402

PURPOSE = {
    "teacher": "LiDAR + camera fusion teacher (BEVFusion-style). Default teacher of `simdistill replay` and "
    "`simdistill train student --teacher`.",
    "baseline": "Camera-only model (BEVFusion-C analogue: camera BEV branch, decoder, head), no "
    "distillation.",
    "student": "SimDistill student: camera BEV branch + simulated-LiDAR branch (GCM), fused, trained with "
    "labels and distillation from the teacher (the terms below), starting from the teacher's camera branch, "
    "fuser, decoder and head (`--init-from`). Camera-only at inference.",
}
# What a run's start says about a baseline: warm-started like the student, or from ImageNet as long as the
# student's whole lineage (the equal-training control)
WARM_BASELINE = (
    " Warm-started from the same teacher as the shipped student and trained as many steps, without "
    "distillation: the fair control beside the student (`make reproduce`'s `{arm}` arm)."
)
LONG_BASELINE = (
    " Trained from the ImageNet start for as many optimizer steps as the student's whole lineage (camera "
    "stage, teacher, student; `make reproduce`'s `{arm}` arm{control})."
)
LIMITS_TINY = """\
- Trained on the synthetic world only (procedural scenes, ray-cast images at 160x400 resized to the model's
  input, nuScenes-like 6-camera rig). It has never seen a real image: on real cameras expect nothing useful
  until it is fine-tuned on real data (train with `--config nuscenes` for that).
- BEV range +-40 m at 1.6 m cells; objects beyond 40 m are not detected.
- Tiny CPU config: the numbers rank methods on the synthetic benchmark; they are not nuScenes numbers.
- Short CPU schedule (6 epochs on 640 frames, two cores): the camera-only models (baseline, student)
  place their matches about 1 m off (mATE) and stay far below the LiDAR teacher (mAP 3-7 points against
  40). They exercise the node and the replay end to end; they are not detectors to drive with. Longer
  schedules and more data are the first levers.
- The student's lead over `baseline_tiny` is mostly its start (it starts from the teacher, the baseline
  from scratch): see docs/reproduction.md (fair reproduction) and the `_v2` models.
"""


def limits_fair(record: dict, meta: dict, against: str, notes: tuple[str, ...] = ()) -> str:
    """The known limits of a model trained by `make reproduce` (``record``), with what its records say of
    it against the model shipped beside it (``against``; "" when there is none) and the shipper's
    ``notes`` (bullets)."""
    size, world = record["image_size"], record["world"]
    schedule = f"{record['steps']} steps of batch {record['batch']} on {meta.get('train_frames', '?')} frames"
    lines = [
        f"- Trained on the synthetic world {world} only (procedural scenes, ray-cast {size} images, "
        "nuScenes-like 6-camera rig). It has never seen a real image: on real cameras expect nothing "
        "useful until it is fine-tuned on real data (train with `--config nuscenes` for that).",
        "- BEV range +-51.2 m at 0.8 m cells (the devkit's class ranges); objects beyond it are not "
        "detected.",
        f"- CPU config `{record['config']}` and a short schedule ({schedule}, two cores): the numbers "
        "rank methods on the synthetic benchmark; they are not nuScenes numbers. The camera models find a "
        "car's axis but not which end is its front: a third or more of matched cars point backwards (mAOE "
        'about 1.5 rad; docs/reproduction.md, "Runs so far").',
        "- On a 2-core CPU the camera models take about 0.15-0.2 s per six-camera frame (docs/speed.md); "
        "a GPU or the onnxruntime backend is faster.",
    ]
    lines += [line for line in (misnamed(record), against, *notes) if line]
    return "\n".join(lines) + "\n"


def misnamed(record: dict) -> str:
    """A limits bullet for the classes whose boxes the detections call another class more often than their
    own on val (the record's ``class_called``); "" when there is none."""
    parts = []
    for name, counted in (record.get("metrics", {}).get("class_called") or {}).items():
        shares = counted["called"]
        others = {k: v for k, v in shares.items() if k not in (name, "missed")}
        if not others:
            continue
        other, share = max(others.items(), key=lambda kv: kv[1])
        if share > shares.get(name, 0.0):
            parts.append(f"more {name} boxes {other} ({share:.0%}) than {name} ({shares.get(name, 0.0):.0%})")
    if not parts:
        return ""
    return (
        "- On val it calls "
        + "; ".join(parts)
        + f": each ground-truth box takes the class of the best detection within {DISTANCE:g} m scoring "
        f">= {SCORE:g} (`tools/class_confusion.py`)."
    )


def image_sizes_bullet(rec: dict | None, weights: str) -> str:
    """A limits bullet from ``tools/image_sizes.py``'s record of this model, "" without one or when the
    record measured other weights (``weights``: the shipped weights' sha256)."""
    if not rec or rec.get("weights_sha256") != weights:
        return ""
    train = rec["training_size"]
    base = rec["sizes"][train]
    cells = [
        f"{row['mAP']:.1f} / {row['NDS']:.1f} at {size} ({100 * rec['change'][size]['mAP']:+.1f} % / "
        f"{100 * rec['change'][size]['NDS']:+.1f} %)"
        for size, row in rec["sizes"].items()
        if size != train
    ]
    verdict = "within" if rec["within"] else "outside"
    return (
        "- Other image sizes (the fresh world re-rendered, `tools/image_sizes.py`): mAP / NDS "
        + ", ".join(cells)
        + f" against {base['mAP']:.1f} / {base['NDS']:.1f} at its training size {train}: {verdict} the "
        f"{100 * TOLERANCE:.0f} % a shipped default keeps."
    )


def pixel_noise_bullet(recs: list[dict], weights: str, command: str = "") -> str:
    """A limits bullet from the ``simdistill evaluate --image-noise`` records of this model
    (results/pixel_noise), "" without one of the same weights; ``command`` (its training command) says
    whether it trained with photometric augmentation."""
    cells = [
        f"sigma {r['image_noise']:g}: {r['noisy']['mAP']:.1f} / {r['noisy']['NDS']:.1f} "
        f"({100 * r['change']['mAP']:+.1f} % / {100 * r['change']['NDS']:+.1f} %)"
        for r in sorted(recs, key=lambda r: r["image_noise"])
        if r.get("weights_sha256") == weights
    ]
    if not cells:
        return ""
    clean = next(r["clean"] for r in recs if r.get("weights_sha256") == weights)
    return (
        "- Pixel noise (Gaussian, grey levels, on the fresh world; `simdistill evaluate --image-noise`): "
        f"mAP / NDS {'; '.join(cells)} against {clean['mAP']:.1f} / {clean['NDS']:.1f} clean. "
        + (
            "Trained with photometric augmentation."
            if "--image-noise" in command or "--color-jitter" in command
            else "Trained on clean renders, without photometric augmentation (`--image-noise`, "
            "`--color-jitter`)."
        )
    )


def comparison(records: list[dict], record: dict, other: str, other_record: dict) -> str:
    """A limits bullet: this run's arm minus the arm of ``other`` (the model shipped beside it), paired
    by seed over every seed both arms have in ``records``, on val and the fresh world."""
    by_arm = group_by_arm(records)
    arm, ref = record["arm"], other_record["arm"]
    cells = []
    for key, where in (("metrics", "val"), ("metrics_fresh", "fresh world")):
        for metric in ("mAP", "NDS"):
            diffs = list(_paired_diffs(by_arm, arm, ref, key, metric).values())
            if diffs:
                cells.append(f"{where} {metric} {_mean_sd(diffs, 1, 2, signed=True)}")
    if not cells:
        return ""
    seeds = len(_paired_diffs(by_arm, arm, ref, "metrics", "mAP"))
    return (
        f"- Against `{other}` (`make reproduce` arms `{arm}` minus `{ref}`, paired by seed, {seeds} "
        f"seed{'s' if seeds != 1 else ''}, points): " + "; ".join(cells) + ". docs/reproduction.md and "
        "docs/lidar_knowledge.md have the table and its controls."
    )


def _metrics_table(m: dict) -> list[str]:
    """A card's metrics table (the demo report reads its mAP / NDS row: keep the header)."""
    return [
        "| mAP | NDS | mATE | mASE | mAOE | mAVE | mAAE |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {100 * m['mAP']:.1f} | {100 * m['NDS']:.1f} | {m['mATE']:.3f} | {m['mASE']:.3f} | "
        f"{m['mAOE']:.3f} | {m['mAVE']:.3f} | {m['mAAE']:.3f} |",
        "",
        "Per-class AP: " + ", ".join(f"{k} {100 * v:.1f}" for k, v in m["class_ap"].items()),
        "",
        "AP per centre-distance threshold: "
        + ", ".join(f"{float(k):g} m {100 * v:.1f}" for k, v in m["ap_by_threshold"].items()),
    ]


def recipe(model_type: str, loss) -> str:
    """What the checkpoint's own loss config says it was trained with, beyond its type's purpose: depth
    supervision, and for a student the feature terms' form and which terms were on (``loss``: its
    ``LossWeights``)."""
    parts = []
    if loss.depth > 0:
        parts.append(
            f"Its depth net was trained against LiDAR depth (BCE on each hit feature cell's bin, weight "
            f"{loss.depth:g}; `--depth-weight`); inference needs no LiDAR."
        )
    if model_type == "student":
        terms = {"imd": "IMD", "cmd": "CMD", "mmd_feat": "MMD-F", "mmd_pred_heatmap": "MMD-P"}
        on = [f"{label} {getattr(loss, name):g}" for name, label in terms.items() if loss.active(name)]
        form = (
            "balanced (each channel scaled by the teacher's RMS, foreground and background cells apart, "
            f"weights {loss.feature_fg:g} / {loss.feature_bg:g})"
            if loss.feature_loss == "balanced"
            else "SimDistill's (raw MSE, CMD on the foreground mask)"
        )
        parts.append(f"Distillation terms on (weights): {', '.join(on) or 'none'}; feature terms {form}.")
    return (" " + " ".join(parts)) if parts else ""


def card(
    name: str,
    model_type: str,
    ckpt: Path,
    metrics: dict | None,
    record: dict | None,
    against: str = "",
    notes: tuple[str, ...] = (),
) -> str:
    _, cfg, meta = load_checkpoint(ckpt)
    size_mb = (ckpt / "model.safetensors").stat().st_size / 1e6
    purpose = PURPOSE[model_type]
    arm = record["arm"] if record else "baseline_warm"
    if model_type == "baseline" and meta.get("init_from"):
        purpose += WARM_BASELINE.format(arm=arm)
    elif model_type == "baseline" and arm.startswith("baseline_") and arm.endswith("_long"):
        control = ": the equal-training control" if arm == "baseline_long" else ""
        purpose += LONG_BASELINE.format(arm=arm, control=control)
    purpose += recipe(model_type, cfg.loss)
    if record:
        world, size, seed = record["world"], record["image_size"], record["data_seed"]
        bench = (
            f"world {world}, 150 scenes x 8 frames of six {size} cameras + LiDAR, seed {seed}, 100 train / "
            "50 val scenes, synthesized by `tools/reproduce.sh` (`make reproduce`)"
        )
        preset, limits = record["config"], limits_fair(record, meta, against, notes)
    else:
        bench = (
            "`simdistill synth --out data/synth --scenes 100 --frames-per-scene 8 --seed 1000 "
            "--image-size 160x400 --val-fraction 0.2` (80 train / 20 val scenes)"
        )
        preset, limits = "tiny", LIMITS_TINY + "".join(f"{n}\n" for n in notes)
    lines = [
        f"# {name}",
        "",
        purpose,
        "",
        "## Data",
        f"- training frames: {meta.get('train_frames', '?')} (synthetic world, split `train`)",
        f"- data hash: `{meta.get('data_hash', '?')}`",
        f"- the benchmark: {bench}",
        "",
        "## Config",
        f"- preset `{preset}`: input {cfg.input_hw[0]}x{cfg.input_hw[1]}, BEV grid "
        f"{cfg.grid.bev_shape[0]}x{cfg.grid.bev_shape[1]} ({cfg.grid.bev_cell[0]} m cells), "
        f"{cfg.grid.num_depth_bins} depth bins, camera backbone `{cfg.backbone.kind}`; full config in "
        "`config.json`",
        f"- weights: `model.safetensors`, {size_mb:.1f} MB (fp32)",
        f"- commit: `{meta.get('commit', '?')}`",
        "",
        "## Training command",
        "```bash",
        str(meta.get("command", "?")).replace(str(ROOT) + "/", ""),
        "```",
        f"(epochs {meta.get('epoch', '?')}, steps {meta.get('step', '?')}"
        + (f", seed {record['seed']}, trained {record['trained_at']}" if record else "")
        + ")",
        "",
    ]
    if record:
        lines += [
            f"## Metrics (official nuScenes devkit, synthetic val split: {record['val_frames']} frames)",
            *_metrics_table(record["metrics"]),
        ]
        if record.get("metrics_fresh"):
            lines += [
                "",
                f"On a fresh world no model trained or was chosen on (seed {record['fresh_seed']}, "
                f"{record['fresh_frames']} frames, same world version and image size):",
                "",
                *_metrics_table(record["metrics_fresh"]),
            ]
    elif metrics:
        lines += [
            "## Metrics (official nuScenes devkit, synthetic val split)",
            *_metrics_table(metrics_from_summary(metrics)),
        ]
    else:
        lines += ["## Metrics", "not evaluated"]
    lines += ["", "## Known limits", limits]
    return "\n".join(lines)


def partner(name: str, model_type: str, shipped: dict[str, str]) -> str | None:
    """The model a card compares with, among those shipped together: the student with the baseline and
    the baseline with the student (or, without one, with the first qualified baseline such as
    ``baseline_depth``); a qualified name with the plain model of its type."""
    if name == "student":
        other = "baseline"
    elif name == "baseline":
        qualified = [n for n in shipped if n.startswith("baseline_")]
        other = "student" if "student" in shipped else (qualified[0] if qualified else "")
    elif name != model_type:
        other = model_type
    else:
        return None
    return other if other in shipped else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, help="directory of trained runs (RUN/last, RUN/eval)")
    p.add_argument("pairs", nargs="*", help="NAME=RUN or RUN (default: teacher baseline student)")
    p.add_argument("--suffix", default="tiny", help="models/TYPE_SUFFIX (default: tiny)")
    p.add_argument("--records", type=Path, help="`make reproduce` records (RUN.json) for the cards")
    p.add_argument("--dest", type=Path, default=ROOT / "models", help="where to ship (default: models/)")
    p.add_argument(
        "--path-alias",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="write this machine's path OLD as NEW in the card and meta.json (e.g. a data directory outside "
        "the checkout as the harness default data/fair_v2); repeatable",
    )
    p.add_argument(
        "--note",
        action="append",
        default=[],
        metavar="NAME=TEXT",
        help="one more known-limits bullet for NAME's card (e.g. why it is the default); repeatable",
    )
    p.add_argument(
        "--image-sizes",
        type=Path,
        default=ROOT / "results" / "image_sizes",
        help="tools/image_sizes.py's records (SHIPPED_NAME.json): a card bullet when they measured the "
        "same weights (default: results/image_sizes)",
    )
    p.add_argument(
        "--pixel-noise",
        type=Path,
        default=ROOT / "results" / "pixel_noise",
        help="`simdistill evaluate --image-noise` records (SHIPPED_NAME_sigma*.json): a card bullet when "
        "they measured the same weights (default: results/pixel_noise)",
    )
    args = p.parse_args(argv)
    pairs = [
        (t, r or t)
        for t, _, r in (pair.partition("=") for pair in args.pairs or ["teacher", "baseline", "student"])
    ]
    aliases = [tuple(a.split("=", 1)) for a in args.path_alias]
    notes: dict[str, list[str]] = {}
    for note in args.note:
        name, _, text = note.partition("=")
        notes.setdefault(name, []).append(f"- {text}")
    records = load_records(args.records) if args.records else []
    by_run = {r["name"]: r for r in records}
    runs_of = dict(pairs)
    for name, run in pairs:
        ckpt = args.runs / run / "last"
        meta = json.loads((ckpt / "meta.json").read_text())
        model_type = meta["model_type"]
        if name != model_type and not name.startswith(model_type + "_"):
            p.error(f"{ckpt} is a {model_type}: name it {model_type} or {model_type}_SOMETHING, not {name}")
        summary = args.runs / run / "eval" / "metrics_summary.json"
        metrics = json.loads(summary.read_text()) if summary.is_file() else None
        record_file = args.records / f"{run}.json" if args.records else None
        record = json.loads(record_file.read_text()) if record_file and record_file.is_file() else None
        dst = args.dest / f"{name}_{args.suffix}"
        if dst.exists():
            shutil.rmtree(dst)
        dst.mkdir(parents=True)
        for f in ("model.safetensors", "config.json"):
            shutil.copy2(ckpt / f, dst / f)
        # Paths of the machine it was trained on mean nothing to users; keep them repository-relative.
        for key in ("data", "teacher", "init_from", "command"):
            if isinstance(meta.get(key), str):
                meta[key] = meta[key].replace(str(ROOT) + "/", "")
                for old, new in aliases:
                    meta[key] = meta[key].replace(old, new)
        if record:
            meta["synthetic_world"] = {"world": record["world"], "image_size": record["image_size"]}
        # A run saved before config.json was checksummed gets the field here, from the copied file.
        meta.setdefault(CONFIG_SHA256_KEY, weights_sha256(dst / "config.json"))
        (dst / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        other = partner(name, model_type, runs_of)
        against = ""
        if record and other in runs_of and runs_of[other] in by_run:
            against = comparison(records, record, f"{other}_{args.suffix}", by_run[runs_of[other]])
        size_file = args.image_sizes / f"{dst.name}.json"
        sizes = image_sizes_bullet(
            json.loads(size_file.read_text()) if size_file.is_file() else None, meta.get("weights_sha256", "")
        )
        noise = pixel_noise_bullet(
            [json.loads(f.read_text()) for f in sorted(args.pixel_noise.glob(f"{dst.name}_sigma*.json"))],
            meta.get("weights_sha256", ""),
            meta.get("command", ""),
        )
        card_notes = tuple(n for n in (sizes, noise, *notes.get(name, ())) if n)
        (dst / "README.md").write_text(card(dst.name, model_type, dst, metrics, record, against, card_notes))
        print(f"shipped {dst} from {ckpt}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
