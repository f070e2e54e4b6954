"""Every node's parameters: name -> (default, description), with ROS 2's parameter types.

Pure Python (no rclpy), so the launch files' YAML is checked against these tables where ROS 2 is
not installed. Topics are not parameters: each node uses relative topic names (the role names
below) and a launch file remaps them, e.g. ``commands`` to
``/forward_position_controller/commands``.
"""

from __future__ import annotations

from typing import Any

ARM_JOINTS = [f"robot0_joint{i}" for i in range(1, 8)]
FINGER_JOINTS = ["robot0_finger_left", "robot0_finger_right"]

ENVELOPE = {
    "stale_periods": (
        1.5,
        "hold when the newest joint state is older than this many control periods",
    ),
    "workspace_low": (
        [0.23, -0.37, -0.015],
        "lower corner of the box for the commanded tool position, metres, robot base frame",
    ),
    "workspace_high": ([0.82, 0.37, 0.47], "upper corner of that box"),
    "q_low": ([], "per-joint lower position limits (7 arm + 2 fingers); empty: the sim's Panda"),
    "q_high": ([], "per-joint upper position limits; empty: the sim's Panda"),
    "vel_limit": (
        [],
        "per-joint speed limits (rad/s, m/s for fingers); each step moves at most vel_limit / "
        "rate_hz; empty: the Panda's",
    ),
}
"""The safety envelope's settings (policy and teleop nodes). It cannot be switched off."""

POLICY_NODE: dict[str, tuple[Any, str]] = {
    "policy": ("", "policy directory (config.json + model.safetensors); required"),
    "rate_hz": (20.0, "control rate: the rate the policy was trained at (20 Hz: built-in tasks)"),
    "output": (
        "forward",
        "forward: std_msgs/Float64MultiArray on `commands` (forward_command_controller); "
        "trajectory: trajectory_msgs/JointTrajectory on `joint_trajectory` "
        "(joint_trajectory_controller; the queued chunk as timed points)",
    ),
    "joint_names": (
        ARM_JOINTS + FINGER_JOINTS,
        "the controller's joints in command order (7 arm joints, 2 fingers), as named in "
        "`joint_states`",
    ),
    "horizon": (0, "control steps per episode; 0: the policy's task horizon"),
    "episodes": (0, "shut down after this many episodes; 0: run until stopped"),
    "request_reset": (
        True,
        "publish True on `reset` after each episode (the sim robot resets; set false on a "
        "real arm, which resets by other means)",
    ),
    "async_inference": (True, "compute the next action chunk while the current one executes"),
    "seed": (0, "torch seed (diffusion sampling noise)"),
    "threads": (1, "torch CPU threads"),
    **ENVELOPE,
}

ACTOR_NODE: dict[str, tuple[Any, str]] = {
    **POLICY_NODE,
    "key_file": ("", "shared weights key file (>= 16 bytes); empty: $ROBOT_RL_LINK_KEY"),
    "link_domain_id": (0, "Cyclone DDS domain of the learner link (the learner's --domain-id)"),
    "actor_name": ("robot", "this actor's name (the learner keys transition ids by it)"),
    "dead_after_s": (1.0, "report the learner dead after this long without a heartbeat"),
    "outbox": (200_000, "transitions held until the learner acknowledges them"),
    "deterministic": (
        False,
        "act with the policy's mode; false: sample from it, as `robot-rl finetune` collects",
    ),
    "success_classifier": ("", "a `robot-rl robot success` directory, or empty (topic only)"),
    "drain_s": (10.0, "at shutdown, wait up to this long for the learner to take held rows"),
}
"""The policy node's parameters plus the learner link's (``actor_node``)."""

SIM_ROBOT_NODE: dict[str, tuple[Any, str]] = {
    "task": ("lift", "built-in task exposed as a robot"),
    "seed": (0, "reset seed"),
    "mode": (
        "realtime",
        "realtime: step on a timer at rate_hz holding the newest command; lockstep: one control "
        "period per received command (faster than real time)",
    ),
    "rate_hz": (20.0, "realtime: control rate"),
    "frame_id": ("world", "frame of the published poses and joint states"),
}

TELEOP_NODE: dict[str, tuple[Any, str]] = {
    "rate_hz": (20.0, "control rate (the rate the demonstrations are recorded at)"),
    "linear_scale": (
        1.0,
        "metres per second of tool motion per unit of the `twist` input's linear velocity",
    ),
    "joint_names": (ARM_JOINTS + FINGER_JOINTS, "the controller's joints in command order"),
    **ENVELOPE,
}

RECORDER_TOPICS = [
    "joint_states",
    "object_pose",
    "goal_pose",
    "commands",
    "joint_trajectory",
    "success",
    "intervention",
    "reset",
]
"""Topics the recorder knows, by role (relative names; remap them in the launch file). Types:
JointState; PoseStamped (object_pose, goal_pose); Float64MultiArray (commands);
JointTrajectory (joint_trajectory: its first point is the command); Bool (success;
intervention: latched, true while a human drives; reset: ends the episode in progress)."""

RECORDER_NODE: dict[str, tuple[Any, str]] = {
    "out": ("", "HDF5 file to write episodes to (robomimic layout); required"),
    "topics": (
        [t for t in RECORDER_TOPICS if t != "joint_trajectory"],
        f"topics to record, a subset of {RECORDER_TOPICS} (remap each to the robot's topic)",
    ),
    "append": (False, "add episodes to an existing file (else an existing file is refused)"),
    "env_name": ("robot", "env_name stored in the file (the task's name for the sim robot)"),
    "action": (
        "joint_delta",
        "joint_delta: each command as the sim's joint_delta controller action; "
        "joint_targets: the raw joint targets",
    ),
    "rate_hz": (20.0, "control rate of the robot (stored with the file)"),
    "horizon": (0, "end an episode after this many steps; 0: on reset, success or gap only"),
    "gap_s": (2.0, "end the episode in progress when no command comes for this long"),
    "end_on_success": (True, "end an episode on the first success report"),
    "joint_names": (ARM_JOINTS + FINGER_JOINTS, "the command's joints, as in `joint_states`"),
}

NODES = {
    "policy_node": POLICY_NODE,
    "actor_node": ACTOR_NODE,
    "sim_robot_node": SIM_ROBOT_NODE,
    "teleop_node": TELEOP_NODE,
    "recorder_node": RECORDER_NODE,
}
"""Executable name -> its parameters."""


def ros_type(value: Any) -> str:
    """The ROS 2 parameter type a YAML/Python value gets (``20`` is an integer, ``20.0`` a
    double: a double parameter given ``20`` fails to load, so the launch YAML is checked)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        kinds = {ros_type(v) for v in value}
        if not kinds:
            return "array"
        if len(kinds) == 1 and (k := kinds.pop()) in ("bool", "integer", "double", "string"):
            return f"{k}_array"
    raise ValueError(f"{value!r} is not a ROS 2 parameter value")


def check_parameters(executable: str, values: dict[str, Any]) -> list[str]:
    """Problems with parameter ``values`` for a node (unknown names, wrong types); [] if none."""
    spec = NODES.get(executable)
    if spec is None:
        return [f"unknown executable {executable!r}; choose from {sorted(NODES)}"]
    problems = []
    for name, value in values.items():
        if name not in spec:
            problems.append(f"{executable}: no parameter {name!r}")
            continue
        want, got = ros_type(spec[name][0]), ros_type(value)
        if want == "array":  # empty default: the limit lists, given as doubles
            want = "double_array"
        if got == "array":
            problems.append(f"{executable}.{name}: an empty list has no ROS 2 type; leave it out")
        elif got != want:
            problems.append(f"{executable}.{name}: {got} given, {want} declared")
    return problems
