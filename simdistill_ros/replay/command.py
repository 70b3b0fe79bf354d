"""`simdistill replay`: run the teacher over bags into a target store; `--merge` and `--verify` for stores."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from simdistill_ros.errors import UserError
from simdistill_ros.frames.topics import TopicNames
from simdistill_ros.replay.core import TeacherReplayer, parse_shard, select_shard
from simdistill_ros.targets.store import TargetStore, merge_stores


def measure_read_speed(store_path: str | Path, max_frames: int = 200) -> dict:
    """Verify every shard (sha256) and time reading frames back: bytes/frame and frames/s."""
    t0 = time.perf_counter()
    store = TargetStore(store_path, verify="full")
    verify_s = time.perf_counter() - t0
    n = min(len(store), max_frames)
    t0 = time.perf_counter()
    for i in range(n):
        store[i]
    read_s = time.perf_counter() - t0
    return {
        **store.summary(),
        "verify_seconds": round(verify_s, 3),
        "read_frames_per_s": round(n / read_s, 1) if read_s > 0 else None,
    }


def run_replay_command(args: argparse.Namespace) -> int:
    # A StoreError is a UserError: the command line prints it as one line.
    if getattr(args, "merge", None):
        result = merge_stores(args.out, args.merge)
        print(
            f"merged {len(args.merge)} stores into {args.out}: {result['shards_added']} shards, "
            f"{result['frames_added']} frames added, {result['frames']} frames in all"
        )
        return 0
    if getattr(args, "verify", False):
        print(json.dumps(measure_read_speed(args.out), indent=1))
        return 0
    if not args.bags:
        raise UserError("give --bags BAG [BAG ...] (or --merge STORE ... / --verify)")
    return _replay(args)


def _replay(args: argparse.Namespace) -> int:
    shard = parse_shard(args.shard)
    missing = [b for b in args.bags if not Path(b).exists()]
    if missing:
        raise UserError(f"no such bag: {', '.join(missing)}")
    replayer = TeacherReplayer(
        args.teacher,
        args.out,
        device=args.device,
        shard=shard,
        data=args.data,
        topics=TopicNames(lidar=args.lidar_topic) if getattr(args, "lidar_topic", None) else None,
        frames_per_shard=getattr(args, "frames_per_shard", 16),
        verify=not args.no_verify,
    )
    for name, n in replayer.writer.redone:
        print(
            f"warning: {args.out}/shards/{name} was damaged (sha256): dropped, its {n} frames are replayed "
            "again"
        )
    mine = select_shard(args.bags, shard)
    print(
        f"replaying {len(mine)} of {len(args.bags)} bags (shard {shard[0]}/{shard[1]}) with teacher "
        f"{replayer.fingerprint['hash'][:12]} on {replayer.device} into {args.out}",
        flush=True,
    )
    try:
        summary = replayer.replay(args.bags)
    finally:
        replayer.close()
    print(summary, flush=True)
    return 0
