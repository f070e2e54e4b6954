"""``push_obstacle``: push the cube around a U-shaped block to a goal behind it (two routes).

Every episode starts from the same state: arm at home, cube on the centre line, goal behind
the block on the same line. The block is a pocket open toward the cube: a straight push slides
the cube into it, where it is trapped (a pusher cannot pull it out). A demonstrator goes around
on the left or on the right; the routes mirror each other, so the demonstrations are bimodal
and their average, a straight push, fails. That average is what a unimodal (Gaussian) policy
learns. Any start-state variation breaks this: with 2 cm of cube and goal spread, or the usual
joint noise, BC learned a side per start state and then followed that route (0.90-0.92).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from sim.tasks.base import uniform
from sim.tasks.cube import CUBE_HALF, PushEnv

POCKET_BACK_X = 0.535
"""x of the centre of the pocket's back wall."""
POCKET_FRONT_X = 0.48
"""x where the pocket's side walls begin (its mouth, facing the cube)."""
POCKET_HALF_WIDTH = 0.065
"""Half width of the whole block in y; the walls are 2 cm thick, the inside 9 cm wide."""
WALL = 0.01
"""Half thickness of the walls."""
WALL_HEIGHT = 0.02
"""Half height of the walls (4 cm tall, as tall as the cube)."""


def pocket_boxes() -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """(centre xy, half extents xy) of the back wall and the two side walls."""
    back = ((POCKET_BACK_X, 0.0), (WALL, POCKET_HALF_WIDTH))
    side_half_x = (POCKET_BACK_X - WALL - POCKET_FRONT_X) / 2
    side_x = POCKET_FRONT_X + side_half_x
    side_y = POCKET_HALF_WIDTH - WALL
    sides = [((side_x, s * side_y), (side_half_x, WALL)) for s in (1.0, -1.0)]
    return [back, *sides]


class PushObstacleEnv(PushEnv):
    """Push the cube from in front of a pocket-shaped block to a goal region behind it."""

    name = "push_obstacle"
    default_horizon = 150
    # One start state: nothing in the first observation can be memorized as a side.
    init_joint_noise: ClassVar[float] = 0.0
    cube_low: ClassVar[tuple[float, float]] = (0.40, 0.0)
    cube_high: ClassVar[tuple[float, float]] = (0.40, 0.0)
    max_yaw: ClassVar[float] = 0.0
    goal_low: ClassVar[tuple[float, float]] = (0.66, 0.0)
    goal_high: ClassVar[tuple[float, float]] = (0.66, 0.0)

    @classmethod
    def objects_xml(cls) -> str:
        geoms = "\n".join(
            f'      <geom name="obstacle_geom{i}" type="box" pos="{x} {y} {WALL_HEIGHT}" '
            f'size="{hx} {hy} {WALL_HEIGHT}" class="object" rgba="0.3 0.3 0.35 1"/>'
            for i, ((x, y), (hx, hy)) in enumerate(pocket_boxes())
        )
        return f'{super().objects_xml()}\n    <body name="obstacle">\n{geoms}\n    </body>'

    def _reset_goal(self, cube_xy: torch.Tensor, generator: torch.Generator) -> None:
        if not hasattr(self, "_goal"):
            self._goal = torch.zeros(self.num_envs, 3, device=self.device)
        goal = uniform(len(cube_xy), self.goal_low, self.goal_high, generator)
        height = torch.full((len(cube_xy), 1), CUBE_HALF)
        self._goal[self._reset_ids] = torch.cat([goal, height], dim=1).to(self.device)
