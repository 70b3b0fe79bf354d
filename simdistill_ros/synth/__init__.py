"""The synthetic driving world: procedural scenes, one ray caster for cameras and LiDAR, sensor playback.

ROS-free and deterministic per seed::

    scene = generate_scene(np.random.default_rng(seed), WorldConfig())
    for event in SceneRecording(scene, nuscenes_like_rig()):
        ...  # SampleEvent, EgoPoseEvent, CameraEvent, LidarEvent in time order
"""

from simdistill_ros.synth.raycast import GROUND, SCENERY, SKY, Hits, cast, occluded
from simdistill_ros.synth.render import (
    CameraRender,
    LidarRender,
    lidar_directions,
    render_camera,
    render_camera_layers,
    render_lidar,
    render_lidar_layers,
)
from simdistill_ros.synth.scenario import (
    CameraEvent,
    EgoPoseEvent,
    Event,
    LidarEvent,
    SampleEvent,
    SceneRecording,
    SensorTimeline,
)
from simdistill_ros.synth.scene import Scene, SceneObject, SceneSpec
from simdistill_ros.synth.world import WorldConfig, generate_scene

__all__ = [
    "GROUND",
    "SCENERY",
    "SKY",
    "CameraEvent",
    "CameraRender",
    "EgoPoseEvent",
    "Event",
    "Hits",
    "LidarEvent",
    "LidarRender",
    "SampleEvent",
    "Scene",
    "SceneObject",
    "SceneRecording",
    "SceneSpec",
    "SensorTimeline",
    "WorldConfig",
    "cast",
    "generate_scene",
    "lidar_directions",
    "occluded",
    "render_camera",
    "render_camera_layers",
    "render_lidar",
    "render_lidar_layers",
]
