"""Why a camera's images do not arrive, named from the graph's publishers (no ROS): each cause with its fix,
and the detector's /diagnostics saying it for a silent camera (logged once until its images come back).
The same through the real node and a publisher process of 4.3 MB images: test_live_transport.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from simdistill_ros.detection.live_stats import OK, WARN, PipelineStats
from simdistill_ros.detection.parameters import BEST_EFFORT, RELIABLE
from simdistill_ros.detection.transport import PublisherQos, silent_camera_reason

IMAGE = "sensor_msgs/msg/Image"
CAMERA = "/camera/image_raw"


@pytest.mark.parametrize(
    ("publishers", "ours", "expected"),
    [
        ([], BEST_EFFORT, "nothing publishes /camera/image_raw"),
        (
            [PublisherQos("/driver", BEST_EFFORT, IMAGE)],
            RELIABLE,
            "QoS mismatch, they publish best effort and this node subscribes reliable, so they never "
            "connect; set camera_qos_reliability to best_effort",
        ),
        (
            [PublisherQos("/driver", RELIABLE, IMAGE)],
            BEST_EFFORT,
            "likely lost in transport, as best-effort delivery drops a large message",
        ),
        (
            [PublisherQos("/driver", RELIABLE, "sensor_msgs/msg/CompressedImage")],
            BEST_EFFORT,
            "they publish sensor_msgs/msg/CompressedImage and this node subscribes sensor_msgs/msg/Image; "
            "set the compressed parameter",
        ),
        (
            [PublisherQos("/driver", RELIABLE, IMAGE)],
            RELIABLE,
            "connected reliably: they publish nothing now",
        ),
    ],
)
def test_each_cause_of_a_silent_camera_is_named_with_its_fix(publishers, ours, expected):
    line = silent_camera_reason("CAM_FRONT", CAMERA, publishers, ours, None, IMAGE)
    assert line.startswith("CAM_FRONT: no image has arrived") and expected in line
    assert "\n" not in line
    if publishers:
        assert "1 publisher (/driver)" in line


def test_the_fix_for_large_images_says_to_set_reliable():
    line = silent_camera_reason("CAM_FRONT", CAMERA, [PublisherQos("/a", RELIABLE)], BEST_EFFORT, 3.25)
    assert "no image for 3.2 s" in line and line.endswith("set camera_qos_reliability to reliable")


def test_diagnostics_name_the_cause_of_each_stale_camera():
    stats = PipelineStats(["CAM_FRONT", "CAM_BACK"])
    stats.image_seen("CAM_FRONT", 100.0)
    stats.image_seen("CAM_BACK", 100.0)
    assert stats.diagnostics(100.5, 1.0, "m")[:2] == (OK, "ok")
    assert stats.stale_cameras(102.0, 1.0) == {"CAM_FRONT": 2.0, "CAM_BACK": 2.0}
    stats.image_seen("CAM_FRONT", 101.9)
    assert stats.stale_cameras(102.0, 1.0) == {"CAM_BACK": 2.0}
    level, message, values = stats.diagnostics(
        102.0, 1.0, "m", {"CAM_BACK": "CAM_BACK: why", "CAM_FRONT": "no"}
    )
    assert (level, message) == (WARN, "CAM_BACK: why") and values["stale cameras"] == "CAM_BACK"
    assert PipelineStats(["A"]).stale_cameras(50.0, 1.0) == {"A": None}  # never an image


def _detector():
    """A LiveDetector of one reliable camera without a model (diagnostics only), and its log lines."""
    from simdistill_ros.detection.live import LiveDetector
    from simdistill_ros.detection.live_inputs import CameraSync
    from simdistill_ros.detection.parameters import PARAMETERS, detector_params

    values = {name: p.ros_default for name, p in PARAMETERS.items()}
    params = detector_params({**values, "camera_names": ["CAM_FRONT"], "camera_qos_reliability": RELIABLE})
    logs: list[tuple[int, str]] = []
    core = SimpleNamespace(model_type="student", device="cpu")
    det = LiveDetector(
        core, params, CameraSync(["CAM_FRONT"], 0.06, 10), None, None, lambda lv, t: logs.append((lv, t))
    )
    return det, logs


def test_the_detector_logs_a_silent_cameras_cause_once_and_again_when_it_changes():
    det, logs = _detector()
    det.start()
    try:
        det.diagnostics({"CAM_FRONT": []}, IMAGE)  # nothing publishes it (yet): only a stale camera
        assert logs == []
        mismatched = {"CAM_FRONT": [PublisherQos("/driver", BEST_EFFORT, IMAGE)]}
        level, message, _ = det.diagnostics(mismatched, IMAGE)
        assert level == WARN and "QoS mismatch" in message and "/CAM_FRONT/image_rect_compressed" in message
        det.diagnostics(mismatched, IMAGE)  # the same cause: not logged again
        assert len(logs) == 1 and "QoS mismatch" in logs[0][1]
        det.diagnostics({"CAM_FRONT": [PublisherQos("/driver", RELIABLE, IMAGE)]}, IMAGE)
        assert len(logs) == 2 and "connected reliably" in logs[1][1]  # another cause: told
    finally:
        det.stop()


def test_a_publisher_named_late_by_discovery_is_the_same_cause_not_told_twice():
    """The graph reports an endpoint before its node's name; the QoS mismatch it causes is one log line."""
    det, logs = _detector()
    det.start()
    try:
        det.diagnostics({"CAM_FRONT": [PublisherQos("", BEST_EFFORT, IMAGE)]}, IMAGE)
        assert len(logs) == 1 and "has 1 publisher: QoS mismatch" in logs[0][1]  # no name yet: none shown
        level, message, _ = det.diagnostics(
            {"CAM_FRONT": [PublisherQos("/driver", BEST_EFFORT, IMAGE)]}, IMAGE
        )
        assert len(logs) == 1  # the same cause
        assert level == WARN and "1 publisher (/driver): QoS mismatch" in message  # /diagnostics names it
    finally:
        det.stop()
