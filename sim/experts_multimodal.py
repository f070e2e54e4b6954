"""Scripted experts with more than one way to solve a task, for multimodal demonstrations."""

from __future__ import annotations

import torch

from sim.experts import PushExpert
from sim.tasks.base import ManipulationEnv
from sim.tasks.cube import CUBE_HALF
from sim.tasks.push_obstacle import POCKET_BACK_X, POCKET_FRONT_X, POCKET_HALF_WIDTH, WALL
from sim.vec_env import Obs

ROUTE_Y = POCKET_HALF_WIDTH + CUBE_HALF + 0.025
"""Lateral offset of the cube's route past the block (block half-width + cube + clearance)."""
OUT_X = POCKET_FRONT_X - 0.05
"""x of the first waypoint: the cube goes out sideways, keeping the tool clear of the pocket."""
PAST_X = POCKET_BACK_X + WALL + CUBE_HALF + 0.035
"""x of the second waypoint: the cube is clear of the back wall and can turn to the goal."""


class PushObstacleExpert(PushExpert):
    """Push the cube out to a side drawn per episode, forward past the block, then to the goal.

    The side (+1 left, -1 right) is drawn from the expert's seeded generator whenever an
    episode starts (:meth:`set_episode_params`), so demonstrations are reproducible. The first
    leg is steeply sideways, so the tool heads for that side from the first action.
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
        cube = obs["object"][:, :3] + self.target_offset
        out = self.side * cube[:, 1] > ROUTE_Y - 0.02
        # Leg 1 until the cube is out to the side, leg 2 until it is past the back wall. Leg 1
        # aims beyond the route so the cube is still moving when it crosses the threshold
        # (the push eases off near its target and could stall short of it).
        waypoint = obs["goal"].clone()
        waypoint[:, 0] = torch.where(out, PAST_X, OUT_X)
        waypoint[:, 1] = self.side * torch.where(out, ROUTE_Y, ROUTE_Y + 0.04)
        past = cube[:, 0] > PAST_X - 0.02
        goal = torch.where(past[:, None], obs["goal"], waypoint)
        return super()._target({**obs, "goal": goal})
