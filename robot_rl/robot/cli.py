"""``robot-rl robot <verb>``: robot-side nodes over Cyclone DDS, each its own process."""

from __future__ import annotations

from dataclasses import dataclass

import tyro

from robot_rl.errors import RobotRLError


@dataclass
class SimNodeConfig:
    """A built-in task exposed as a robot on ROS 2 topics (lockstep: one step per command)."""

    task: str = "lift"
    """Task to expose."""
    seed: int = 0
    """Reset seed."""
    domain_id: int = 0
    """DDS domain."""
    max_steps: int = 10_000
    """Stop after this many control steps."""
    idle_timeout_s: float = 30.0
    """Stop when no command arrives for this long."""


def main(argv: list[str]) -> None:
    verbs = ("sim",)
    if not argv or argv[0] not in verbs:
        given = argv[0] if argv else "nothing"
        raise RobotRLError(f"robot-rl robot needs a verb, got {given!r}; choose from {list(verbs)}")
    cfg = tyro.cli(SimNodeConfig, args=argv[1:], prog="robot-rl robot sim")
    from robot_rl.robot.sim_node import SimRobot

    SimRobot(cfg.task, cfg.seed, cfg.domain_id).spin_lockstep(cfg.max_steps, cfg.idle_timeout_s)
