"""Copy trained runs into models/ with a model card each: the checkpoints the node and replay default to.

Usage: .venv/bin/python tools/ship_models.py RUNS_DIR [teacher baseline student]
Each RUNS_DIR/<run>/last becomes models/<run>_tiny; RUNS_DIR/<run>/eval/metrics_summary.json (written by
`simdistill evaluate --out`) supplies the card's metrics.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simdistill_ros.models.checkpoint import load_checkpoint  # noqa: E402

PURPOSE = {
    "teacher": "LiDAR + camera fusion teacher (BEVFusion-style). Default teacher of `simdistill replay` and "
    "`simdistill train student --teacher`.",
    "baseline": "Camera-only baseline (BEVFusion-C analogue: camera BEV branch, decoder, head), trained on "
    "labels only. The reference the student is compared with.",
    "student": "SimDistill student: camera BEV branch + simulated-LiDAR branch (GCM), fused, trained with "
    "labels and the four distillation terms from the teacher, starting from the teacher's camera branch, "
    "fuser, decoder and head (`--init-from`). Default model of `detector_node` and `simdistill detect`. "
    "Camera-only at inference.",
}
LIMITS = """\
- Trained on the synthetic world only (procedural scenes, ray-cast images at 160x400 resized to the model's
  input, nuScenes-like 6-camera rig). It has never seen a real image: on real cameras expect nothing useful
  until it is fine-tuned on real data (train with `--config nuscenes` for that).
- BEV range +-40 m at 1.6 m cells; objects beyond 40 m are not detected.
- Tiny CPU config: the numbers rank methods on the synthetic benchmark; they are not nuScenes numbers.
- Short CPU schedule (6 epochs on 640 frames, two cores): the camera-only models (baseline, student)
  place their matches about 1 m off (mATE) and stay far below the LiDAR teacher (mAP 3-7 points against
  40). They exercise the node and the replay end to end; they are not detectors to drive with. Longer
  schedules and more data are the first levers.
"""


def card(name: str, model_type: str, ckpt: Path, metrics: dict | None) -> str:
    _, cfg, meta = load_checkpoint(ckpt)
    size_mb = (ckpt / "model.safetensors").stat().st_size / 1e6
    lines = [
        f"# {name}",
        "",
        PURPOSE[model_type],
        "",
        "## Data",
        f"- training frames: {meta.get('train_frames', '?')} (synthetic world, split `train`)",
        f"- data hash: `{meta.get('data_hash', '?')}`",
        "- the benchmark: `simdistill synth --out data/synth --scenes 100 --frames-per-scene 8 --seed 1000 "
        "--image-size 160x400 --val-fraction 0.2` (80 train / 20 val scenes)",
        "",
        "## Config",
        f"- preset `tiny`: input {cfg.image_size[0]}x{cfg.image_size[1]}, BEV grid "
        f"{cfg.grid.bev_shape[0]}x{cfg.grid.bev_shape[1]} ({cfg.grid.bev_cell[0]} m cells), "
        f"{cfg.grid.num_depth_bins} depth bins; full config in `config.json`",
        f"- weights: `model.safetensors`, {size_mb:.1f} MB (fp32)",
        f"- commit: `{meta.get('commit', '?')}`",
        "",
        "## Training command",
        "```bash",
        str(meta.get("command", "?")).replace(str(ROOT) + "/", ""),
        "```",
        f"(epochs {meta.get('epoch', '?')}, steps {meta.get('step', '?')})",
        "",
        "## Metrics (official nuScenes devkit, synthetic val split)",
    ]
    if metrics:
        tp = metrics["tp_errors"]
        lines += [
            "| mAP | NDS | mATE | mASE | mAOE | mAVE | mAAE |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {100 * metrics['mean_ap']:.1f} | {100 * metrics['nd_score']:.1f} | {tp['trans_err']:.3f} | "
            f"{tp['scale_err']:.3f} | {tp['orient_err']:.3f} | {tp['vel_err']:.3f} | {tp['attr_err']:.3f} |",
            "",
            "Per-class AP: "
            + ", ".join(
                f"{k} {100 * v:.1f}"
                for k, v in metrics["mean_dist_aps"].items()
                if k in metrics.get("classes_evaluated", metrics["mean_dist_aps"])
            ),
        ]
    else:
        lines.append("not evaluated")
    lines += ["", "## Known limits", LIMITS]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    runs = Path(argv[0])
    for run in argv[1:] or ["teacher", "baseline", "student"]:
        ckpt = runs / run / "last"
        model_type = json.loads((ckpt / "meta.json").read_text())["model_type"]
        summary = runs / run / "eval" / "metrics_summary.json"
        metrics = json.loads(summary.read_text()) if summary.is_file() else None
        dst = ROOT / "models" / f"{run}_tiny"
        if dst.exists():
            shutil.rmtree(dst)
        dst.mkdir(parents=True)
        for f in ("model.safetensors", "config.json"):
            shutil.copy2(ckpt / f, dst / f)
        meta = json.loads((ckpt / "meta.json").read_text())
        # Paths of the machine it was trained on mean nothing to users; keep them repository-relative.
        for key in ("data", "teacher", "init_from", "command"):
            if isinstance(meta.get(key), str):
                meta[key] = meta[key].replace(str(ROOT) + "/", "")
        (dst / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        (dst / "README.md").write_text(card(dst.name, model_type, dst, metrics))
        print(f"shipped {dst.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
