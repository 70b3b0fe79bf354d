"""Launch the SimDistill camera-only detector (and optionally RViz).

    ros2 launch simdistill_ros detector.launch.py [params_file:=...] [model:=baseline_v3] [device:=auto]
        [namespace:=] [use_rviz:=false] [use_sim_time:=false]

params_file defaults to the installed config/detector.yaml; model and device override its values.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("simdistill_ros")
    params_file = LaunchConfiguration("params_file")
    model = LaunchConfiguration("model")
    device = LaunchConfiguration("device")
    namespace = LaunchConfiguration("namespace")
    use_rviz = LaunchConfiguration("use_rviz")
    use_sim_time = LaunchConfiguration("use_sim_time")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=os.path.join(share, "config", "detector.yaml"),
                description="detector parameters (YAML)",
            ),
            DeclareLaunchArgument(
                "model", default_value="baseline_v3", description="checkpoint directory or shipped name"
            ),
            DeclareLaunchArgument("device", default_value="auto", description="auto, cuda or cpu"),
            DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
            DeclareLaunchArgument("use_rviz", default_value="false", description="start RViz as well"),
            DeclareLaunchArgument(
                "use_sim_time", default_value="false", description="follow /clock (bag replay)"
            ),
            Node(
                package="simdistill_ros",
                executable="detector_node",
                name="simdistill_detector",
                namespace=namespace,
                output="screen",
                emulate_tty=True,
                parameters=[
                    params_file,
                    {"model": model, "device": device, "use_sim_time": use_sim_time},
                ],
            ),
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                namespace=namespace,
                arguments=["-d", os.path.join(share, "config", "detector.rviz")],
                parameters=[{"use_sim_time": use_sim_time}],
                condition=IfCondition(use_rviz),
            ),
        ]
    )
