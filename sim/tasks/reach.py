"""Reach: move the tool centre point to a random target in free space."""

from __future__ import annotations

from typing import ClassVar

import torch

from sim.tasks.base import ManipulationEnv, uniform
from sim.vec_env import Obs


class ReachEnv(ManipulationEnv):
    """Success when the tool centre point is within ``success_dist`` of the goal."""

    name = "reach"
    default_horizon = 50
    goal_low: ClassVar[tuple[float, float, float]] = (0.35, -0.2, 0.05)
    goal_high: ClassVar[tuple[float, float, float]] = (0.65, 0.2, 0.35)
    success_dist: ClassVar[float] = 0.03

    @classmethod
    def objects_xml(cls) -> str:
        return ""

    def _reset_task(self, qpos: torch.Tensor, generator: torch.Generator) -> None:
        if not hasattr(self, "_goal"):
            self._goal = torch.zeros(self.num_envs, 3, device=self.device)
        goal = uniform(len(qpos), self.goal_low, self.goal_high, generator)
        self._goal[self._reset_ids] = goal.to(self.device)

    def _task_obs(self) -> Obs:
        return {"goal": self._goal.clone()}

    def _evaluate(self) -> tuple[torch.Tensor, torch.Tensor]:
        dist = torch.linalg.norm(self.eef_pos - self._goal, dim=1)
        return 1.0 - torch.tanh(10.0 * dist), dist < self.success_dist
