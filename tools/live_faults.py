"""Time faults through the real detector node: a publisher process sends stamped camera sets, one of them
wrong (an hour ahead, time stepping back 30 s, ...), and records what the node publishes.

    .venv/bin/python tools/live_faults.py run --bag BAG --model CKPT [--case NAME ...]   # the table
    .venv/bin/python tools/live_faults.py play --bag BAG --case NAME --out OUT.json      # the publisher

``run`` starts ``detector_node`` and the publisher (``play``) as two processes per case and prints, per case,
whether the node stayed alive, how many good frames after the fault it detected, whether every one sent
later than ``RECOVERY_S`` after the fault was detected (and, where a case bounds it, how many good frames of
the run were lost), the /diagnostics level and message, and how often
the node's log named the reason. ``test/test_live_time_node.py`` runs each case; ``tools/faults.py`` adds
them as rows of its table. The camera images and CameraInfo come from the first frame of BAG (a synthetic
bag); only their stamps change.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CAMERAS = ["CAM_FRONT", "CAM_FRONT_RIGHT"]
PERIOD_S = 0.2  # one camera set every 0.2 s: a slow CPU keeps up with the tiny model
BEFORE, AFTER = 5, 10  # good sets before and after the fault
RECOVERY_S = 1.0  # every good frame sent this long after the fault must be detected
SIM_START_NS = 1_000 * 1_000_000_000  # sim time of the first set (use_sim_time cases)
HOUR_NS = 3600 * 1_000_000_000
DIAGNOSTICS = "simdistill_detector: pipeline"


@dataclasses.dataclass(frozen=True)
class LiveCase:
    """One fault: ``shift_ns`` moves every stamp of the fault set (``ref_only``: only the reference camera's),
    ``restart_ns`` moves the stamps (and the sim clock) of the fault set and all after it."""

    name: str
    reason: str  # the drop reason the node must report (detection.live_stats' constants)
    sim_time: bool = False
    shift_ns: int = 0
    ref_only: bool = False
    restart_ns: int = 0
    period_s: float = PERIOD_S  # between camera sets
    before: int = BEFORE  # good sets before the fault
    after: int = AFTER  # good sets after it
    loop: bool = False  # from the fault on, the sets repeat the stamps from the first (a looping bag)
    max_lost: int | None = None  # at most this many good sets of the run may go undetected

    @property
    def fault_is_good(self) -> bool:
        """A restart's (or a loop's) first set is already a good frame of the new timeline."""
        return self.restart_ns != 0 or self.loop


CASES = [
    LiveCase("one camera set stamped 1 h ahead", "stamp ahead of the clock", shift_ns=HOUR_NS),
    LiveCase(
        "only the reference camera 1 h ahead", "stamp ahead of the clock", shift_ns=HOUR_NS, ref_only=True
    ),
    LiveCase("stamps step back 30 s (bag loop)", "time jumped back", restart_ns=-30 * 1_000_000_000),
    LiveCase(
        "sim time steps back 30 s (use_sim_time)",
        "time jumped back",
        sim_time=True,
        restart_ns=-30 * 1_000_000_000,
    ),
    # Frames further apart than the jump threshold (0.5 s) after a jump back: all of them come out.
    LiveCase(
        "stamps step back 30 s, frames 1 s apart",
        "time jumped back",
        restart_ns=-30 * 1_000_000_000,
        period_s=1.0,
        before=3,
        after=4,
        max_lost=0,
    ),
    # A bag of 6 key frames at 2 Hz played twice without /clock: 12 frames, at most the one at the jump lost.
    LiveCase(
        "looping bag without /clock (2 laps of 6 at 2 Hz)",
        "time jumped back",
        period_s=0.5,
        before=6,
        after=5,
        loop=True,
        max_lost=1,
    ),
]


def case_named(name: str) -> LiveCase:
    for c in CASES:
        if c.name == name:
            return c
    raise SystemExit(f"live_faults: unknown case {name!r}; cases: {[c.name for c in CASES]}")


# the publisher process -------------------------------------------------------------------------------
def _first_frame(bag: Path) -> tuple[dict[str, tuple[bytes, bytes]], list[bytes], str]:
    """Per camera the (image, CameraInfo) CDR bytes of the first frame, the /tf_static messages, the image
    message type."""
    from rosbags.highlevel import AnyReader

    from simdistill_ros.frames.messages import typestore

    found: dict[str, dict[str, bytes]] = {c: {} for c in CAMERAS}
    statics, image_type = [], ""
    with AnyReader([bag], default_typestore=typestore()) as reader:
        for conn, _, raw in reader.messages():
            if conn.topic == "/tf_static":
                statics.append(bytes(raw))
                continue
            cam = conn.topic.split("/")[1]
            if cam in found:
                kind = "info" if conn.topic.endswith("camera_info") else "image"
                if kind == "image":
                    image_type = conn.msgtype
                found[cam].setdefault(kind, bytes(raw))
            if all(len(v) == 2 for v in found.values()) and statics:
                break
    return {c: (v["image"], v["info"]) for c, v in found.items()}, statics, image_type


def play(args: argparse.Namespace) -> int:
    """Publish the case's good sets before the fault, the fault, the good sets after it; record detections
    and /diagnostics to --out."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.serialization import deserialize_message
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CameraInfo
    from tf2_msgs.msg import TFMessage
    from vision_msgs.msg import Detection3DArray

    from simdistill_ros.frames.messages import stamp_to_ns
    from simdistill_ros.nodes.bag_player import message_class

    case = case_named(args.case)
    frame, statics, image_type = _first_frame(Path(args.bag))
    image_cls = message_class(image_type)
    msgs = {
        c: (deserialize_message(i, image_cls), deserialize_message(k, CameraInfo))
        for c, (i, k) in frame.items()
    }
    suffix = "image_rect_compressed" if image_type.endswith("CompressedImage") else "image_rect"
    rclpy.init()
    node = rclpy.create_node("live_faults_player")
    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    static_qos = QoSProfile(
        depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    tf_pub = node.create_publisher(TFMessage, "/tf_static", static_qos)
    for raw in statics:
        tf_pub.publish(deserialize_message(raw, TFMessage))
    pubs = {
        c: (
            node.create_publisher(image_cls, f"/{c}/{suffix}", reliable),
            node.create_publisher(CameraInfo, f"/{c}/camera_info", reliable),
        )
        for c in CAMERAS
    }
    clock_pub = node.create_publisher(Clock, "/clock", 10)
    record: dict[str, Any] = {"case": case.name, "sent": [], "detections": [], "diagnostics": []}
    lock = threading.Lock()

    def on_detections(m: Any) -> None:
        with lock:
            record["detections"].append({"stamp_ns": stamp_to_ns(m.header.stamp), "t": time.monotonic()})

    def on_diagnostics(m: Any) -> None:
        with lock:
            for s in m.status:
                if s.name == DIAGNOSTICS:
                    level = s.level if isinstance(s.level, int) else int.from_bytes(s.level, "little")
                    record["diagnostics"].append(
                        {"t": time.monotonic(), "level": level, "message": s.message}
                    )

    det_topic = "/simdistill_detector/detections"
    node.create_subscription(Detection3DArray, det_topic, on_detections, reliable)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 50)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    sim_ns = [SIM_START_NS]

    def tick_clock(ns: int) -> None:
        if case.sim_time:
            sec, nsec = divmod(ns, 1_000_000_000)
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = sec, nsec
            clock_pub.publish(msg)

    try:
        # The node's subscriptions and its detections publisher must be matched before the first set.
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            tick_clock(sim_ns[0])
            subs = all(p.get_subscription_count() > 0 for pair in pubs.values() for p in pair)
            if subs and node.count_publishers(det_topic) > 0:
                break
            time.sleep(0.1)
        else:
            print("live_faults: the node never subscribed", file=sys.stderr)
            return 3
        t_end = time.monotonic() + 1.5  # best-effort subscriptions need a moment more after matching
        while time.monotonic() < t_end:
            tick_clock(sim_ns[0])
            time.sleep(0.1)
        shift, period_ns, bases = 0, int(case.period_s * 1e9), []
        for k in range(case.before + 1 + case.after):
            phase = "before" if k < case.before else ("fault" if k == case.before else "after")
            if phase == "fault":
                shift = case.restart_ns
            base = (SIM_START_NS + k * period_ns if case.sim_time else time.time_ns()) + shift
            if case.loop and k >= case.before:
                base = bases[k - case.before]  # the bag again from its first frame
            bases.append(base)
            tick_clock(base)
            for i, cam in enumerate(CAMERAS):
                stamp = base + i * 8_000_000
                if phase == "fault" and (i == 0 or not case.ref_only):
                    stamp += case.shift_ns
                image, info = msgs[cam]
                for m in (info, image):
                    sec, nsec = divmod(stamp, 1_000_000_000)
                    m.header.stamp.sec, m.header.stamp.nanosec = sec, nsec
                pubs[cam][1].publish(info)
                pubs[cam][0].publish(image)
                if i == 0:
                    ref_stamp = stamp
            good = phase != "fault" or case.fault_is_good
            record["sent"].append(
                {"k": k, "phase": phase, "stamp_ns": ref_stamp, "t": time.monotonic(), "good": good}
            )
            due = time.monotonic() + case.period_s
            while time.monotonic() < due:
                time.sleep(0.02)
            sim_ns[0] = base + period_ns
        t_end = time.monotonic() + args.linger  # the last frames and a /diagnostics message after them
        while time.monotonic() < t_end:
            sim_ns[0] += int(0.1e9)
            tick_clock(sim_ns[0])
            time.sleep(0.1)
    finally:
        stop.set()
        spinner.join(timeout=5.0)
        with lock:
            Path(args.out).write_text(json.dumps(record))
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


# running a case ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Outcome:
    """What one case did: the node stayed alive (and exited 0 on SIGINT), the good frames after the fault
    (detected / sent), whether all sent ``RECOVERY_S`` after the fault were detected, the /diagnostics
    statuses after the fault, and the node's log lines naming the reason."""

    case: LiveCase
    alive: bool
    detected_after: int
    sent_after: int
    recovered: bool
    detected_good: int  # good sets of the whole run detected
    sent_good: int
    diagnostics: list[dict]
    reason_lines: list[str]
    log: str

    @property
    def diagnosed(self) -> dict | None:
        """The first WARN/ERROR /diagnostics status after the fault that names the reason."""
        return next(
            (d for d in self.diagnostics if d["level"] >= 1 and self.case.reason in d["message"]), None
        )

    @property
    def lost_in_bounds(self) -> bool:
        """No more good sets lost than the case allows (where it bounds them)."""
        return self.case.max_lost is None or self.sent_good - self.detected_good <= self.case.max_lost

    @property
    def ok(self) -> bool:
        return (
            self.alive
            and self.recovered
            and self.lost_in_bounds
            and self.diagnosed is not None
            and len(self.reason_lines) == 1
        )


def ros_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_node_and_player(
    node_args: list[str],
    script: Path,
    bag: Path,
    case: str,
    out: Path,
    node_log: Path,
    env: dict,
    timeout: int,
) -> bool:
    """Start detector_node with ``node_args``, run ``script play`` for ``case`` against it (it writes
    ``out``), then stop the node with SIGINT; whether the node was alive and exited cleanly. A publisher
    that fails is a RuntimeError carrying its output and the node's log."""
    node = subprocess.Popen(
        [sys.executable, "-m", "simdistill_ros.nodes.detector_node", "--ros-args", *node_args],
        env=env, cwd=ROOT, stdout=node_log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        player = subprocess.run(
            [sys.executable, str(script.resolve()), "play", "--bag", str(bag), "--case", case,
             "--out", str(out)],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        alive = node.poll() is None
        if alive:
            node.send_signal(signal.SIGINT)
            alive = node.wait(timeout=30) == 0
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
    if player.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"the publisher failed ({player.returncode}):\n{player.stdout}{player.stderr}\n"
            f"{node_log.read_text()}"
        )
    return alive


def run_case(case: LiveCase, bag: Path, model: Path, work: Path) -> Outcome:
    """Start detector_node and the publisher for ``case``; collect the :class:`Outcome`."""
    work.mkdir(parents=True, exist_ok=True)
    env = ros_env()
    node_log, out = work / "node.log", work / "played.json"
    cams = "[" + ", ".join(CAMERAS) + "]"
    args = ["-p", f"model:={model}", "-p", "device:=cpu", "-p", f"camera_names:={cams}",
            "-p", "compressed:=true",
            "-p", "frame_queue_size:=10", "-p", "diagnostics_period:=0.5",
            "-p", f"use_sim_time:={'true' if case.sim_time else 'false'}"]  # fmt: skip
    alive = run_node_and_player(args, Path(__file__), bag, case.name, out, node_log, env, timeout=180)
    log = node_log.read_text()
    record = json.loads(out.read_text())
    fault = next(s for s in record["sent"] if s["phase"] == "fault")
    # A looping bag sends each stamp twice: a detection matches one sent set, the earlier sets first.
    unmatched = Counter(d["stamp_ns"] for d in record["detections"])
    good = [s for s in record["sent"] if s["good"]]
    for s in good:
        s["detected"] = unmatched[s["stamp_ns"]] > 0
        unmatched[s["stamp_ns"]] -= s["detected"]
    after = [s for s in good if s["k"] >= fault["k"]]
    late = [s for s in after if s["t"] >= fault["t"] + RECOVERY_S]
    reason_lines = [ln for ln in log.splitlines() if case.reason + ":" in ln]
    return Outcome(
        case=case,
        alive=alive,
        detected_after=sum(s["detected"] for s in after),
        sent_after=len(after),
        recovered=bool(late) and all(s["detected"] for s in late),
        detected_good=sum(s["detected"] for s in good),
        sent_good=len(good),
        diagnostics=[d for d in record["diagnostics"] if d["t"] >= fault["t"]],
        reason_lines=reason_lines,
        log=log,
    )


def format_outcome(o: Outcome) -> str:
    diag = o.diagnosed
    shown = (
        f"{('OK', 'WARN', 'ERROR')[diag['level']]}: {diag['message'][:60]}" if diag else "no WARN naming it"
    )
    lost = "" if o.lost_in_bounds else f" (LOST {o.sent_good - o.detected_good} of {o.sent_good})"
    return (
        f"{'ok ' if o.ok else 'BAD'} {o.case.name:<42} {'alive' if o.alive else 'DIED':<6} "
        f"{o.detected_after}/{o.sent_after} after{'' if o.recovered else ' (NOT RECOVERED)'}{lost}  "
        f"logged {len(o.reason_lines)}x  {shown}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="live_faults", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    pl = sub.add_parser("play", help="the publisher process of one case")
    pl.add_argument("--bag", required=True)
    pl.add_argument("--case", required=True)
    pl.add_argument("--out", required=True)
    pl.add_argument("--wait", type=float, default=90.0, help="seconds to wait for the node")
    pl.add_argument("--linger", type=float, default=2.5, help="seconds to record after the last set")
    rn = sub.add_parser("run", help="run cases against detector_node and print the table")
    rn.add_argument("--bag", required=True)
    rn.add_argument("--model", required=True)
    rn.add_argument("--work", default="/tmp/live_faults")
    rn.add_argument("--case", nargs="*", default=[c.name for c in CASES])
    args = p.parse_args(argv)
    if args.command == "play":
        return play(args)
    bad = 0
    for i, name in enumerate(args.case):
        o = run_case(case_named(name), Path(args.bag), Path(args.model), Path(args.work) / f"case{i}")
        print(format_outcome(o), flush=True)
        bad += not o.ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
