"""Score what the detector published: per frame the boxes read back from its messages, with the velocity
that its autoware_perception_msgs/DetectedObjects carried (Detection3DArray has no velocity field).

Used by the detection recorder (live frames) and by ``simdistill evaluate --detections BAG`` (the bag that
``simdistill detect`` writes). A frame is matched to its sample by stamp (``GroundTruthIndex``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from simdistill_ros.dataset.ground_truth import GroundTruthIndex
from simdistill_ros.dataset.nuscenes_tables import DEFAULT_VERSION, load_split_samples
from simdistill_ros.errors import UserError
from simdistill_ros.evaluation.nuscenes_eval import results_from_boxes
from simdistill_ros.frames import BagReader
from simdistill_ros.geometry import Box3D
from simdistill_ros.outputs import DETECTIONS_TOPIC, OBJECTS_TOPIC
from simdistill_ros.outputs.autoware import boxes_from_detected_objects, with_published_velocity
from simdistill_ros.outputs.vision import boxes_from_detection_array


@dataclass
class PublishedFrames:
    """Frames read back from published messages: (stamp_ns, boxes) in time order, and where the boxes'
    velocities came from."""

    frames: list[tuple[int, list[Box3D]]]
    with_velocity: int  # frames whose boxes carry the published velocity (from DetectedObjects)
    unknown_dropped: int = 0  # objects left out: DetectedObjects alone, label UNKNOWN (no nuScenes class)

    def describe(self) -> str:
        n = len(self.frames)
        if self.with_velocity == 0:
            text = f"{n} frames without velocity (Detection3DArray only): mAVE is not meaningful"
        else:
            text = f"{n} frames, {self.with_velocity} with the velocity their DetectedObjects carried"
        if self.unknown_dropped:
            text += f"; {self.unknown_dropped} UNKNOWN objects left out (no nuScenes class)"
        return text


def results_from_published(
    frames: list[tuple[int, list[Box3D]]],
    dataroot: str | Path,
    split: str,
    version: str = DEFAULT_VERSION,
    source: str = "detector_node (live)",
) -> tuple[dict, int]:
    """(nuScenes results dict, frames matched) for published frames; unmatched samples get no boxes."""
    samples = load_split_samples(dataroot, split, version)
    ground_truth = GroundTruthIndex(samples)
    per_sample: dict[str, list[Box3D]] = {s.token: [] for s in samples}
    matched = 0
    for stamp_ns, boxes in frames:
        sample = ground_truth.lookup(stamp_ns)
        if sample is None:
            continue
        per_sample[sample.token] = list(boxes)
        matched += 1
    poses = {s.token: s.ego_pose for s in samples}
    return results_from_boxes(per_sample, poses, meta={"source": source}), matched


def read_detection_bag(
    bag: str | Path, detections_topic: str = DETECTIONS_TOPIC, objects_topic: str = OBJECTS_TOPIC
) -> PublishedFrames:
    """The frames of a detection bag (``simdistill detect``'s output, or a recording of the node's topics).

    With both topics, each Detection3DArray's boxes (which keep the nuScenes class names) get the velocity
    of the DetectedObjects of the same stamp; with DetectedObjects alone, its boxes (UNKNOWN left out);
    with Detection3DArray alone, zero velocities."""
    vision: dict[int, list[Box3D]] = {}
    objects: dict[int, object] = {}
    with BagReader(bag) as reader:
        for topic, _, msg in reader.messages([detections_topic, objects_topic]):
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            if topic == detections_topic:
                vision[stamp] = boxes_from_detection_array(msg)
            else:
                objects[stamp] = msg
    if not vision and not objects:
        raise UserError(f"{bag}: no message on {detections_topic} or {objects_topic}")
    frames, with_velocity, unknown = [], 0, 0
    for stamp in sorted(vision or objects):
        if stamp in vision and stamp in objects:
            frames.append((stamp, with_published_velocity(vision[stamp], objects[stamp])))
            with_velocity += 1
        elif stamp in vision:
            frames.append((stamp, vision[stamp]))
        else:
            boxes, left_out = boxes_from_detected_objects(objects[stamp])
            frames.append((stamp, boxes))
            with_velocity += 1
            unknown += left_out
    return PublishedFrames(frames, with_velocity, unknown)
