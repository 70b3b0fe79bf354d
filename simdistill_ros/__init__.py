"""simdistill_ros: camera-only 3D object detection for ROS 2, distilled from a LiDAR-camera teacher.

Data flows sensors -> frames -> BEV features -> boxes -> messages:

- ``geometry``: transforms, cameras, rigs and boxes (no ROS, no torch).
- ``synth``: a synthetic multi-camera + LiDAR world rendered by one ray caster.
- ``frames``: rosbag2 reading/writing, point clouds, time synchronisation, frame assembly.
- ``dataset``: nuScenes-format tables and the training dataset.
- ``evaluation``: the official nuScenes detection metrics.
- ``models``: the teacher, the camera-only baseline and the SimDistill student.
"""

__version__ = "0.1.0"
