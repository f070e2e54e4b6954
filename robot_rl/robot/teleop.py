"""Teleoperation: a tool velocity (e.g. a SpaceMouse's ``geometry_msgs/Twist``) and a gripper
button become the ``ee_delta`` action the policies are trained on, then joint targets through
the simulator's own controller and the safety envelope, exactly as a policy's action would.

The action is what a demonstration records; the joint targets are what the robot executes.
Transport-agnostic: the rclpy ``teleop_node`` in ``ros_ws`` wraps :class:`TeleopCore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from robot_rl.robot.convert import joint_state_arrays, stamp_seconds
from robot_rl.robot.envelope import EnvelopeConfig, SafetyEnvelope, panda_envelope_config
from robot_rl.robot.kinematics import ArmKinematics

DEFAULT_JOINTS = tuple(f"robot0_joint{i}" for i in range(1, 8)) + (
    "robot0_finger_left",
    "robot0_finger_right",
)
TWIST_TIMEOUT_S = 0.25
"""A velocity command older than this is treated as zero (the operator let go)."""


def twist_to_action(
    linear: Sequence[float],
    gripper_closed: bool,
    dt: float,
    linear_scale: float = 1.0,
    max_ee_delta: float | None = None,
) -> np.ndarray:
    """``ee_delta`` action ``[dx, dy, dz, gripper]`` in [-1, 1] for a tool velocity.

    ``linear`` [3] times ``linear_scale`` is the tool velocity in m/s; one unit of action moves
    the tool ``max_ee_delta`` metres per control step (the controller's constant), so the
    action is ``v * dt / max_ee_delta``, clipped. Gripper: +1 closes, -1 opens.
    """
    from sim.control import MAX_EE_DELTA

    step = MAX_EE_DELTA if max_ee_delta is None else max_ee_delta
    v = np.asarray(linear, dtype=np.float64) * linear_scale
    if v.shape != (3,) or not np.isfinite(v).all():
        v = np.zeros(3)
    a = np.clip(v * dt / step, -1.0, 1.0)
    return np.append(a, 1.0 if gripper_closed else -1.0).astype(np.float32)


@dataclass
class TeleopOutput:
    command: np.ndarray
    """Safe joint targets [9]."""
    action: np.ndarray
    """The ``ee_delta`` action [4] (what a demonstration records)."""
    flags: int


class TeleopCore:
    """Operator input + joint states -> (action, safe joint targets) each control period."""

    def __init__(
        self,
        rate_hz: float = 20.0,
        envelope: EnvelopeConfig | None = None,
        joint_names: Sequence[str] = DEFAULT_JOINTS,
        linear_scale: float = 1.0,
    ) -> None:
        self.dt = 1.0 / rate_hz
        self.kin = ArmKinematics()
        self.controller = self.kin.controller("ee_delta")
        self.env_cfg = envelope or panda_envelope_config(self.dt)
        self.joint_names = tuple(joint_names)
        self.linear_scale = linear_scale
        self.envelope: SafetyEnvelope | None = None
        self.q: np.ndarray | None = None
        self.js_stamp = -np.inf
        self.linear = np.zeros(3)
        self.twist_time = -np.inf
        self.gripper_closed = False

    def on_joint_state(self, msg: Any) -> None:
        t = stamp_seconds(msg.header.stamp)
        if t > self.js_stamp:
            self.q, _ = joint_state_arrays(msg, self.joint_names)
            self.js_stamp = t

    def on_twist(self, msg: Any, now: float) -> None:
        """A ``geometry_msgs/Twist`` (or ``TwistStamped``: its ``twist``) received at ``now``."""
        twist = getattr(msg, "twist", msg)
        lin = twist.linear
        self.linear = np.array([lin.x, lin.y, lin.z], dtype=np.float64)
        self.twist_time = now

    def on_gripper(self, msg: Any) -> None:
        self.gripper_closed = bool(msg.data)

    def on_estop(self, msg: Any) -> None:
        if self.envelope is not None:
            self.envelope.set_estop(bool(msg.data))

    def on_estop_reset(self, msg: Any) -> None:
        if msg.data and self.envelope is not None:
            self.envelope.reset()

    def tick(self, now: float) -> TeleopOutput | None:
        """One control period at time ``now``; None until a joint state has arrived."""
        if self.q is None:
            return None
        if self.envelope is None:
            self.envelope = SafetyEnvelope(self.env_cfg, self.kin.tool_pos, self.q)
        fresh = now - self.twist_time <= TWIST_TIMEOUT_S
        linear = self.linear if fresh else np.zeros(3)
        action = twist_to_action(linear, self.gripper_closed, self.dt, self.linear_scale)
        act_t = torch.as_tensor(action)[None]
        raw = self.kin.command(self.controller, act_t, self.q[None, :7])[0].numpy()
        safe, flags = self.envelope(raw.astype(np.float64)[None], now - self.js_stamp)
        return TeleopOutput(safe[0], action, int(flags[0]))
