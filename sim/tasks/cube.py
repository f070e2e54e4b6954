"""Tasks with one cube on the table: ``push`` (to a goal region) and ``lift`` (10 cm up)."""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from sim.tasks.base import ManipulationEnv, uniform, yaw_quat
from sim.vec_env import Obs

CUBE_HALF = 0.02


class CubeEnv(ManipulationEnv):
    """A 4 cm cube with a free joint; ``object`` = [pos(3), quat(4), pos - eef(3)]."""

    cube_low: ClassVar[tuple[float, float]] = (0.45, -0.1)
    cube_high: ClassVar[tuple[float, float]] = (0.55, 0.1)
    max_yaw: ClassVar[float] = 0.25

    @classmethod
    def objects_xml(cls) -> str:
        h = CUBE_HALF
        return f"""<body name="cube" pos="0.5 0 {h}">
      <freejoint name="cube_joint"/>
      <geom name="cube_geom" type="box" size="{h} {h} {h}" density="500" class="object"
            rgba="0.85 0.2 0.2 1"/>
    </body>"""

    def _reset_task(self, qpos: torch.Tensor, generator: torch.Generator) -> None:
        k = len(qpos)
        adr = self.object_qadr("cube_joint")
        self._cube_adr = adr
        xy = uniform(k, self.cube_low, self.cube_high, generator)
        yaw = (torch.rand(k, generator=generator) * 2 - 1) * self.max_yaw
        qpos[:, adr : adr + 2] = xy
        qpos[:, adr + 2] = CUBE_HALF
        qpos[:, adr + 3 : adr + 7] = yaw_quat(yaw)
        self._reset_goal(xy, generator)

    def _reset_goal(self, cube_xy: torch.Tensor, generator: torch.Generator) -> None:
        """Sample task goals for the resetting envs (none by default)."""

    @property
    def cube_pos(self) -> torch.Tensor:
        """Cube centre, [N, 3]."""
        return self.backend.qpos[:, self._cube_adr : self._cube_adr + 3]

    def _task_obs(self) -> Obs:
        pose = self.backend.qpos[:, self._cube_adr : self._cube_adr + 7]
        return {"object": torch.cat([pose, self.cube_pos - self.eef_pos], dim=1)}


class PushEnv(CubeEnv):
    """Push the cube into a 5 cm goal region 10-16 cm away, beside or beyond it."""

    name = "push"
    default_horizon = 100
    goal_low: ClassVar[tuple[float, float]] = (0.35, -0.25)
    goal_high: ClassVar[tuple[float, float]] = (0.72, 0.25)
    success_dist: ClassVar[float] = 0.05

    def _reset_goal(self, cube_xy: torch.Tensor, generator: torch.Generator) -> None:
        if not hasattr(self, "_goal"):
            self._goal = torch.zeros(self.num_envs, 3, device=self.device)
        k = len(cube_xy)
        angle = (torch.rand(k, generator=generator) * 2 - 1) * (math.pi / 2)
        dist = 0.10 + 0.06 * torch.rand(k, generator=generator)
        goal = cube_xy + dist[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
        goal = goal.clamp(torch.tensor(self.goal_low), torch.tensor(self.goal_high))
        self._goal[self._reset_ids] = torch.cat([goal, torch.full((k, 1), CUBE_HALF)], dim=1).to(
            self.device
        )

    def _task_obs(self) -> Obs:
        obs = super()._task_obs()
        obs["goal"] = self._goal.clone()
        return obs

    def _evaluate(self) -> tuple[torch.Tensor, torch.Tensor]:
        to_goal = torch.linalg.norm(self.cube_pos[:, :2] - self._goal[:, :2], dim=1)
        to_cube = torch.linalg.norm(self.cube_pos - self.eef_pos, dim=1)
        dense = 0.3 * (1 - torch.tanh(10 * to_cube)) + 0.7 * (1 - torch.tanh(10 * to_goal))
        return dense, to_goal < self.success_dist


class LiftEnv(CubeEnv):
    """Grasp the cube and lift it at least ``lift_height`` above its resting height."""

    name = "lift"
    default_horizon = 100
    lift_height: ClassVar[float] = 0.10
    max_yaw: ClassVar[float] = 0.1

    def _evaluate(self) -> tuple[torch.Tensor, torch.Tensor]:
        height = self.cube_pos[:, 2] - CUBE_HALF
        to_cube = torch.linalg.norm(self.cube_pos - self.eef_pos, dim=1)
        dense = 0.5 * (1 - torch.tanh(10 * to_cube)) + 0.5 * (height / self.lift_height).clamp(0, 1)
        return dense, height >= self.lift_height
