"""Launch the SimDistill camera-only detector in an Autoware stack, where autoware_tensorrt_bevdet sits.

    ros2 launch simdistill_ros autoware.launch.py [output/objects:=...] [params_file:=...]
        [model:=baseline_v3] [device:=auto] [use_sim_time:=false]

Parameters: config/detector.yaml, then params_file (default config/autoware.yaml: outputs [autoware],
base_link, the six /sensing/camera/cameraN raw image and camera_info topics) over it; model, device and
output/objects override both. The DetectedObjects go to output/objects, in Autoware's detection namespace
(/perception/object_recognition/detection/<detector>/objects); remap it to
/perception/object_recognition/detection/objects when this is the stack's only detector.
QoS as Autoware's camera detectors: images best effort (accepts reliable and best-effort publishers),
DetectedObjects reliable and volatile (what Autoware's mergers and trackers subscribe with).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("simdistill_ros")
    params_file = LaunchConfiguration("params_file")
    objects = LaunchConfiguration("output/objects")
    model = LaunchConfiguration("model")
    device = LaunchConfiguration("device")
    use_sim_time = LaunchConfiguration("use_sim_time")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "output/objects",
                default_value="/perception/object_recognition/detection/camera_bev/objects",
                description="DetectedObjects topic (Autoware's detection namespace)",
            ),
            DeclareLaunchArgument(
                "params_file",
                default_value=os.path.join(share, "config", "autoware.yaml"),
                description="Autoware overrides of config/detector.yaml: outputs, cameras, topics (YAML)",
            ),
            DeclareLaunchArgument(
                "model", default_value="baseline_v3", description="checkpoint directory or shipped name"
            ),
            DeclareLaunchArgument("device", default_value="auto", description="auto, cuda or cpu"),
            DeclareLaunchArgument(
                "use_sim_time", default_value="false", description="follow /clock (bag replay)"
            ),
            Node(
                package="simdistill_ros",
                executable="detector_node",
                name="simdistill_detector",
                output="screen",
                emulate_tty=True,
                parameters=[
                    os.path.join(share, "config", "detector.yaml"),
                    params_file,
                    {
                        "objects_topic": objects,
                        "model": model,
                        "device": device,
                        "use_sim_time": use_sim_time,
                    },
                ],
            ),
        ]
    )
