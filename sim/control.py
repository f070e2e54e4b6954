"""The arm controller shared by the simulator and the robot: policy action -> joint targets.

A policy trained in sim must command a real arm exactly as it commanded the sim, so the mapping
lives here, pure and batched in torch, fed with kinematic quantities (tool position, rotation,
Jacobian, joint angles) that the sim reads from its backend and a robot node computes by forward
kinematics from the joint states it receives.

Controllers: ``ee_delta`` (action ``[dx, dy, dz, gripper]``: damped-least-squares IK toward
``tool + 0.03 m * a`` inside a workspace box, tool kept at its home orientation, null-space pull
toward home) and ``joint_delta`` (action ``[dq1..dq7, gripper]``, 0.05 rad per unit). Gripper
-1 opens, +1 closes. Targets are clamped to the joint ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CONTROLLERS = ("ee_delta", "joint_delta")
CONTROL_HZ = 20.0
MAX_EE_DELTA = 0.03
"""Metres of tool motion per control step at action magnitude 1."""
MAX_JOINT_DELTA = 0.05
"""Radians per control step at action magnitude 1."""
WORKSPACE_LOW = (0.25, -0.35, 0.005)
WORKSPACE_HIGH = (0.8, 0.35, 0.45)
IK_DAMPING = 0.05
NULL_SPACE_GAIN = 0.5


@dataclass
class ArmController:
    """Maps actions to arm joint position targets plus finger targets, all batched ``[N, ...]``.

    Tensors given at construction are per robot (joint ranges and home ``[7]``, tool rotation
    target ``[3, 3]``); call arguments are per env.
    """

    mode: str
    q_low: torch.Tensor
    q_high: torch.Tensor
    home: torch.Tensor
    tcp_rot_target: torch.Tensor
    """Tool frame orientation held by ``ee_delta`` (the one at the home posture)."""
    finger_open: float
    max_ee_delta: float = MAX_EE_DELTA
    max_joint_delta: float = MAX_JOINT_DELTA
    workspace_low: tuple[float, float, float] = WORKSPACE_LOW
    workspace_high: tuple[float, float, float] = WORKSPACE_HIGH
    damping: float = IK_DAMPING
    null_gain: float = NULL_SPACE_GAIN

    def __post_init__(self) -> None:
        if self.mode not in CONTROLLERS:
            raise ValueError(f"unknown controller {self.mode!r}; choose from {CONTROLLERS}")
        dev = self.home.device
        self.ws_low = torch.tensor(self.workspace_low, device=dev)
        self.ws_high = torch.tensor(self.workspace_high, device=dev)

    @property
    def action_dim(self) -> int:
        return 4 if self.mode == "ee_delta" else 8

    def joint_targets(
        self,
        action: torch.Tensor,
        q: torch.Tensor,
        tcp_pos: torch.Tensor,
        tcp_rot: torch.Tensor,
        jac: torch.Tensor,
    ) -> torch.Tensor:
        """Position targets ``[N, 9]`` (7 arm joints, 2 fingers) for actions in [-1, 1].

        ``q`` [N, 7] joint angles, ``tcp_pos`` [N, 3], ``tcp_rot`` [N, 3, 3] tool rotation,
        ``jac`` [N, 6, 7] stacked translational/rotational tool Jacobian over the arm joints
        (``tcp_pos``, ``tcp_rot``, ``jac`` are unused by ``joint_delta``).
        """
        if self.mode == "ee_delta":
            q_target = q + self.ik_step(action[:, :3] * self.max_ee_delta, q, tcp_pos, tcp_rot, jac)
        else:
            q_target = q + action[:, :7] * self.max_joint_delta
        q_target = torch.maximum(torch.minimum(q_target, self.q_high), self.q_low)
        finger = self.finger_open * (1.0 - action[:, -1:]) / 2.0
        return torch.cat([q_target, finger.expand(-1, 2)], dim=1)

    def ik_step(
        self,
        ee_delta: torch.Tensor,
        q: torch.Tensor,
        tcp_pos: torch.Tensor,
        tcp_rot: torch.Tensor,
        jac: torch.Tensor,
    ) -> torch.Tensor:
        """Damped least-squares joint step ``[N, 7]`` toward ``tcp_pos + ee_delta``, tool down.

        The position target is clamped to the workspace box; a null-space term pulls the
        posture toward home so the redundant joint does not drift over an episode.
        """
        target = torch.minimum(torch.maximum(tcp_pos + ee_delta, self.ws_low), self.ws_high)
        pos_err = target - tcp_pos
        goal_rot = self.tcp_rot_target.expand_as(tcp_rot)
        rot_err = 0.5 * torch.cross(tcp_rot, goal_rot, dim=1).sum(dim=2)
        err = torch.cat([pos_err, rot_err], dim=1)
        jjt = jac @ jac.transpose(1, 2)
        eye6 = torch.eye(6, device=jac.device)
        jac_pinv = jac.transpose(1, 2) @ torch.linalg.inv(jjt + self.damping**2 * eye6)
        dq = (jac_pinv @ err.unsqueeze(2)).squeeze(2)
        null = torch.eye(7, device=jac.device) - jac_pinv @ jac
        pull = (self.null_gain * (self.home - q)).unsqueeze(2)
        return dq + (null @ pull).squeeze(2)

    def ee_to_joint_action(
        self,
        ee_action: torch.Tensor,
        q: torch.Tensor,
        tcp_pos: torch.Tensor,
        tcp_rot: torch.Tensor,
        jac: torch.Tensor,
    ) -> torch.Tensor:
        """An ``ee_delta`` action ``[N, 4]`` as a ``joint_delta`` action ``[N, 8]``."""
        dq = self.ik_step(
            ee_action[:, :3].clamp(-1, 1) * self.max_ee_delta, q, tcp_pos, tcp_rot, jac
        )
        joint = dq / self.max_joint_delta
        # Scale the whole step, not each joint, so the motion keeps its Cartesian direction.
        joint = joint / joint.abs().amax(dim=1, keepdim=True).clamp_min(1.0)
        return torch.cat([joint, ee_action[:, -1:]], dim=1)
