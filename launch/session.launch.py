"""ROS 2 launch: sim robot (optional) + policy actor + learner for an on-robot fine-tuning
session, each `robot-rl` process on Cyclone DDS (ROS 2 wire format, same topics as rclpy).

    ros2 launch launch/session.launch.py config:=launch/session.yaml

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
    actor = [*cli, "robot", "actor", "--policy", s["policy"], "--mode", s["mode"], "--rate-hz",
             str(s["rate_hz"]), "--episodes", str(s["episodes"]), "--horizon", str(s["horizon"]),
             "--stats", str(Path(lrn["out"]) / "actor_stats.json"), *dom, *key]  # fmt: skip
    if s.get("success_classifier"):
        actor += ["--success-classifier", s["success_classifier"]]
    procs.append(ExecuteProcess(cmd=actor, name="actor", output="screen"))
    return procs


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value="launch/session.yaml"),
        OpaqueFunction(function=_processes),
    ])  # fmt: skip
