"""Deploy a policy on the simulated robot: sim robot + policy node + recorder, one machine.

    ros2 launch launch/deploy_sim.launch.py policy:=policies/lift_bc [task:=lift] \
        [out:=data/robot_sim.hdf5] [params:=launch/config/deploy_sim.yaml]

Nodes and topics (all relative names, resolved in the launch namespace):
sim_robot_node --joint_states, object_pose, goal_pose, success--> policy_node --commands-->
sim_robot_node; policy_node --reset--> sim_robot_node; recorder_node listens to them all.
"""

import os

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config", "deploy_sim.yaml")


def generate_launch_description() -> LaunchDescription:
    params = LaunchConfiguration("params")

    def text(name: str) -> ParameterValue:
        return ParameterValue(LaunchConfiguration(name), value_type=str)

    return LaunchDescription(
        [
            DeclareLaunchArgument("policy", description="policy directory (config.json + ...)"),
            DeclareLaunchArgument("task", default_value="lift", description="built-in task"),
            DeclareLaunchArgument(
                "out", default_value="data/robot_sim.hdf5", description="recorded episodes"
            ),
            DeclareLaunchArgument("params", default_value=CONFIG, description="parameter YAML"),
            Node(
                package="robot_rl_ros",
                executable="sim_robot_node",
                name="sim_robot_node",
                parameters=[params, {"task": text("task")}],
                output="screen",
            ),
            Node(
                package="robot_rl_ros",
                executable="policy_node",
                name="policy_node",
                parameters=[params, {"policy": text("policy")}],
                output="screen",
            ),
            Node(
                package="robot_rl_ros",
                executable="recorder_node",
                name="recorder_node",
                parameters=[params, {"out": text("out")}],
                output="screen",
            ),
        ]
    )
