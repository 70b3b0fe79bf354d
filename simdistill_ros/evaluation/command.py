"""`simdistill evaluate`: score results, a model, or the ground truth with the official devkit."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from simdistill_ros.dataset.dataroot import dataroot_versions
from simdistill_ros.errors import UserError
from simdistill_ros.evaluation.nuscenes_eval import (
    check_results,
    check_split,
    evaluate,
    format_report,
    gt_as_results,
)
from simdistill_ros.evaluation.predict import predict_split_results
from simdistill_ros.evaluation.published import read_detection_bag, results_from_published


def run_evaluate_command(args: argparse.Namespace) -> int:
    dataroot = Path(args.data)
    if not (dataroot / args.version).is_dir():
        have = ", ".join(dataroot_versions(dataroot)) or "none"
        raise UserError(
            f"{dataroot} holds no {args.version}/ tables (versions there: {have}; make one with "
            "`simdistill synth`)"
        )
    check_split(dataroot, args.split, args.version)  # before a model runs over a split that is not there
    out_dir = Path(args.out) if args.out else None
    noise = getattr(args, "image_noise", 0.0)
    if not 0.0 <= noise < float("inf"):
        raise UserError(f"--image-noise {noise}: must be a finite number >= 0")
    if noise and not args.model:
        raise UserError("--image-noise perturbs the images a model runs on: it needs --model")
    if args.gt_as_results:
        results = gt_as_results(dataroot, args.split, version=args.version)
    elif args.results:
        path = Path(args.results)
        if not path.is_file():
            raise UserError(f"results file {path} does not exist")
        try:
            results = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"results file {path} is not valid JSON: {exc}") from None
        check_results(results)
    elif getattr(args, "detections", None):
        if not Path(args.detections).exists():
            raise UserError(f"detection bag {args.detections} does not exist")
        published = read_detection_bag(args.detections)
        print(f"detections: {args.detections}: {published.describe()}")
        results, matched = results_from_published(
            published.frames,
            dataroot,
            args.split,
            args.version,
            source=f"published messages ({args.detections})",
        )
        print(f"detections: {matched} of {len(published.frames)} frames matched {args.split} samples")
    else:
        results = predict_split_results(
            args.model,
            dataroot,
            args.split,
            version=args.version,
            device=args.device,
            score_threshold=args.score_threshold,
            verify=not args.no_verify,
            backend=args.backend,
            frames_from=getattr(args, "frames_from", "auto"),
            image_noise=noise,
        )
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "results.json").write_text(json.dumps(results))
    report = evaluate(dataroot, args.split, results, version=args.version, out_dir=out_dir)
    print(format_report(report))
    return 0
