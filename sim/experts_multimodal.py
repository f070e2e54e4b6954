"""Scripted experts with more than one way to solve a task, for multimodal demonstrations."""

from __future__ import annotations

import torch

from sim.experts import PushExpert
from sim.tasks.base import ManipulationEnv
from sim.tasks.push_obstacle import OBSTACLE_HALF, OBSTACLE_POS
from sim.vec_env import Obs

WAYPOINT_Y = 0.11
"""Lateral offset of the cube's route past the block (block half-width + cube + clearance)."""


class PushObstacleExpert(PushExpert):
    """Push the cube beside the block on a side drawn per episode, then on to the goal.

    The side (+1 left, -1 right) is drawn from the expert's seeded generator whenever an
    episode starts (:meth:`set_episode_params`), so demonstrations are reproducible.
    """

    def __init__(self, env: ManipulationEnv, noise_std: float = 0.0, seed: int = 0) -> None:
        super().__init__(env, noise_std=noise_std, seed=seed)
        self.side = self._draw_sides(env.num_envs)

    def _draw_sides(self, k: int) -> torch.Tensor:
        coin = torch.rand(k, generator=self.generator, device=self.env.device) < 0.5
        return torch.where(coin, 1.0, -1.0)

    def set_episode_params(
        self, env_ids: torch.Tensor, noise_std: torch.Tensor, target_offset: torch.Tensor
    ) -> None:
        super().set_episode_params(env_ids, noise_std, target_offset)
        self.side[env_ids] = self._draw_sides(len(env_ids))

    def _target(self, obs: Obs) -> tuple[torch.Tensor, torch.Tensor]:
        cube_x = obs["object"][:, 0] + self.target_offset[:, 0]
        waypoint = torch.zeros_like(obs["goal"])
        waypoint[:, 0] = OBSTACLE_POS[0]
        waypoint[:, 1] = OBSTACLE_POS[1] + self.side * WAYPOINT_Y
        waypoint[:, 2] = obs["goal"][:, 2]
        # Head for the waypoint until the cube is near it or level with the block's back face.
        near = torch.linalg.norm(obs["object"][:, :2] - waypoint[:, :2], dim=1) < 0.025
        before = (cube_x < OBSTACLE_POS[0] - OBSTACLE_HALF[0] - 0.005) & ~near
        goal = torch.where(before[:, None], waypoint, obs["goal"])
        return super()._target({**obs, "goal": goal})
