"""ROS 2 launch: sim robot (optional) + policy actor + learner for an on-robot fine-tuning
session, each `robot-rl` process on Cyclone DDS (ROS 2 wire format, same topics as rclpy).

    ros2 launch launch/session.launch.py config:=launch/session.yaml

``actor: rclpy`` in the YAML starts the actor as the rclpy ``actor_node`` of ``ros_ws``
(``colcon build`` it first) instead of the ``robot-rl robot actor`` process; it talks to the
arm's topics through ROS 2 and to the learner over the same Cyclone DDS link.

The weights key comes from ``key_file`` or ``ROBOT_RL_LINK_KEY`` in the environment, never
from the YAML. Run the learner on the GPU machine instead by starting only its process there
(same domain id; see README "Fine-tuning on a robot").
"""

from pathlib import Path

import yaml
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from launch import LaunchDescription


def _processes(context):  # noqa: ANN001, ANN202
    cfg = yaml.safe_load(Path(LaunchConfiguration("config").perform(context)).read_text())
    s = cfg["session"]
    lrn = s["learner"]
    dom = ["--domain-id", str(s["domain_id"])]
    key = ["--key-file", s["key_file"]] if s.get("key_file") else []
    cli = ["robot-rl", "--threads", "1"]
    procs = []
    if s.get("sim", False):
        procs.append(ExecuteProcess(cmd=[*cli, "robot", "sim", "--task", s["task"], "--mode",
                                         s["mode"], "--rate-hz", str(s["rate_hz"]), *dom],
                                    name="sim_robot", output="screen"))  # fmt: skip
    learner = [*cli, "learner", "--algo", lrn["algo"], "--out", lrn["out"], "--init", lrn["init"],
               "--env-steps", str(lrn["env_steps"]), "--publish-every",
               str(lrn["publish_every"]), *dom, *key]  # fmt: skip
    if lrn.get("dataset"):
        learner += ["--dataset", lrn["dataset"]]
    if lrn.get("resume") and Path(lrn["out"]).exists():
        learner.append("--resume")
    procs.append(ExecuteProcess(cmd=learner, name="learner", output="screen"))
    if s.get("actor", "dds") == "rclpy":
        procs.append(_rclpy_actor(s))
        return procs
    actor = [*cli, "robot", "actor", "--policy", s["policy"], "--mode", s["mode"], "--rate-hz",
             str(s["rate_hz"]), "--episodes", str(s["episodes"]), "--horizon", str(s["horizon"]),
             "--stats", str(Path(lrn["out"]) / "actor_stats.json"), *dom, *key]  # fmt: skip
    if s.get("success_classifier"):
        actor += ["--success-classifier", s["success_classifier"]]
    procs.append(ExecuteProcess(cmd=actor, name="actor", output="screen"))
    return procs


def _rclpy_actor(s: dict):  # noqa: ANN202
    from launch_ros.actions import Node

    params = {
        "policy": s["policy"],
        "rate_hz": float(s["rate_hz"]),
        "episodes": int(s["episodes"]),
        "horizon": int(s["horizon"]),
        "link_domain_id": int(s["domain_id"]),
        "key_file": s.get("key_file") or "",
        "success_classifier": s.get("success_classifier") or "",
        "request_reset": bool(s.get("sim", False)),
    }
    # the DDS verbs' default topic names, so the sim robot and a teleop device line up
    remap = {"teleop_action": "/teleop/action", "intervention": "/teleop/intervention",
             **(s.get("remap") or {})}  # fmt: skip
    return Node(package="robot_rl_ros", executable="actor_node", name="actor_node",
                output="screen", parameters=[params], remappings=list(remap.items()),
                additional_env={"ROS_DOMAIN_ID": str(s["domain_id"])})  # fmt: skip


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value="launch/session.yaml"),
        OpaqueFunction(function=_processes),
    ])  # fmt: skip
