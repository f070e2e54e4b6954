"""Deploy a policy on a real arm under ros2_control: policy node + recorder.

The arm runs ros2_control with ``joint_state_broadcaster`` and either a
``forward_command_controller/ForwardCommandController`` over position interfaces
(``output:=forward``, the default) or ``joint_trajectory_controller`` (``output:=trajectory``).
Topic names are launch arguments (remaps), so no code changes for another controller name:

    ros2 launch launch/deploy_real.launch.py policy:=policies/lift_bc \
        command_topic:=/forward_position_controller/commands \
        object_pose_topic:=/perception/cube_pose estop_topic:=/estop

The safety envelope (joint limits, speed limits, workspace box, stale joint states, e-stop) is
configured in ``config/deploy_real.yaml`` and is always on.
"""

import os

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config", "deploy_real.yaml")

REMAPS = {
    # node's relative topic -> (launch argument, default: ros2_control's names)
    "joint_states": ("joint_states_topic", "/joint_states"),
    "commands": ("command_topic", "/forward_position_controller/commands"),
    "joint_trajectory": ("trajectory_topic", "/joint_trajectory_controller/joint_trajectory"),
    "object_pose": ("object_pose_topic", "/object_pose"),
    "goal_pose": ("goal_pose_topic", "/goal_pose"),
    "success": ("success_topic", "/success"),
    "estop": ("estop_topic", "/estop"),
    "estop_reset": ("estop_reset_topic", "/estop_reset"),
    "reset": ("reset_topic", "/episode_reset"),
}
RECORDED = ("joint_states", "object_pose", "goal_pose", "commands", "joint_trajectory", "success")
"""The recorder's topics among those (the e-stop inputs are the policy node's alone)."""


def generate_launch_description() -> LaunchDescription:
    params = LaunchConfiguration("params")
    remaps = [(topic, LaunchConfiguration(arg)) for topic, (arg, _) in REMAPS.items()]
    recorder_remaps = [(topic, to) for topic, to in remaps if topic in RECORDED + ("reset",)]
    args = [
        DeclareLaunchArgument(arg, default_value=default, description=f"remap of `{topic}`")
        for topic, (arg, default) in REMAPS.items()
    ]
    return LaunchDescription(
        [
            DeclareLaunchArgument("policy", description="policy directory (config.json + ...)"),
            DeclareLaunchArgument(
                "output", default_value="forward", description="forward | trajectory"
            ),
            DeclareLaunchArgument(
                "out", default_value="data/robot_real.hdf5", description="recorded episodes"
            ),
            DeclareLaunchArgument("params", default_value=CONFIG, description="parameter YAML"),
            *args,
            Node(
                package="robot_rl_ros",
                executable="policy_node",
                name="policy_node",
                parameters=[
                    params,
                    {
                        "policy": ParameterValue(LaunchConfiguration("policy"), value_type=str),
                        "output": ParameterValue(LaunchConfiguration("output"), value_type=str),
                    },
                ],
                remappings=remaps,
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
                remappings=recorder_remaps,
                output="screen",
            ),
        ]
    )
