"""ament_python package of the robot_rl ROS 2 nodes (``colcon build`` in ``ros_ws``).

The launch files and their YAML live in the repository's top-level ``launch/``; they are
installed into this package's share directory too, so both ``ros2 launch launch/X.launch.py``
(from a checkout) and ``ros2 launch robot_rl_ros X.launch.py`` (after ``colcon build``) work.
"""

from pathlib import Path

from setuptools import setup

PACKAGE = "robot_rl_ros"
HERE = Path(__file__).resolve().parent
LAUNCH = HERE.parents[2] / "launch"


def _rel(paths):
    return sorted(str(p) for p in paths)


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", _rel(LAUNCH.glob("*.launch.py"))),
        (f"share/{PACKAGE}/launch/config", _rel(LAUNCH.glob("config/*.yaml"))),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="robot_rl maintainers",
    maintainer_email="robot-rl@example.org",
    description="rclpy nodes for robot_rl (policy, actor, sim robot, teleop, recorder)",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "policy_node = robot_rl_ros.policy_node:main",
            "actor_node = robot_rl_ros.actor_node:main",
            "sim_robot_node = robot_rl_ros.sim_robot_node:main",
            "teleop_node = robot_rl_ros.teleop_node:main",
            "recorder_node = robot_rl_ros.recorder_node:main",
        ],
    },
)
