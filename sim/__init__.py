"""Simulation: the ``VecEnv`` contract, batched MuJoCo tasks, adapters and scripted experts.

Importing ``sim`` (or ``sim.vec_env``, ``sim.registry``) loads no simulator: the MuJoCo
tasks load on first use of ``sim.make``, ``sim.TASKS`` or a task class.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sim.errors import EnvContractError, EnvSpecError, SimError
from sim.registry import available_envs, make_env, register_env, resolve_env
from sim.vec_env import Obs, VecEnv, check_vec_env

if TYPE_CHECKING:
    from sim.tasks.base import ManipulationEnv

BACKENDS = ("mujoco", "mujoco_warp")
BUILTIN_TASKS = ("reach", "push", "lift", "push_obstacle")
"""Names of the built-in MuJoCo tasks (``sim.make``; both backends)."""
_TASK_CLASSES = {
    "reach": ("sim.tasks.reach", "ReachEnv"),
    "push": ("sim.tasks.cube", "PushEnv"),
    "lift": ("sim.tasks.cube", "LiftEnv"),
    "push_obstacle": ("sim.tasks.push_obstacle", "PushObstacleEnv"),
}


def _tasks() -> dict[str, type[ManipulationEnv]]:
    return {
        name: getattr(importlib.import_module(module), cls)
        for name, (module, cls) in _TASK_CLASSES.items()
    }


def __getattr__(name: str) -> Any:
    if name == "TASKS":
        return _tasks()
    if name == "ManipulationEnv":
        from sim.tasks.base import ManipulationEnv

        return ManipulationEnv
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def make(
    task: str,
    num_envs: int = 1,
    backend: str = "mujoco",
    device: str = "cpu",
    seed: int | None = None,
    **kwargs: Any,
) -> ManipulationEnv:
    """Build a batched built-in task env, e.g. ``sim.make("lift", num_envs=8, seed=0)``.

    Keyword arguments go to the task (``controller``, ``reward_type``, ``horizon``,
    ``terminate_on_success``). Any other env spec goes through :func:`make_env`.
    """
    if task not in _TASK_CLASSES:
        raise SimError(f"unknown task {task!r}; available tasks: {sorted(_TASK_CLASSES)}")
    if backend not in BACKENDS:
        raise SimError(f"unknown backend {backend!r}; available backends: {list(BACKENDS)}")
    module, cls = _TASK_CLASSES[task]
    return getattr(importlib.import_module(module), cls)(
        num_envs=num_envs, backend=backend, device=device, seed=seed, **kwargs
    )


__all__ = [
    "make",
    "make_env",
    "register_env",
    "resolve_env",
    "available_envs",
    "check_vec_env",
    "TASKS",
    "BACKENDS",
    "BUILTIN_TASKS",
    "VecEnv",
    "Obs",
    "SimError",
    "EnvContractError",
    "EnvSpecError",
    "ManipulationEnv",
]
