"""A built-in sim task exposed as a robot over DDS (ROS 2 topics, standard messages).

Publishes ``/joint_states`` (7 arm + 2 finger joints), ``/object_pose`` (PoseStamped) and
``/success`` (Bool); takes ``/commands`` (Float64MultiArray of 9 joint position targets, the
``forward_command_controller`` layout) and ``/reset`` (Bool). In lockstep mode the sim advances
one control period per received command, so deployments run faster than real time.
"""

from __future__ import annotations

import time

import torch

from robot_rl.robot import dds
from robot_rl.robot import msgs as m


class SimRobot:
    """One env of a built-in task driven by joint position targets."""

    def __init__(self, task: str = "lift", seed: int = 0, domain_id: int = 0) -> None:
        from sim import make

        self.env = make(task, num_envs=1, seed=seed)
        self.node = dds.Node(domain_id)
        self.js_w = self.node.writer("/joint_states", m.JointState, dds.SENSOR)
        self.obj_w = self.node.writer("/object_pose", m.PoseStamped, dds.SENSOR)
        self.succ_w = self.node.writer("/success", m.Bool)
        self.cmd_r = self.node.reader("/commands", m.Float64MultiArray)
        self.reset_r = self.node.reader("/reset", m.Bool)
        self.names = list(self.env.robot.arm_joints + self.env.robot.finger_joints)
        self.steps = 0

    def publish(self) -> None:
        e, b = self.env, self.env.backend
        now = m.stamp(time.time())
        q = torch.cat([e.joint_pos, e.gripper_qpos], dim=1)[0].double().tolist()
        qd = b.qvel[0, e._arm_dadr].double().tolist() + [0.0, 0.0]
        self.js_w.write(m.JointState(m.Header(now, "world"), self.names, q, qd, []))
        if hasattr(e, "_cube_adr"):
            p = b.qpos[0, e._cube_adr : e._cube_adr + 7].double().tolist()
            pose = m.Pose(m.Point(*p[:3]), m.Quaternion(p[4], p[5], p[6], p[3]))
            self.obj_w.write(m.PoseStamped(m.Header(now, "world"), pose))

    def apply(self, targets: list[float]) -> bool:
        """Hold joint targets for one control period; returns success."""
        e = self.env
        ctrl = torch.tensor([targets], dtype=torch.float32)
        if ctrl.shape != (1, 9) or not torch.isfinite(ctrl).all():
            return False
        ctrl[:, :7] = torch.maximum(torch.minimum(ctrl[:, :7], e._q_high), e._q_low)
        e.backend.step(ctrl, e.decimation)
        self.steps += 1
        _, success = e._evaluate()
        ok = bool(success[0])
        self.succ_w.write(m.Bool(ok))
        return ok

    def spin_lockstep(self, max_steps: int, idle_timeout_s: float = 5.0) -> None:
        """Publish state, wait for a command, step; until ``max_steps`` or a silent peer."""
        self.publish()
        while self.steps < max_steps:
            if self.reset_r.take_latest() is not None:
                self.env.reset()
                self.publish()
            cmd = self.cmd_r.wait_take(time.monotonic() + idle_timeout_s)
            if cmd is None:
                return
            self.apply(list(cmd.data))
            self.publish()
