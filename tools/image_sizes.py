"""Does a model keep its accuracy when its cameras deliver another resolution? Renders one synthetic world
at several image sizes (one seed: the same scenes and labels at every size), scores each model on each with
the official devkit (``simdistill evaluate``) and writes the change against the size the model trained at.

Usage: .venv/bin/python tools/image_sizes.py --models baseline_v3 baseline_depth_v3 --work DIR
       [--sizes 160x400 224x400 448x800] [--seed 2000] [--scenes 25] [--frames-per-scene 8]
       [--out results/image_sizes] [--training-size HxW] [--image-noise 4] [--noise-out results/pixel_noise]

The defaults re-render the harness's fresh world (seed 2000, 25 scenes of 8 frames, never trained or chosen
on). Every world (DIR/world_HxW) and evaluation (DIR/eval_MODEL_HxW) is kept and skipped when present, so an
interrupted run goes on where it stopped. Writes OUT/MODEL.json (metrics per size, relative change) and
OUT/table.md. The check a shipped model passes: mAP and NDS within 10 % of the training size's.

The same world at the training size is also scored under Gaussian pixel noise of each ``--image-noise``
sigma (grey levels; ``simdistill evaluate --image-noise``, the same noise per frame for every model):
NOISE_OUT/MODEL_sigmaS.json, which a model card quotes. ``--image-noise`` with no value skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simdistill_ros.models.checkpoint import resolve_model_path  # noqa: E402

TOLERANCE = 0.10  # relative mAP / NDS change a shipped model may show at another image size
METRICS = {"mAP": "mean_ap", "NDS": "nd_score"}
ERRORS = {"mATE": "trans_err", "mAVE": "vel_err"}


def training_size(model: Path, given: str | None) -> str:
    """The image size (HxW) a model's synthetic world was rendered at: meta.json's (a shipped model's),
    else ``given`` (a run's checkpoint does not record it)."""
    world = json.loads((model / "meta.json").read_text()).get("synthetic_world")
    if world:
        return world["image_size"]
    if given is None:
        raise SystemExit(f"{model}: meta.json names no synthetic_world; give --training-size")
    return given


def checkpoint_name(path: Path) -> str:
    """A model's name in the records: the shipped name, or the run's for a run's ``last`` checkpoint."""
    return path.parent.name if path.name == "last" else path.name


def summary_row(summary: dict) -> dict[str, float]:
    """The numbers kept of one devkit metrics_summary.json: mAP, NDS (points), mATE, mAVE."""
    row = {k: round(100 * summary[v], 2) for k, v in METRICS.items()}
    row.update({k: round(summary["tp_errors"][v], 3) for k, v in ERRORS.items()})
    return row


def relative_changes(rows: dict[str, dict[str, float]], train: str) -> dict[str, dict[str, float]]:
    """Per size other than ``train``: mAP and NDS change relative to the training size's (fraction)."""
    base = rows[train]
    return {
        size: {k: round(row[k] / base[k] - 1.0, 4) for k in METRICS}
        for size, row in rows.items()
        if size != train
    }


def within(changes: dict[str, dict[str, float]]) -> bool:
    return all(abs(v) <= TOLERANCE for change in changes.values() for v in change.values())


def run(cmd: list[str], log: Path) -> None:
    with log.open("w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}; see {log}")


def render(work: Path, size: str, args: argparse.Namespace) -> Path:
    world, done = work / f"world_{size}", work / f"world_{size}.done"
    if not done.exists():
        cli = [sys.executable, "-m", "simdistill_ros.cli", "synth", "--out", str(world), "--world", "v2"]
        cli += ["--scenes", str(args.scenes), "--frames-per-scene", str(args.frames_per_scene)]
        cli += ["--seed", str(args.seed), "--render-size", size, "--val-fraction", "1.0", "--overwrite"]
        run(cli, work / f"synth_{size}.log")
        done.touch()
    return world


def evaluate(work: Path, world: Path, model: Path, size: str, noise: float | None = None) -> dict:
    """The devkit summary of ``model`` on ``world``, under pixel noise of sigma ``noise`` if given."""
    tag = (
        f"eval_{checkpoint_name(model)}_{size}"
        if noise is None
        else f"evalnoise{noise:g}_{checkpoint_name(model)}"
    )
    out = work / tag
    if not (out / "metrics_summary.json").exists():
        cli = [sys.executable, "-m", "simdistill_ros.cli", "evaluate", "--data", str(world), "--split", "val"]
        cli += ["--model", str(model), "--device", "cpu", "--out", str(out)]
        if noise is not None:
            cli += ["--image-noise", f"{noise:g}"]
        run(cli, work / f"{tag}.log")
    return json.loads((out / "metrics_summary.json").read_text())


def noise_record(name: str, weights: str | None, sigma: float, noisy: dict, clean: dict, world: str) -> dict:
    """The record of one model under pixel noise of sigma ``sigma``: noisy and clean rows (``summary_row``)
    and the relative mAP / NDS change."""
    return {
        "model": name,
        "weights_sha256": weights,
        "world": world,
        "image_noise": sigma,
        "noisy": {k: noisy[k] for k in ("mAP", "NDS", "mATE")},
        "clean": {k: clean[k] for k in ("mAP", "NDS", "mATE")},
        "change": {k: round(noisy[k] / clean[k] - 1.0, 4) for k in METRICS},
    }


def markdown(records: dict[str, dict]) -> str:
    sizes = sorted({s for r in records.values() for s in r["sizes"]}, key=lambda s: int(s.split("x")[0]))
    head = "| model | " + " | ".join(f"{s} mAP / NDS" for s in sizes) + " | within 10 % |"
    lines = [head, "|---|" + "---:|" * len(sizes) + "---|"]
    for name, r in records.items():
        cells = []
        for s in sizes:
            row = r["sizes"].get(s)
            cell = "" if row is None else f"{row['mAP']:.2f} / {row['NDS']:.2f}"
            ch = r["change"].get(s)
            if row is not None and ch is None:
                cell += " (training)"
            elif ch is not None:
                cell += f" ({100 * ch['mAP']:+.1f} % / {100 * ch['NDS']:+.1f} %)"
            cells.append(cell)
        lines.append(f"| `{name}` | " + " | ".join(cells) + f" | {'yes' if r['within'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", required=True, help="checkpoint directories or shipped names")
    p.add_argument("--work", type=Path, required=True, help="folder for the worlds and evaluations")
    p.add_argument("--sizes", nargs="+", default=["160x400", "224x400", "448x800"])
    p.add_argument("--seed", type=int, default=2000)
    p.add_argument("--scenes", type=int, default=25)
    p.add_argument("--frames-per-scene", type=int, default=8)
    p.add_argument("--out", type=Path, default=ROOT / "results" / "image_sizes")
    p.add_argument("--training-size", help="HxW of a model whose meta.json does not name it (a run's)")
    p.add_argument(
        "--image-noise",
        type=float,
        nargs="*",
        default=[4.0],
        metavar="SIGMA",
        help="also score at the training size under Gaussian pixel noise of these sigmas (grey levels; "
        "default 4; none given: skip)",
    )
    p.add_argument("--noise-out", type=Path, default=ROOT / "results" / "pixel_noise")
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.image_noise:
        args.noise_out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for model in args.models:
        path = resolve_model_path(model)
        name, train = checkpoint_name(path), training_size(path, args.training_size)
        sizes = list(dict.fromkeys([train, *args.sizes]))
        rows = {s: summary_row(evaluate(args.work, render(args.work, s, args), path, s)) for s in sizes}
        changes = relative_changes(rows, train)
        # the card of a shipped model quotes these records only while its weights are these
        weights = json.loads((path / "meta.json").read_text()).get("weights_sha256")
        frames = args.scenes * args.frames_per_scene
        world = f"world seed {args.seed}, {frames} frames, {train}: the training size"
        for sigma in args.image_noise or []:
            noisy = summary_row(evaluate(args.work, render(args.work, train, args), path, train, sigma))
            rec = noise_record(name, weights, sigma, noisy, rows[train], world)
            (args.noise_out / f"{name}_sigma{sigma:g}.json").write_text(json.dumps(rec, indent=2) + "\n")
        record = {
            "model": name,
            "weights_sha256": weights,
            "training_size": train,
            "world": {"seed": args.seed, "scenes": args.scenes, "frames_per_scene": args.frames_per_scene},
            "sizes": rows,
            "change": changes,
            "within": within(changes),
        }
        (args.out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    # the table holds every model measured into OUT, not only this invocation's
    records = {f.stem: json.loads(f.read_text()) for f in sorted(args.out.glob("*.json"))}
    (args.out / "table.md").write_text(markdown(records))
    print(markdown(records), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
