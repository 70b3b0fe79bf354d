"""`simdistill synth`: check the options, then :func:`simdistill_ros.synth.export.synthesize`."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from simdistill_ros.errors import UserError
from simdistill_ros.synth.export import VERSION, parse_render_size, synthesize


def run_synth_command(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.scenes < 1 or args.frames_per_scene < 1:
        raise UserError("--scenes and --frames-per-scene must be at least 1")
    # every check before --overwrite deletes anything
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    if not 0.0 <= args.val_fraction <= 1.0:
        raise UserError(f"--val-fraction must be in [0, 1] (1: every scene in val), got {args.val_fraction}")
    image_size = parse_render_size(args.render_size)
    if (out / VERSION).exists() or (out / "bags").exists():
        if not args.overwrite:
            raise UserError(f"{out} already holds a dataset; pass --overwrite to replace it")
        for sub in (VERSION, "bags", "cache", "samples", "sweeps", "synth.json"):
            p = out / sub
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    summary = synthesize(
        out,
        args.scenes,
        args.frames_per_scene,
        args.seed,
        storage=args.storage,
        image_size=image_size,
        compressed=not args.raw_images,
        with_lidar=not args.no_lidar,
        val_fraction=args.val_fraction,
        world=args.world,
        workers=args.workers,
    )
    print(
        f"wrote {summary['frames']} frames in {summary['scenes']} scenes to {out} "
        f"({summary['seconds_per_frame']} s/frame; train {len(summary['split']['train'])} scenes, "
        f"val {len(summary['split']['val'])})"
    )
    return 0
