"""Collect teleoperated demonstrations: an operator's SpaceMouse (or any geometry_msgs/Twist
source) drives the robot through the policies' own action space; the recorder writes them.

    ros2 launch launch/collect_demos.launch.py [robot:=sim|real] [input:=spacenav|none] \
        [out:=data/teleop.hdf5] [twist_topic:=/spacenav/twist] [gripper_topic:=/gripper]

``robot:=sim`` starts the sim robot; ``robot:=real`` expects ros2_control's topics (remap with
``command_topic:=``, ``joint_states_topic:=``). ``input:=spacenav`` starts ``spacenav_node``
(package ``spacenav``); with ``input:=none`` publish Twist on ``twist_topic`` yourself, e.g.
``ros2 run teleop_twist_keyboard teleop_twist_keyboard --ros-args -r cmd_vel:=/teleop/twist``.
The gripper closes while ``gripper_topic`` (std_msgs/Bool) is true.
"""

import os

from launch.actions import DeclareLaunchArgument
from launch.conditions import LaunchConfigurationEquals
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config", "collect_demos.yaml")


def generate_launch_description() -> LaunchDescription:
    params = LaunchConfiguration("params")
    robot_remaps = [
        ("joint_states", LaunchConfiguration("joint_states_topic")),
        ("commands", LaunchConfiguration("command_topic")),
    ]
    teleop_remaps = [
        *robot_remaps,
        ("twist", LaunchConfiguration("twist_topic")),
        ("gripper", LaunchConfiguration("gripper_topic")),
    ]
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot", default_value="sim", description="sim | real"),
            DeclareLaunchArgument("input", default_value="spacenav", description="spacenav | none"),
            DeclareLaunchArgument("task", default_value="lift", description="sim task"),
            DeclareLaunchArgument(
                "out", default_value="data/teleop.hdf5", description="recorded demonstrations"
            ),
            DeclareLaunchArgument("twist_topic", default_value="/spacenav/twist"),
            DeclareLaunchArgument("gripper_topic", default_value="/gripper"),
            DeclareLaunchArgument("joint_states_topic", default_value="/joint_states"),
            DeclareLaunchArgument("command_topic", default_value="/commands"),
            DeclareLaunchArgument("params", default_value=CONFIG, description="parameter YAML"),
            Node(
                package="robot_rl_ros",
                executable="sim_robot_node",
                name="sim_robot_node",
                parameters=[
                    params,
                    {"task": ParameterValue(LaunchConfiguration("task"), value_type=str)},
                ],
                remappings=robot_remaps,
                condition=LaunchConfigurationEquals("robot", "sim"),
                output="screen",
            ),
            Node(
                package="spacenav",
                executable="spacenav_node",
                name="spacenav",
                condition=LaunchConfigurationEquals("input", "spacenav"),
            ),
            Node(
                package="robot_rl_ros",
                executable="teleop_node",
                name="teleop_node",
                parameters=[params],
                remappings=teleop_remaps,
                output="screen",
            ),
            Node(
                package="robot_rl_ros",
                executable="recorder_node",
                name="recorder_node",
                parameters=[
                    params,
                    {"out": ParameterValue(LaunchConfiguration("out"), value_type=str)},
                ],
                remappings=robot_remaps,
                output="screen",
            ),
        ]
    )
