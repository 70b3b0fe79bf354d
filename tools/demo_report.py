"""The closing report of `make demo` (tools/demo.sh): what ran, how many frames made it, the live metrics
in points beside the shipped model's reference numbers from its model card, and where the outputs are.

    python tools/demo_report.py OUT_DIR --model MODEL_DIR --scene NAME [--frames N]
        [--seconds S]

The text is built by :func:`format_demo_report` from a :class:`DemoRun` (plain numbers and paths, so the
text is tested without running the demo); :func:`collect_demo_run` reads a finished demo's files.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

# The metrics compared live: mAP and NDS in points; the TP errors in their units. mAVE only when the recorded
# frames carry the velocity their DetectedObjects published (Detection3DArray has no velocity field: from it
# alone the live mAVE would score zero velocities). mAAE never: no model predicts attributes, the results
# carry each class's default.
TP_ROWS = (("mATE", "trans_err", "m"), ("mASE", "scale_err", "1-IoU"), ("mAOE", "orient_err", "rad"))
VELOCITY_ROW = ("mAVE", "vel_err", "m/s")
CARD_COLUMNS = ("mAP", "NDS", "mATE", "mASE", "mAOE", "mAVE", "mAAE")


@dataclass
class DemoRun:
    """What one demo run did and measured (None where a number is unknown)."""

    model: str  # the checkpoint directory
    scene: str  # the val scene played
    frames_in_bag: int | None = None  # camera sets the player sent
    frames_published: int | None = None  # Detection3DArray messages the node published
    frames_recorded: int | None = None  # messages the recorder received
    frames_with_velocity: int | None = None  # recorded frames with the velocity of their DetectedObjects
    dropped: int | None = None  # frames the node dropped (busy or without a complete camera set)
    failed: int | None = None  # frames the node could not process
    live: dict[str, float] = field(default_factory=dict)  # devkit summary: mean_ap, nd_score, tp_errors
    reference: dict[str, float] = field(default_factory=dict)  # model card: mAP, NDS (points), mATE, ...
    offline: dict[str, float] = field(default_factory=dict)  # devkit summary of the offline detection bag
    sanity_map: float | None = None  # mAP of the ground truth scored as detections (must be 1.0)
    pictures: str = ""
    overview: str = ""
    detect_bag: str = ""
    live_detections: str = ""
    metrics: str = ""
    seconds: float | None = None
    card_frames: int | None = None  # frames the model card's metrics were scored on
    model_ms: float | None = None  # the model's median ms per frame in this run (`simdistill detect`)


def card_reference(model_dir: str | Path) -> dict[str, float]:
    """The metrics row of a model card (``README.md`` beside the weights): {"mAP": 6.6, "NDS": 16.0,
    "mATE": 0.981, ...}; {} when the card or its table is missing."""
    card = Path(model_dir) / "README.md"
    if not card.is_file():
        return {}
    lines = [ln.strip() for ln in card.read_text().splitlines()]
    for i, line in enumerate(lines[:-2]):
        header = [c.strip() for c in line.strip("|").split("|")]
        if header[:2] == ["mAP", "NDS"]:
            values = [c.strip() for c in lines[i + 2].strip("|").split("|")]
            try:
                return {k: float(v) for k, v in zip(header, values) if k in CARD_COLUMNS}
            except ValueError:
                return {}
    return {}


def card_frames(model_dir: str | Path) -> int | None:
    """How many frames the model card's metrics were scored on (its "val split: N frames" heading)."""
    card = Path(model_dir) / "README.md"
    m = re.search(r"val split: (\d+) frames", card.read_text()) if card.is_file() else None
    return int(m.group(1)) if m else None


def detect_model_ms(log_text: str) -> float | None:
    """The model's median ms per frame from ``simdistill detect``'s summary line (None when absent)."""
    m = re.search(r"model median ([\d.]+) ms/frame", log_text)
    return float(m.group(1)) if m else None


def node_counts(log_text: str) -> dict[str, int]:
    """The numbers of the detector node's closing ``stopped: ...`` line, by name ({} when absent)."""
    line = next((ln for ln in reversed(log_text.splitlines()) if "stopped:" in ln), "")
    counts = {}
    for key, pattern in (
        ("synced", r"(\d+) frames synced"),
        ("published", r"(\d+) published"),
        ("failed", r"(\d+) failed"),
    ):
        m = re.search(pattern, line)
        if m:
            counts[key] = int(m.group(1))
    drops = re.search(r"dropped: (.*)$", line)
    if drops:  # the node's drop reasons (live_stats' BUSY, NO_SET): "<count> <reason>, ..." or "none"
        by_reason = {reason: int(n) for n, reason in re.findall(r"(\d+) ([^,]+)", drops.group(1))}
        counts["dropped_busy"] = by_reason.get("model busy (frame queue full)", 0)
        counts["unmatched"] = by_reason.get("no complete camera set", 0)
    return counts


def _num(value: float | None, fmt: str) -> str:
    return "?" if value is None else format(value, fmt)


def _short(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (the report's paths stay short)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _pts(fraction: float | None) -> str:
    return "?" if fraction is None else f"{100 * fraction:.1f}"


def format_demo_report(run: DemoRun) -> str:
    """The labelled report printed at the end of the demo."""
    w = 18  # label column
    pad = " " * w
    card = _short(Path(run.model) / "README.md")
    lines = ["", "=" * 32 + " demo report " + "=" * 32]
    lines += [
        f"{'What ran':<{w}}three ROS 2 processes: bag_player ({run.scene}) -> detector_node "
        f"({Path(run.model).name})",
        f"{pad}-> detection_recorder; then `simdistill detect` offline on the same bag",
        f"{'Frames':<{w}}{_num(run.frames_in_bag, 'd')} played, {_num(run.frames_published, 'd')} published "
        f"by the node, {_num(run.frames_recorded, 'd')} recorded; {_num(run.dropped, 'd')} dropped, "
        f"{_num(run.failed, 'd')} failed",
        f"{'Live metrics':<{w}}official nuScenes devkit on the recorded frames (mAP, NDS in points):",
        f"{pad}{'':<6}{'this run':>10}{'model card':>12}",
    ]
    tp = run.live.get("tp_errors", {})
    ref = run.reference
    lines.append(f"{pad}{'mAP':<6}{_pts(run.live.get('mean_ap')):>10}{_num(ref.get('mAP'), '.1f'):>12}")
    lines.append(f"{pad}{'NDS':<6}{_pts(run.live.get('nd_score')):>10}{_num(ref.get('NDS'), '.1f'):>12}")
    lines.append(f"{pad}{'frames':<6}{_num(run.frames_recorded, 'd'):>10}{_num(run.card_frames, 'd'):>12}")
    with_velocity = bool(run.frames_with_velocity)
    for name, key, unit in TP_ROWS + ((VELOCITY_ROW,) if with_velocity else ()):
        lines.append(f"{pad}{name:<6}{_num(tp.get(key), '.3f'):>10}{_num(ref.get(name), '.3f'):>12}  {unit}")
    if with_velocity:
        lines += [
            f"{pad}mAVE from the velocity the node published in DetectedObjects "
            f"({run.frames_with_velocity} of {_num(run.frames_recorded, 'd')} frames);",
            f"{pad}mAAE is not shown: the models predict no attributes (each class gets its default one).",
            f"{pad}NDS counts both errors.",
        ]
    else:
        lines += [
            f"{pad}mAVE is not shown: Detection3DArray has no velocity field and no DetectedObjects were",
            f"{pad}recorded, so the live boxes carry none (node outputs [vision_msgs, autoware] sends it);",
            f"{pad}mAAE neither: the models predict no attributes (each class gets its default one).",
            f"{pad}NDS still counts both errors.",
        ]
    lines += [
        f"{pad}Not like for like: this run scores {_num(run.frames_recorded, 'd')} frames of one scene, "
        f"the model card",
        f"{pad}({card}) the {_num(run.card_frames, 'd')} frames of the benchmark's val split.",
        f"{pad}A few frames land several points above or below the card by chance: the card's numbers",
        f"{pad}are the model's.",
    ]
    if run.offline:
        off = run.offline
        mave = _num(off.get("tp_errors", {}).get("vel_err"), ".3f")
        lines += [
            f"{'Offline bag':<{w}}`simdistill evaluate --detections` on the output bag (velocity from its",
            f"{pad}DetectedObjects): mAP {_pts(off.get('mean_ap'))}, NDS {_pts(off.get('nd_score'))}, "
            f"mAVE {mave} m/s",
        ]
    if run.sanity_map is not None:
        verdict = "ok" if abs(run.sanity_map - 1.0) < 1e-6 else "WRONG: the evaluation set-up is broken"
        lines.append(
            f"{'Metric check':<{w}}ground truth scored as detections gives mAP {_pts(run.sanity_map)} "
            f"(must be 100.0: {verdict})"
        )
    lines.append(f"{'Pictures':<{w}}{run.pictures or '?'} (one PNG per frame)")
    if run.overview:
        lines.append(f"{'Overview':<{w}}{run.overview} (up to 6 frames on one sheet)")
    lines += [
        f"{'Output bag':<{w}}{run.detect_bag or '?'} (Detection3DArray, DetectedObjects, markers)",
        f"{'Live detections':<{w}}{run.live_detections or '?'}",
        f"{'Metrics':<{w}}{run.metrics or '?'}",
    ]
    if run.model_ms is not None:
        lines.append(
            f"{'Speed':<{w}}model median {run.model_ms:.0f} ms/frame in this run (`simdistill detect` on "
            "this machine; docs/speed.md has the benchmark)"
        )
    if run.seconds is not None:
        lines.append(f"{'Took':<{w}}{run.seconds:.0f} s")
    lines.append("=" * 77)
    return "\n".join(lines)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def collect_demo_run(
    out_dir: str | Path, model_dir: str | Path, scene: str, frames: int | None = None
) -> DemoRun:
    """A finished demo's numbers from its files (tools/demo.sh's layout)."""
    out = Path(out_dir)
    live = out / "live"
    node = node_counts((live / "node.log").read_text()) if (live / "node.log").is_file() else {}
    recorded = _read_json(live / "detections.json").get("frames")
    with_velocity = None if recorded is None else sum(bool(f.get("has_velocity")) for f in recorded)
    dropped = None
    if "dropped_busy" in node or "unmatched" in node:
        dropped = node.get("dropped_busy", 0) + node.get("unmatched", 0)
    sanity = _read_json(out / "sanity" / "metrics_summary.json").get("mean_ap")
    overview = out / "pictures" / "overview.png"
    detect_log = out / "detect.log"  # tools/demo.sh keeps `simdistill detect`'s output there
    return DemoRun(
        model=str(model_dir),
        scene=scene,
        frames_in_bag=frames,
        frames_published=node.get("published"),
        frames_recorded=None if recorded is None else len(recorded),
        frames_with_velocity=with_velocity,
        dropped=dropped,
        failed=node.get("failed"),
        live=_read_json(live / "eval" / "metrics_summary.json"),
        offline=_read_json(out / "offline_eval" / "metrics_summary.json"),
        reference=card_reference(model_dir),
        card_frames=card_frames(model_dir),
        model_ms=detect_model_ms(detect_log.read_text()) if detect_log.is_file() else None,
        sanity_map=sanity,
        pictures=str(out / "pictures"),
        overview=str(overview) if overview.is_file() else "",
        detect_bag=str(out / "detect_bag"),
        live_detections=str(live / "detections.json"),
        metrics=f"{live / 'eval' / 'report.txt'} (per class), metrics_summary.json beside it",
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="demo_report", description="print the closing report of tools/demo.sh")
    p.add_argument("out", help="the demo's output directory")
    p.add_argument("--model", required=True, help="the checkpoint directory the node ran")
    p.add_argument("--scene", required=True, help="the val scene that was played")
    p.add_argument("--frames", type=int, help="the frames in the played bag")
    p.add_argument("--seconds", type=float, help="the demo's run time")
    args = p.parse_args(argv)
    run = collect_demo_run(args.out, args.model, args.scene, args.frames)
    run.seconds = args.seconds
    print(format_demo_report(run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
