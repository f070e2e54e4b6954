"""``push_obstacle``: push the cube past a fixed block to a goal behind it (two equal routes).

The block sits on the straight line from cube to goal, so a demonstrator must go around it on
the left or on the right. Both routes are equally good, which makes the demonstrations
bimodal: a unimodal (Gaussian) policy that averages them pushes the cube into the block.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from sim.tasks.base import uniform
from sim.tasks.cube import CUBE_HALF, PushEnv

OBSTACLE_POS = (0.53, 0.0)
"""Centre (x, y) of the block on the table."""
OBSTACLE_HALF = (0.02, 0.03, 0.02)
"""Half extents of the block (x, y, z): 4 cm deep, 6 cm wide, 4 cm tall."""


class PushObstacleEnv(PushEnv):
    """Push the cube from in front of a fixed block to a goal region behind it."""

    name = "push_obstacle"
    default_horizon = 150
    cube_low: ClassVar[tuple[float, float]] = (0.40, -0.015)
    cube_high: ClassVar[tuple[float, float]] = (0.43, 0.015)
    max_yaw: ClassVar[float] = 0.1
    goal_low: ClassVar[tuple[float, float]] = (0.64, -0.015)
    goal_high: ClassVar[tuple[float, float]] = (0.67, 0.015)

    @classmethod
    def objects_xml(cls) -> str:
        (x, y), (hx, hy, hz) = OBSTACLE_POS, OBSTACLE_HALF
        block = f"""<body name="obstacle" pos="{x} {y} {hz}">
      <geom name="obstacle_geom" type="box" size="{hx} {hy} {hz}" class="object"
            rgba="0.3 0.3 0.35 1"/>
    </body>"""
        return f"{super().objects_xml()}\n    {block}"

    def _reset_goal(self, cube_xy: torch.Tensor, generator: torch.Generator) -> None:
        if not hasattr(self, "_goal"):
            self._goal = torch.zeros(self.num_envs, 3, device=self.device)
        goal = uniform(len(cube_xy), self.goal_low, self.goal_high, generator)
        height = torch.full((len(cube_xy), 1), CUBE_HALF)
        self._goal[self._reset_ids] = torch.cat([goal, height], dim=1).to(self.device)
