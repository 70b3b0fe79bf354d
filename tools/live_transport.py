"""Transport through the real detector node: a publisher process sends large raw images (1600x900 rgb8,
4.3 MB each) with a chosen reliability to detector_node, whose camera subscriptions use another or the
same (``camera_qos_reliability``), and records what the node publishes (detections, /diagnostics).

    .venv/bin/python tools/live_transport.py run --bag BAG --model CKPT [--case NAME ...]   # the table
    .venv/bin/python tools/live_transport.py play --bag BAG --case NAME --out OUT.json      # the publisher

``run`` starts ``detector_node`` and the publisher (``play``) as two processes per case and prints, per case,
how many of the sets sent were detected and the first /diagnostics WARN that names a silent camera.
``test/test_live_transport.py`` runs each case. The pictures and CameraInfo come from the first frame of
BAG (a synthetic bag of two cameras), scaled up to 1600x900; the second camera's CameraInfo names a
distortion (the node must warn, once, that it uses the images as if rectified).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CAMERAS = ["CAM_FRONT", "CAM_FRONT_RIGHT"]
HEIGHT, WIDTH = 900, 1600  # 4.3 MB of rgb8: a raw nuScenes-size image
SETS, PERIOD_S = 6, 0.5
DISTORTED = "CAM_FRONT_RIGHT"  # its CameraInfo names a distortion with non-zero coefficients
DIAGNOSTICS = "simdistill_detector: pipeline"


@dataclasses.dataclass(frozen=True)
class TransportCase:
    """The publisher's reliability and the node's ``camera_qos_reliability``."""

    name: str
    publisher: str  # best_effort | reliable
    node: str  # best_effort | reliable


CASES = [
    TransportCase("4.3 MB images, reliable publisher, reliable node", "reliable", "reliable"),
    TransportCase("4.3 MB images, reliable publisher, best-effort node (default)", "reliable", "best_effort"),
    TransportCase("best-effort publisher, reliable node (QoS mismatch)", "best_effort", "reliable"),
]


def case_named(name: str) -> TransportCase:
    for c in CASES:
        if c.name == name:
            return c
    raise SystemExit(f"live_transport: unknown case {name!r}; cases: {[c.name for c in CASES]}")


def _load_live_faults() -> Any:
    """tools/live_faults.py (its bag reading and environment), as the tests load it."""
    import importlib.util

    name = "simdistill_live_faults"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / "live_faults.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# the publisher process -------------------------------------------------------------------------------
def _large_messages(bag: Path) -> tuple[dict[str, tuple[Any, Any]], list[bytes]]:
    """Per camera an rclpy (Image 1600x900 rgb8, CameraInfo for that size) of the bag's first frame, and
    the /tf_static messages (CDR)."""
    import array

    import cv2
    import numpy as np
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image

    from simdistill_ros.frames.images import image_to_rgb
    from simdistill_ros.nodes.bag_player import message_class

    frame, statics, image_type = _load_live_faults()._first_frame(bag)
    out = {}
    for cam, (raw_image, raw_info) in frame.items():
        small = image_to_rgb(deserialize_message(raw_image, message_class(image_type)))
        info = deserialize_message(raw_info, CameraInfo)
        sx, sy = WIDTH / small.shape[1], HEIGHT / small.shape[0]
        k = np.asarray(info.k, np.float64).reshape(3, 3)
        k[0] *= sx
        k[1] *= sy
        info.k = k.reshape(-1).tolist()
        info.width, info.height = WIDTH, HEIGHT
        if cam == DISTORTED:  # a raw camera's CameraInfo: the node warns that it uses it as if rectified
            info.distortion_model, info.d = "plumb_bob", [-0.3, 0.1, 0.0, 0.0, 0.0]
        big = np.ascontiguousarray(cv2.resize(small, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR))
        image = Image(height=HEIGHT, width=WIDTH, encoding="rgb8", is_bigendian=0, step=3 * WIDTH)
        image.data = array.array("B", big.tobytes())
        image.header.frame_id = info.header.frame_id or cam
        out[cam] = (image, info)
    return out, statics


def play(args: argparse.Namespace) -> int:
    """Publish SETS camera sets of large raw images; record detections and /diagnostics to --out."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image
    from tf2_msgs.msg import TFMessage
    from vision_msgs.msg import Detection3DArray

    from simdistill_ros.frames.messages import stamp_to_ns

    case = case_named(args.case)
    msgs, statics = _large_messages(Path(args.bag))
    rclpy.init()
    node = rclpy.create_node("live_transport_player")
    policy = ReliabilityPolicy.RELIABLE if case.publisher == "reliable" else ReliabilityPolicy.BEST_EFFORT
    # every set stays in the writer's history: a reliable writer's keep-last history would otherwise drop
    # an image not yet acknowledged by a slow reader, which the reliable case must not blame on the node
    camera_qos = QoSProfile(depth=SETS, reliability=policy)
    static_qos = QoSProfile(
        depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    tf_pub = node.create_publisher(TFMessage, "/tf_static", static_qos)
    for raw in statics:
        tf_pub.publish(deserialize_message(raw, TFMessage))
    pubs = {
        c: (
            node.create_publisher(Image, f"/{c}/image_raw", camera_qos),
            node.create_publisher(CameraInfo, f"/{c}/camera_info", camera_qos),
        )
        for c in CAMERAS
    }
    record: dict[str, Any] = {"case": case.name, "sent": [], "detections": [], "diagnostics": []}
    lock = threading.Lock()

    def on_detections(m: Any) -> None:
        with lock:
            record["detections"].append({"stamp_ns": stamp_to_ns(m.header.stamp), "boxes": len(m.detections)})

    def on_diagnostics(m: Any) -> None:
        with lock:
            for s in m.status:
                if s.name == DIAGNOSTICS:
                    level = s.level if isinstance(s.level, int) else int.from_bytes(s.level, "little")
                    record["diagnostics"].append(
                        {"t": time.monotonic(), "level": level, "message": s.message}
                    )

    det_topic = "/simdistill_detector/detections"
    node.create_subscription(
        Detection3DArray,
        det_topic,
        on_detections,
        QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE),
    )
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 50)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        # The node is up once its detections publisher is seen; a matching QoS also connects the cameras
        # (a mismatched one never does: then only the node is waited for).
        mismatch = case.publisher == "best_effort" and case.node == "reliable"
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            node_up = node.count_publishers(det_topic) > 0
            matched = all(p.get_subscription_count() > 0 for pair in pubs.values() for p in pair)
            if node_up and (matched or mismatch):
                break
            time.sleep(0.1)
        else:
            print("live_transport: the node never came up", file=sys.stderr)
            return 3
        time.sleep(1.5)  # best-effort subscriptions need a moment more after matching
        for k in range(SETS):
            stamp = time.time_ns()
            for i, cam in enumerate(CAMERAS):
                image, info = msgs[cam]
                sec, nsec = divmod(stamp + i * 8_000_000, 1_000_000_000)
                for m in (info, image):
                    m.header.stamp.sec, m.header.stamp.nanosec = sec, nsec
                pubs[cam][1].publish(info)
                pubs[cam][0].publish(image)
            record["sent"].append({"k": k, "stamp_ns": stamp, "t": time.monotonic()})
            time.sleep(PERIOD_S)
        # /diagnostics after the camera timeout, then the last sets' detections: under load a reliable
        # 4.3 MB image can need retransmission and the node's inference seconds more
        time.sleep(args.linger)
        deadline = time.monotonic() + args.settle
        while time.monotonic() < deadline and not _all_detected(record, lock):
            time.sleep(0.1)
    finally:
        stop.set()
        spinner.join(timeout=5.0)
        with lock:
            Path(args.out).write_text(json.dumps(record))
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def _all_detected(record: dict[str, Any], lock: threading.Lock) -> bool:
    with lock:
        return {s["stamp_ns"] for s in record["sent"]} <= {d["stamp_ns"] for d in record["detections"]}


# running a case ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Outcome:
    case: TransportCase
    alive: bool
    sent: int
    detected: int
    boxes: int  # boxes in all detections
    diagnostics: list[dict]  # WARN/ERROR statuses
    log: str

    def named(self, *words: str) -> dict | None:
        """The first WARN/ERROR /diagnostics status whose message holds every one of ``words``."""
        return next((d for d in self.diagnostics if all(w in d["message"] for w in words)), None)


def run_case(case: TransportCase, bag: Path, model: Path, work: Path) -> Outcome:
    """Start detector_node and the publisher for ``case``; collect the :class:`Outcome`."""
    work.mkdir(parents=True, exist_ok=True)
    env = _load_live_faults().ros_env()
    node_log, out = work / "node.log", work / "played.json"
    cams = "[" + ", ".join(CAMERAS) + "]"
    args = ["-p", f"model:={model}", "-p", "device:=cpu", "-p", f"camera_names:={cams}",
            "-p", "compressed:=false", "-p", "image_topic:=/{camera}/image_raw",
            "-p", f"camera_qos_reliability:={case.node}", "-p", "frame_queue_size:=10",
            "-p", "diagnostics_period:=0.5", "-p", "camera_timeout:=1.0"]  # fmt: skip
    alive = _load_live_faults().run_node_and_player(
        args, Path(__file__), bag, case.name, out, node_log, env, timeout=240
    )
    log = node_log.read_text()
    record = json.loads(out.read_text())
    sent = {s["stamp_ns"] for s in record["sent"]}
    detected = [d for d in record["detections"] if d["stamp_ns"] in sent]
    return Outcome(
        case=case,
        alive=alive,
        sent=len(sent),
        detected=len({d["stamp_ns"] for d in detected}),
        boxes=sum(d["boxes"] for d in detected),
        diagnostics=[d for d in record["diagnostics"] if d["level"] >= 1],
        log=log,
    )


def format_outcome(o: Outcome) -> str:
    silent = next((d["message"] for d in o.diagnostics if "CAM_" in d["message"]), "no WARN naming a camera")
    return (
        f"{o.case.name:<62} {'alive' if o.alive else 'DIED':<6} {o.detected}/{o.sent} sets detected "
        f"({o.boxes} boxes)  {silent[:150]}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="live_transport", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    pl = sub.add_parser("play", help="the publisher process of one case")
    pl.add_argument("--bag", required=True)
    pl.add_argument("--case", required=True)
    pl.add_argument("--out", required=True)
    pl.add_argument("--wait", type=float, default=90.0, help="seconds to wait for the node")
    pl.add_argument("--linger", type=float, default=3.0, help="seconds to record after the last set")
    pl.add_argument(
        "--settle", type=float, default=15.0, help="then at most this many seconds more for undetected sets"
    )
    rn = sub.add_parser("run", help="run cases against detector_node and print the table")
    rn.add_argument("--bag", required=True)
    rn.add_argument("--model", required=True)
    rn.add_argument("--work", default="/tmp/live_transport")
    rn.add_argument("--case", nargs="*", default=[c.name for c in CASES])
    args = p.parse_args(argv)
    if args.command == "play":
        return play(args)
    for i, name in enumerate(args.case):
        print(
            format_outcome(
                run_case(case_named(name), Path(args.bag), Path(args.model), Path(args.work) / f"case{i}")
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
