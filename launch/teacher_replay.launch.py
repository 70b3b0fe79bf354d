"""Offline teacher replay: run the teacher over bags into a target store, publishing its detections.

ros2 launch simdistill_ros teacher_replay.launch.py bags:='[/data/a, /data/b]' out:=/data/targets
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    default_params = PathJoinSubstitution(
        [FindPackageShare("simdistill_ros"), "config", "teacher_replay.yaml"]
    )
    return LaunchDescription(
        [
            DeclareLaunchArgument("params_file", default_value=default_params, description="node parameters"),
            DeclareLaunchArgument(
                "bags", description="rosbag2 paths as a YAML list, e.g. '[/data/a, /data/b]'"
            ),
            DeclareLaunchArgument("teacher", default_value="teacher_v2", description="teacher checkpoint"),
            DeclareLaunchArgument("out", description="target store directory"),
            DeclareLaunchArgument("device", default_value="auto", description="auto, cpu or cuda"),
            Node(
                package="simdistill_ros",
                executable="teacher_replay_node",
                name="teacher_replay_node",
                output="screen",
                parameters=[
                    LaunchConfiguration("params_file"),
                    {
                        "bags": LaunchConfiguration("bags"),
                        "teacher": LaunchConfiguration("teacher"),
                        "output_store": LaunchConfiguration("out"),
                        "device": LaunchConfiguration("device"),
                    },
                ],
            ),
        ]
    )
