"""Simulation: batched ``VecEnv`` tasks over MuJoCo backends, and scripted experts."""

from __future__ import annotations

from typing import Any

from sim.errors import SimError
from sim.tasks.base import ManipulationEnv
from sim.tasks.cube import LiftEnv, PushEnv
from sim.tasks.push_obstacle import PushObstacleEnv
from sim.tasks.reach import ReachEnv
from sim.vec_env import Obs, VecEnv

TASKS: dict[str, type[ManipulationEnv]] = {
    "reach": ReachEnv,
    "push": PushEnv,
    "lift": LiftEnv,
    "push_obstacle": PushObstacleEnv,
}
BACKENDS = ("mujoco",)


def make(
    task: str,
    num_envs: int = 1,
    backend: str = "mujoco",
    device: str = "cpu",
    seed: int | None = None,
    **kwargs: Any,
) -> ManipulationEnv:
    """Build a batched task env, e.g. ``sim.make("lift", num_envs=8, seed=0)``.

    Keyword arguments go to the task (``controller``, ``reward_type``, ``horizon``,
    ``terminate_on_success``).
    """
    if task not in TASKS:
        raise SimError(f"unknown task {task!r}; available tasks: {sorted(TASKS)}")
    if backend not in BACKENDS:
        raise SimError(f"unknown backend {backend!r}; available backends: {list(BACKENDS)}")
    return TASKS[task](num_envs=num_envs, backend=backend, device=device, seed=seed, **kwargs)


__all__ = ["make", "TASKS", "BACKENDS", "VecEnv", "Obs", "SimError", "ManipulationEnv"]
