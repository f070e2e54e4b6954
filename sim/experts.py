"""Scripted experts, one per task, batched over envs and stateless (they read only obs).

Each expert computes an end-effector target from the observation and returns an ``ee_delta``
action, converted to the env's controller. Per-env behaviour is set per episode with
:meth:`ScriptedExpert.set_episode_params`: ``noise_std`` adds Gaussian action noise, and
``target_offset`` shifts where the expert believes the object is (a plausible but failing
demonstrator, for mixed-quality offline-RL data).
"""

from __future__ import annotations

import torch

from sim.tasks.base import ManipulationEnv
from sim.tasks.cube import CUBE_HALF
from sim.vec_env import Obs

HOVER_Z = 0.08
"""Tool height for moving over the cube without touching it."""
PUSH_Z = 0.025
"""Tool height while pushing (finger tips 1.5 cm above the table)."""


class ScriptedExpert:
    """Base: turns an EE target and gripper command into an env action with noise."""

    def __init__(self, env: ManipulationEnv, noise_std: float = 0.0, seed: int = 0) -> None:
        self.env = env
        n, dev = env.num_envs, env.device
        self.noise_std = torch.full((n,), float(noise_std), device=dev)
        self.target_offset = torch.zeros(n, 3, device=dev)
        self.generator = torch.Generator(device=dev).manual_seed(seed)

    def set_episode_params(
        self, env_ids: torch.Tensor, noise_std: torch.Tensor, target_offset: torch.Tensor
    ) -> None:
        """Set per-env noise and object-position bias for the episodes starting in ``env_ids``."""
        self.noise_std[env_ids] = noise_std
        self.target_offset[env_ids] = target_offset

    def _target(self, obs: Obs) -> tuple[torch.Tensor, torch.Tensor]:
        """EE target [N, 3] and gripper command [N] in [-1, 1]."""
        raise NotImplementedError

    def act(self, obs: Obs) -> torch.Tensor:
        """Action in the env's action space for a batch of observations."""
        target, grip = self._target(obs)
        delta = (target - obs["robot0_eef_pos"]) / self.env.max_ee_delta
        ee_action = torch.cat([delta.clamp(-1, 1), grip[:, None]], dim=1)
        noise = torch.randn(ee_action.shape, generator=self.generator, device=ee_action.device)
        ee_action = (ee_action + noise * self.noise_std[:, None]).clamp(-1, 1)
        return self.env.ee_delta_to_action(ee_action)


class ReachExpert(ScriptedExpert):
    """Straight line to the goal."""

    def _target(self, obs: Obs) -> tuple[torch.Tensor, torch.Tensor]:
        goal = obs["goal"] + self.target_offset
        return goal, torch.full_like(goal[:, 0], -1.0)


class PushExpert(ScriptedExpert):
    """Go behind the cube (opposite the goal) at hover height, descend, push along the line.

    Whenever the tool drifts off the push line it rises and re-approaches, so a rotated or
    slipping cube is recovered without any episode memory.
    """

    def _target(self, obs: Obs) -> tuple[torch.Tensor, torch.Tensor]:
        eef = obs["robot0_eef_pos"]
        cube = obs["object"][:, :3] + self.target_offset
        goal_xy = obs["goal"][:, :2]
        to_goal = goal_xy - cube[:, :2]
        direction = to_goal / torch.linalg.norm(to_goal, dim=1, keepdim=True).clamp_min(1e-6)
        rel = eef[:, :2] - cube[:, :2]
        along = (rel * direction).sum(1)
        lateral = torch.linalg.norm(rel - along[:, None] * direction, dim=1)
        behind = cube[:, :2] - direction * (CUBE_HALF + 0.03)
        low = eef[:, 2] < PUSH_Z + 0.015
        pushing = (along < -CUBE_HALF) & (lateral < 0.015) & low
        at_behind = torch.linalg.norm(eef[:, :2] - behind, dim=1) < 0.015
        near_cube = torch.linalg.norm(rel, dim=1) < 0.07
        rise = ~pushing & ~at_behind & near_cube & (eef[:, 2] < HOVER_Z - 0.02)

        # Push through the cube, easing off as it nears the goal so it stops there.
        push_xy = cube[:, :2] + direction * torch.linalg.norm(to_goal, dim=1, keepdim=True).clamp(
            max=0.04
        )
        xy = torch.where(pushing[:, None], push_xy, behind)
        xy = torch.where(rise[:, None], eef[:, :2], xy)
        z = torch.where(pushing | at_behind, PUSH_Z, HOVER_Z)
        target = torch.cat([xy, z[:, None]], dim=1)
        return target, torch.ones_like(z)


class LiftExpert(ScriptedExpert):
    """Hover above the cube, descend open, close, then lift once the fingers hold it."""

    lift_z = 0.16

    def _target(self, obs: Obs) -> tuple[torch.Tensor, torch.Tensor]:
        eef = obs["robot0_eef_pos"]
        cube = obs["object"][:, :3] + self.target_offset
        width = obs["robot0_gripper_qpos"].sum(1)
        xy_err = torch.linalg.norm(eef[:, :2] - cube[:, :2], dim=1)
        dist = torch.linalg.norm(eef - cube, dim=1)
        holding = (width < 2 * CUBE_HALF + 0.006) & (width > 2 * CUBE_HALF - 0.012) & (dist < 0.03)
        closing = ~holding & (dist < 0.012) | (width < 0.07) & (dist < 0.025) & ~holding
        aligned = xy_err < 0.01
        low = eef[:, 2] < cube[:, 2] + 0.05

        hover = torch.cat([cube[:, :2], (cube[:, 2:] + HOVER_Z - CUBE_HALF)], dim=1)
        target = torch.where(aligned[:, None], cube, hover)
        # Off-centre and low: rise straight up before moving sideways.
        rise = ~aligned & low & (xy_err < 0.05)
        target = torch.where(rise[:, None], torch.cat([eef[:, :2], hover[:, 2:]], 1), target)
        target = torch.where(closing[:, None], eef, target)
        lifted = torch.cat([cube[:, :2], torch.full_like(cube[:, 2:], self.lift_z)], dim=1)
        target = torch.where(holding[:, None], lifted, target)
        grip = torch.where(holding | closing, 1.0, -1.0)
        return target, grip


def make_expert(env: ManipulationEnv, noise_std: float = 0.0, seed: int = 0) -> ScriptedExpert:
    """The scripted expert registered for ``env``'s name (see :mod:`sim.expert_registry`)."""
    from sim.expert_registry import make_expert as _make

    return _make(env, noise_std=noise_std, seed=seed)
