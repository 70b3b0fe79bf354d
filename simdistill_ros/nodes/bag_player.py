"""Play a rosbag2 (mcap or sqlite3) into a live ROS 2 graph with rclpy: `ros2 bag play` for pip-only set-ups.

    python -m simdistill_ros.nodes.bag_player BAG [--rate 0.5] [--clock] [--remap /a=/b ...]
        [--topics /x /y] [--wait-subscribers 10]

Messages go out at their bag times (scaled by ``--rate``) as the stored CDR bytes, so nothing is
re-encoded. /tf_static (and any topic recorded with transient-local durability) is published
transient-local, so late subscribers still get the sensor extrinsics. ``--clock`` publishes /clock with
the bag time (for nodes running with use_sim_time). ``--wait-subscribers`` holds the first message until
every played camera topic (or each ``--wait-for`` topic) has a subscriber (or the time runs out): fresh
DDS participants need ~1 s to discover each other, and a message published before that is lost.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import Any

from rosbags.highlevel import AnyReader

from simdistill_ros.frames.bag_reader import BagError, _bag_root
from simdistill_ros.frames.messages import typestore

TRANSIENT_TOPICS = ("/tf_static",)


def message_class(msgtype: str) -> type:
    """rclpy class of ``pkg/msg/Name`` (or ROS 1 style ``pkg/Name``)."""
    parts = msgtype.split("/")
    pkg, name = parts[0], parts[-1]
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def parse_remaps(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise SystemExit(f"bag_player: --remap expects OLD=NEW, got {item!r}")
        out[old] = new
    return out


def _is_transient(conn: Any) -> bool:
    if conn.topic in TRANSIENT_TOPICS:
        return True
    qos = getattr(getattr(conn, "ext", None), "offered_qos_profiles", None) or []
    return any("TRANSIENT_LOCAL" in str(getattr(q, "durability", "")) for q in qos)


def play(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    if args.rate <= 0:
        raise SystemExit("bag_player: --rate must be > 0")
    remap = parse_remaps(args.remap)
    try:
        root = _bag_root(Path(args.bag))
    except BagError as err:
        print(f"bag_player: error: {err}", file=sys.stderr)
        return 2
    rclpy.init()
    node = rclpy.create_node(args.node_name)
    try:
        with AnyReader([root], default_typestore=typestore()) as reader:
            conns = [c for c in reader.connections if not args.topics or c.topic in args.topics]
            counts: dict[str, int] = {}
            for c in conns:
                counts[c.topic] = counts.get(c.topic, 0) + c.msgcount
            pubs: dict[str, Any] = {}
            for c in conns:
                if c.topic in pubs:
                    continue
                transient = _is_transient(c)
                qos = QoSProfile(
                    history=HistoryPolicy.KEEP_LAST,
                    depth=max(1, counts[c.topic]) if transient else 100,
                    reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.TRANSIENT_LOCAL if transient else DurabilityPolicy.VOLATILE,
                )
                pubs[c.topic] = node.create_publisher(
                    message_class(c.msgtype), remap.get(c.topic, c.topic), qos
                )
            clock_pub = None
            if args.clock:
                from rosgraph_msgs.msg import Clock

                clock_pub = node.create_publisher(Clock, "/clock", 10)
            types = {c.topic: c.msgtype for c in conns}
            _wait_for_subscribers(node, pubs, types, args)
            sent = _stream(reader, conns, pubs, clock_pub, args.rate, node)
        # Give reliable transport a moment to deliver the tail before the participant disappears.
        time.sleep(args.linger)
        print(f"bag_player: played {sent} messages from {args.bag}", flush=True)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


CAMERA_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/CameraInfo")


def _wait_for_subscribers(node: Any, pubs: dict[str, Any], types: dict[str, str], args: Any) -> None:
    """Wait until the ``--wait-for`` topics (default: the camera topics) have a subscriber."""
    if args.wait_subscribers <= 0:
        return
    wanted = args.wait_for or [t for t, ty in types.items() if ty in CAMERA_TYPES]
    watched = {t: pubs[t] for t in wanted if t in pubs}
    deadline = time.monotonic() + args.wait_subscribers
    while time.monotonic() < deadline:
        if all(p.get_subscription_count() > 0 for p in watched.values()):
            # Matching is seen first on our side; the subscriber's side (best-effort sensor QoS drops what
            # arrives before it) needs a moment more.
            time.sleep(args.settle)
            return
        time.sleep(0.05)
    missing = [t for t, p in watched.items() if p.get_subscription_count() == 0]
    print(
        f"bag_player: no subscriber after {args.wait_subscribers} s on {missing}; playing anyway", flush=True
    )


def _stream(reader: Any, conns: list, pubs: dict[str, Any], clock_pub: Any, rate: float, node: Any) -> int:
    from builtin_interfaces.msg import Time

    sent = 0
    start_wall = None
    start_bag = None
    for conn, stamp, raw in reader.messages(connections=conns):
        if start_wall is None:
            start_wall, start_bag = time.monotonic(), stamp
        due = start_wall + (stamp - start_bag) / 1e9 / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if clock_pub is not None:
            from rosgraph_msgs.msg import Clock

            sec, nanosec = divmod(int(stamp), 1_000_000_000)
            clock_pub.publish(Clock(clock=Time(sec=sec, nanosec=nanosec)))
        pubs[conn.topic].publish(bytes(raw))  # stored CDR bytes: rclpy publishes them as they are
        sent += 1
    return sent


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bag_player",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("bag", help="rosbag2 directory or .mcap file")
    p.add_argument(
        "--rate", type=float, default=1.0, help="playback speed factor (0.5: half speed; default 1)"
    )
    p.add_argument("--topics", nargs="*", default=[], help="play only these topics (default: all)")
    p.add_argument("--remap", nargs="*", default=[], help="OLD=NEW topic renames")
    p.add_argument("--clock", action="store_true", help="publish /clock with the bag time (use_sim_time)")
    p.add_argument(
        "--wait-subscribers",
        type=float,
        default=0.0,
        help="seconds to wait for subscribers before the first message (default 0: start at once)",
    )
    p.add_argument(
        "--wait-for", nargs="*", default=[], help="topics to wait for (default: the camera topics)"
    )
    p.add_argument(
        "--settle", type=float, default=1.5, help="seconds to wait after subscribers matched (default 1.5)"
    )
    p.add_argument(
        "--linger", type=float, default=1.0, help="seconds to stay up after the last message (default 1)"
    )
    p.add_argument("--node-name", default="bag_player", help="the ROS node name (default bag_player)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return play(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
