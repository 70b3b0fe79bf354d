from glob import glob

from setuptools import find_packages, setup

package_name = "simdistill_ros"


def _share(pattern: str) -> list[str]:
    return [f for f in glob(pattern) if not f.endswith(".gitkeep")]


# as simdistill_ros.models.checkpoint.SHIPPED_MODELS (test_package checks that they agree)
SHIPPED_MODELS = ("teacher_v2", "baseline_v2", "student_v2", "teacher_tiny", "baseline_tiny", "student_tiny")


setup(
    name=package_name,
    version="0.1.0",
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
    install_requires=["setuptools"],
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
