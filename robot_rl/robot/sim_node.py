"""A built-in sim task exposed as a robot over DDS (ROS 2 topics, standard messages).

Publishes ``/joint_states`` (7 arm + 2 finger joints), ``/object_pose`` and ``/goal_pose``
(PoseStamped, when the task has them) and ``/success`` (Bool); takes ``/commands``
(Float64MultiArray of 9 joint position targets, the ``forward_command_controller`` layout),
``/joint_trajectory`` (JointTrajectory: its first point is the next target) and ``/reset``
(Bool). Two pacings:

- lockstep: the sim advances one control period per received command, so deployments run
  faster than real time (state is re-published if no command comes, in case it was lost);
- real time: a wall-clock timer steps the sim at ``rate_hz``, holding the latest command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch


@dataclass
class SimState:
    """One snapshot of the sim robot, in the layout of its ROS messages."""

    names: list[str]
    position: list[float]
    """7 arm + 2 finger joints."""
    velocity: list[float]
    object_pose: list[float] | None
    """Position + quaternion (x, y, z, qw, qx, qy, qz), the sim's layout; None without one."""
    goal: list[float] | None
    """Goal position, None without one."""


class SimRobotCore:
    """One env of a built-in task driven by joint position targets (no transport).

    The DDS shell below and the rclpy ``sim_robot_node`` in ``ros_ws`` both wrap this.
    """

    def __init__(self, task: str = "lift", seed: int = 0) -> None:
        from sim import make

        self.env = make(task, num_envs=1, seed=seed)
        self.names = list(self.env.robot.arm_joints + self.env.robot.finger_joints)
        self.steps = 0
        self.resets = 0
        self.last_success = False

    @property
    def timestep(self) -> float:
        return float(self.env.backend.timestep)

    def state(self) -> SimState:
        e, b = self.env, self.env.backend
        q = torch.cat([e.joint_pos, e.gripper_qpos], dim=1)[0].double().tolist()
        qd = b.qvel[0, e._arm_dadr].double().tolist() + [0.0, 0.0]
        pose = None
        if hasattr(e, "_cube_adr"):
            pose = b.qpos[0, e._cube_adr : e._cube_adr + 7].double().tolist()
        goal = getattr(e, "_goal", None)
        g = goal[0].double().tolist()[:3] if goal is not None else None
        return SimState(self.names, q, qd, pose, g)

    def apply(self, targets: list[float], nsteps: int | None = None) -> bool | None:
        """Hold joint targets for one control period; success, or None if the targets are
        rejected (wrong length or not finite: the robot does not move)."""
        e = self.env
        ctrl = torch.tensor([targets], dtype=torch.float32)
        if ctrl.shape != (1, 9) or not torch.isfinite(ctrl).all():
            return None
        ctrl[:, :7] = torch.maximum(torch.minimum(ctrl[:, :7], e._q_high), e._q_low)
        e.backend.step(ctrl, nsteps or e.decimation)
        self.steps += 1
        _, success = e._evaluate()
        self.last_success = bool(success[0])
        return self.last_success

    def reset(self) -> None:
        self.env.reset()
        self.resets += 1


class SimRobot:
    """The sim robot over Cyclone DDS (ROS 2 topics, standard messages)."""

    def __init__(
        self,
        task: str = "lift",
        seed: int = 0,
        domain_id: int = 0,
        command_topic: str = "/commands",
        trajectory_topic: str = "/joint_trajectory",
    ) -> None:
        from robot_rl.robot import dds
        from robot_rl.robot import msgs as m
        from robot_rl.robot.convert import cyclonedds_types

        self.m = m
        self.types = cyclonedds_types()
        self.core = SimRobotCore(task, seed)
        self.env = self.core.env
        self.node = dds.Node(domain_id)
        self.js_w = self.node.writer("/joint_states", m.JointState, dds.SENSOR)
        self.obj_w = self.node.writer("/object_pose", m.PoseStamped, dds.SENSOR)
        self.goal_w = self.node.writer("/goal_pose", m.PoseStamped, dds.SENSOR)
        self.succ_w = self.node.writer("/success", m.Bool)
        self.cmd_r = self.node.reader(command_topic, m.Float64MultiArray)
        self.traj_r = self.node.reader(trajectory_topic, m.JointTrajectory)
        self.reset_r = self.node.reader("/reset", m.Bool)
        self.names = self.core.names
        self._hold: list[float] | None = None

    @property
    def steps(self) -> int:
        return self.core.steps

    @property
    def resets(self) -> int:
        return self.core.resets

    def publish(self) -> None:
        from robot_rl.robot import convert as c

        s, now = self.core.state(), time.time()
        # object and goal first: a reader that sees the joint state sees the poses with it
        if s.object_pose is not None:
            self.obj_w.write(c.pose_stamped_msg(self.types, now, s.object_pose))
        if s.goal is not None:
            self.goal_w.write(c.pose_stamped_msg(self.types, now, s.goal))
        self.js_w.write(c.joint_state_msg(self.types, now, s.names, s.position, s.velocity))

    def apply(self, targets: list[float], nsteps: int | None = None) -> bool:
        """Hold joint targets for one control period; returns success."""
        ok = self.core.apply(targets, nsteps)
        if ok is None:
            return False
        self.succ_w.write(self.m.Bool(ok))
        return ok

    def reset(self) -> None:
        self.core.reset()
        self._hold = None

    def _take_command(self) -> list[float] | None:
        """Newest command from either input (a trajectory's first point), or None."""
        from robot_rl.robot.convert import targets_from_command, targets_from_trajectory

        got = None
        cmd = self.cmd_r.take_latest()
        if cmd is not None:
            got = targets_from_command(cmd)
        traj = self.traj_r.take_latest()
        if traj is not None:
            got = targets_from_trajectory(traj) or got
        return got

    def spin_lockstep(
        self, max_steps: int, idle_timeout_s: float = 5.0, republish_s: float = 0.5
    ) -> None:
        """Publish state, wait for a command (or reset), step; until ``max_steps`` or silence."""
        self.publish()
        last_heard = last_pub = time.monotonic()
        while self.steps < max_steps:
            now = time.monotonic()
            if self.reset_r.take_latest() is not None:
                self.reset()
                self.publish()
                last_heard = last_pub = now
                continue
            targets = self._take_command()
            if targets is not None:
                self.apply(targets)
                self.publish()
                last_heard = last_pub = time.monotonic()
                continue
            if now - last_heard > idle_timeout_s:
                return
            if now - last_pub > republish_s:  # the state may have been lost (best effort)
                self.publish()
                last_pub = now
            time.sleep(0.0002)

    def spin_realtime(self, rate_hz: float, max_steps: int, idle_timeout_s: float = 5.0) -> None:
        """Step at ``rate_hz`` on the wall clock, holding the newest command; publish each tick."""
        period = 1.0 / rate_hz
        nsteps = max(1, round(period / self.core.timestep))
        start = time.monotonic()
        last_heard = start
        k = 0
        self.publish()
        while self.steps < max_steps:
            k += 1
            deadline = start + k * period
            while (now := time.monotonic()) < deadline:
                time.sleep(min(0.0005, deadline - now))
            if now - deadline > period:  # fell behind: skip missed ticks rather than rush
                k = int((now - start) / period)
            if self.reset_r.take_latest() is not None:
                self.reset()
                last_heard = now
            targets = self._take_command()
            if targets is not None:
                self._hold = targets
                last_heard = now
            elif now - last_heard > idle_timeout_s:
                return
            if self._hold is not None:
                self.apply(self._hold, nsteps)
            self.publish()
