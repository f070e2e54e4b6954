"""``robot-rl robot <verb>``: robot-side nodes over Cyclone DDS, each its own process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from robot_rl.errors import RobotRLError


@dataclass
class SimNodeConfig:
    """A built-in task exposed as a robot on ROS 2 topics."""

    task: str = "lift"
    """Task to expose."""
    seed: int = 0
    """Reset seed."""
    domain_id: int = 0
    """DDS domain."""
    mode: Literal["lockstep", "realtime"] = "lockstep"
    """lockstep: one control period per received command (faster than real time);
    realtime: step on a wall-clock timer at rate_hz, holding the newest command."""
    rate_hz: float = 20.0
    """realtime: control rate (the task's physics steps per period follow from it)."""
    command_topic: str = "/commands"
    """Float64MultiArray joint targets (forward_command_controller layout)."""
    trajectory_topic: str = "/joint_trajectory"
    """JointTrajectory input (its first point is the next target)."""
    max_steps: int = 1_000_000
    """Stop after this many control steps."""
    idle_timeout_s: float = 30.0
    """Stop when no command arrives for this long."""


@dataclass
class PolicyNodeConfig:
    """Run a policy directory on a robot (or the sim robot) over ROS 2 topics."""

    policy: Path
    """Policy directory (config.json + model.safetensors)."""
    domain_id: int = 0
    """DDS domain."""
    mode: Literal["lockstep", "realtime"] = "realtime"
    """realtime: timer at the control rate (a real controller); lockstep: one command per new
    joint state (with `robot-rl robot sim --mode lockstep`)."""
    rate_hz: float = 20.0
    """Control rate (the rate the policy was trained at: 20 Hz for built-in tasks)."""
    output: Literal["forward", "trajectory"] = "forward"
    """forward: Float64MultiArray for forward_command_controller; trajectory: JointTrajectory
    (the queued chunk as timed points) for joint_trajectory_controller."""
    episodes: int = 1
    """Episodes to run (each ends on success or at the horizon, then the robot is reset)."""
    horizon: int | None = None
    """Steps per episode (default: the policy's task horizon)."""
    max_ticks: int | None = None
    """realtime: stop after this many control periods."""
    async_inference: bool | None = None
    """Compute the next chunk while the current one executes (default: on in realtime, off in
    lockstep, where the sim waits for us anyway and results should not depend on timing)."""
    record: Path | None = None
    """Record the episodes to this HDF5 file (robomimic layout)."""
    stats: Path | None = None
    """Write timing and success figures to this JSON file."""
    command_topic: str = "/commands"
    trajectory_topic: str = "/joint_trajectory"
    joint_state_topic: str = "/joint_states"
    object_topic: str = "/object_pose"
    goal_topic: str = "/goal_pose"
    estop_topic: str = "/estop"
    estop_reset_topic: str = "/estop_reset"
    idle_timeout_s: float = 10.0
    """Give up when no joint state arrives for this long."""
    seed: int = 0
    """Torch seed (diffusion sampling noise)."""
    threads: int = 1
    """Torch CPU threads."""


@dataclass
class RecordConfig:
    """Record the robot's episodes from its ROS 2 topics into robomimic-layout HDF5.

    One step per joint command, paired with the newest joint state, object and goal pose
    before it. Each finished episode is committed atomically: a crash or kill loses at most
    the episode in progress. Stops after --episodes, after --idle-timeout-s of silence, or
    on Ctrl-C / SIGTERM."""

    out: Path
    """HDF5 file to write (refused if it exists, unless --append)."""
    append: bool = False
    """Add episodes to an existing recording (same env name and observation keys)."""
    env_name: str = "robot"
    """env_name stored in the file (the task's name when recording the sim robot)."""
    action: Literal["joint_delta", "joint_targets"] = "joint_delta"
    """joint_delta: each command as the sim's joint_delta controller action (a policy trained
    on the file deploys with that controller); joint_targets: the 9 raw joint targets."""
    rate_hz: float = 20.0
    """Control rate of the robot (stored in env_kwargs)."""
    domain_id: int = 0
    """DDS domain."""
    episodes: int | None = None
    """Stop after this many episodes (default: until stopped)."""
    horizon: int | None = None
    """End an episode after this many steps (default: on reset, success or a gap only)."""
    gap_s: float = 2.0
    """End the episode in progress when no command comes for this long."""
    end_on_success: bool = True
    """End an episode on the first success report (later commands wait for a reset)."""
    idle_timeout_s: float | None = None
    """Stop when no message at all arrives for this long (default: never)."""
    joint_state_topic: str = "/joint_states"
    command_topic: str = "/commands"
    trajectory_topic: str = "/joint_trajectory"
    object_topic: str = "/object_pose"
    goal_topic: str = "/goal_pose"
    success_topic: str = "/success"
    reset_topic: str = "/reset"
    """Episode marker: a True here ends the episode in progress (the policy node sends it)."""
    intervention_topic: str = "/intervention"
    """Bool, latched: True while a human drives the robot (per-step intervention flag)."""


def main(argv: list[str]) -> None:
    verbs = ("sim", "policy", "record", "import", "actor", "success")
    if not argv or argv[0] not in verbs:
        given = argv[0] if argv else "nothing"
        raise RobotRLError(f"robot-rl robot needs a verb, got {given!r}; choose from {list(verbs)}")
    if argv[0] == "sim":
        cfg = tyro.cli(SimNodeConfig, args=argv[1:], prog="robot-rl robot sim")
        run_sim(cfg)
    elif argv[0] == "success":
        import json

        from robot_rl.robot.success import SuccessConfig, train_success

        scfg = tyro.cli(SuccessConfig, args=argv[1:], prog="robot-rl robot success")
        print(json.dumps(train_success(scfg)))
    elif argv[0] == "actor":
        from robot_rl.robot.actor import ActorConfig, run_actor

        acfg = tyro.cli(ActorConfig, args=argv[1:], prog="robot-rl robot actor")
        run_actor(acfg)
    elif argv[0] == "policy":
        pcfg = tyro.cli(PolicyNodeConfig, args=argv[1:], prog="robot-rl robot policy")
        run_policy(pcfg)
    elif argv[0] == "record":
        from robot_rl.robot.record_node import run_record

        rcfg = tyro.cli(RecordConfig, args=argv[1:], prog="robot-rl robot record")
        run_record(rcfg)
    else:
        main_import(argv[1:])


def main_import(argv: list[str]) -> None:
    """``robot-rl import <source> ...`` (``rosbag``)."""
    if not argv or argv[0] != "rosbag":
        given = argv[0] if argv else "nothing"
        raise RobotRLError(f"robot-rl import needs a source, got {given!r}; choose from ['rosbag']")
    from robot_rl.robot.rosbag_import import RosbagImportConfig, run_import

    icfg = tyro.cli(RosbagImportConfig, args=argv[1:], prog="robot-rl import rosbag")
    run_import(icfg)


def run_sim(cfg: SimNodeConfig) -> None:
    from robot_rl.robot.sim_node import SimRobot

    if cfg.rate_hz <= 0:
        raise RobotRLError(f"--rate-hz must be positive, got {cfg.rate_hz}")
    robot = SimRobot(cfg.task, cfg.seed, cfg.domain_id, cfg.command_topic, cfg.trajectory_topic)
    if cfg.mode == "lockstep":
        robot.spin_lockstep(cfg.max_steps, cfg.idle_timeout_s)
    else:
        robot.spin_realtime(cfg.rate_hz, cfg.max_steps, cfg.idle_timeout_s)


def build_policy_node(cfg: PolicyNodeConfig, *, envelope=None, joint_names=None):
    """The transport-agnostic core (and recorder) for a config; checks input before work.

    ``envelope`` (an ``EnvelopeConfig``; default: the sim's Panda at the control rate) and
    ``joint_names`` (the controller's joints in command order) come from the rclpy node's
    parameters; the DDS verb uses the defaults. Returns ``(PolicyNodeCore, recorder | None)``.
    """
    import sys

    import torch

    from robot_rl.robot.policy_node import PolicyNodeCore
    from robot_rl.robot.runtime import PolicyRuntime

    if not (cfg.policy / "config.json").is_file():
        raise RobotRLError(f"{cfg.policy}: not a policy directory (no config.json)")
    if cfg.rate_hz <= 0 or cfg.episodes < 1:
        raise RobotRLError("--rate-hz must be positive and --episodes >= 1")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    # The control loop and the inference worker share the GIL: switch often so a tick never
    # waits long behind Python code in the worker.
    sys.setswitchinterval(0.0005)
    use_async = cfg.async_inference if cfg.async_inference is not None else cfg.mode == "realtime"
    runtime = PolicyRuntime(
        cfg.policy, control_hz=cfg.rate_hz, envelope=envelope, async_inference=use_async
    )
    recorder = None
    if cfg.record is not None:
        try:
            from robot_rl.robot.recorder import EpisodeRecorder
        except ModuleNotFoundError as e:
            raise RobotRLError("--record needs robot_rl.robot.recorder (not installed)") from e
        env_info = dict(runtime.policy.env_info)
        env_info.setdefault("env_name", "robot")
        recorder = EpisodeRecorder(cfg.record, env_info, runtime.obs_keys)
    preview = runtime.n_act if cfg.output == "trajectory" else 0
    extra = {"joint_names": tuple(joint_names)} if joint_names else {}
    core = PolicyNodeCore(
        runtime, horizon=cfg.horizon, recorder=recorder, preview_steps=preview, **extra
    )
    return core, recorder


def run_policy(cfg: PolicyNodeConfig) -> None:
    from robot_rl.robot.policy_node import DdsPolicyNode, write_stats

    core, recorder = build_policy_node(cfg)
    node = DdsPolicyNode(
        core,
        cfg.domain_id,
        output=cfg.output,
        joint_state_topic=cfg.joint_state_topic,
        command_topic=cfg.command_topic,
        trajectory_topic=cfg.trajectory_topic,
        object_topic=cfg.object_topic,
        goal_topic=cfg.goal_topic,
        estop_topic=cfg.estop_topic,
        estop_reset_topic=cfg.estop_reset_topic,
    )
    try:
        if cfg.mode == "lockstep":
            stats = node.spin_lockstep(cfg.episodes, cfg.idle_timeout_s)
        else:
            stats = node.spin_realtime(cfg.episodes, cfg.max_ticks, cfg.idle_timeout_s)
    finally:
        core.rt.close()
        if recorder is not None:
            recorder.close()
    summary = stats.summary()
    summary["runtime_chunks"] = core.rt.stats.chunks
    summary["runtime_starved"] = core.rt.stats.starved
    if cfg.stats is not None:
        write_stats(cfg.stats, stats, {"runtime": summary})
    print(
        " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items())
    )
