"""The reproduction table: one row per run, read from the devkit's metrics_summary.json files.

`python -m simdistill_ros.evaluation.table RUNS_DIR` prints it as Markdown; rows come in the order of the
paper's table (teacher, baselines, SimDistill, ablations) for whichever runs exist.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="directory holding one sub-directory per run")
    parser.add_argument("--reference", default="baseline", help="run the differences are taken to")
    args = parser.parse_args(argv)
    rows = collect(args.runs)
    if not rows:
        print(f"no evaluated runs under {args.runs} (expected RUN/eval/metrics_summary.json)")
        return 1
    print(format_markdown(rows, args.reference))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
