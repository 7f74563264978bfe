"""ament_python build of ldf_ros; also pip-installable without a ROS 2 distro."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "ldf_ros"


def share(folder: str, pattern: str = "*"):
    """Install repo files under share/ldf_ros so ros2 launch and the node find them."""
    return (f"share/{PACKAGE}/{folder}", [f for f in glob(f"{folder}/{pattern}")])


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        share("launch", "*.launch.py"),
        share("config", "*"),
        share("models", "*"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="ldf_ros developers",
    maintainer_email="ldf-ros@example.org",
    description="Text-guided, depth-driven diffusion fusion of RGB and thermal cameras for ROS 2.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "fusion_node = ldf_ros.ros.fusion_node:main",
            "fusion_lifecycle_node = ldf_ros.ros.fusion_node:lifecycle_main",
            "ldf-ros = ldf_ros.cli:main",
        ],
    },
)
