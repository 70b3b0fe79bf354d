"""simdistill_ros: camera-only 3D object detection for ROS 2, distilled from a LiDAR-camera teacher.

Data flows sensors -> frames -> BEV features -> boxes -> messages; the packages in layer order (each
imports only the ones before it; docs/design.md, test/test_layers.py): ``errors``/``defaults``/``classes``,
``geometry``, ``interfaces``, ``frames``, ``dataset``, ``synth``, ``models``, ``targets``, ``training``,
``evaluation``, ``detection``, ``replay``, ``nodes``, then the ``cli`` entry point.
"""

__version__ = "0.2.0"
