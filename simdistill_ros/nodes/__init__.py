"""Thin rclpy nodes and tools (detector node, bag player, detection recorder); the logic lives in
:mod:`simdistill_ros.detection` and :mod:`simdistill_ros.frames`."""

from simdistill_ros.openmp import bound_openmp_spin

# A node shares its computer's cores: OpenMP's spin-waiting is bounded before any node module imports torch
# (each imports this package first, as a console script or with `python -m`).
bound_openmp_spin()
