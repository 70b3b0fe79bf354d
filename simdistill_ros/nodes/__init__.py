"""Thin rclpy nodes and tools (detector node, bag player, detection recorder); the logic lives in
:mod:`simdistill_ros.detection` and :mod:`simdistill_ros.frames`."""
