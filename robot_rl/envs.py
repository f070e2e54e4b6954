"""Building envs from user input: ``--env-kwargs`` parsing and checked ``sim.make_env``."""

from __future__ import annotations

import json
from typing import Any

import sim
from robot_rl.errors import ConfigError
from sim.errors import SimError
from sim.vec_env import VecEnv


def parse_env_kwargs(text: str) -> dict[str, Any]:
    """A JSON object given as ``--env-kwargs``, or a ConfigError."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--env-kwargs is not JSON: {e}") from e
    if not isinstance(value, dict):
        raise ConfigError(f"--env-kwargs must be a JSON object, got {text!r}")
    return value


def make_env_checked(spec: str, num_envs: int, seed: int | None = None, **kwargs: Any) -> VecEnv:
    """``sim.make_env`` with the options every env shares checked first, and an option of the
    wrong type reported as one line rather than a traceback from inside the env."""
    if not isinstance(kwargs, dict):
        raise ConfigError(f"env {spec!r}: env_kwargs must be a JSON object")
    horizon = kwargs.get("horizon")
    if horizon is not None and (
        isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1
    ):
        raise ConfigError(f"env {spec!r}: horizon must be a positive integer, got {horizon!r}")
    if num_envs < 1:
        raise ConfigError(f"num_envs must be >= 1, got {num_envs}")
    try:
        return sim.make_env(spec, num_envs=num_envs, seed=seed, **kwargs)
    except SimError:
        raise  # already one line naming the problem
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise ConfigError(f"env {spec!r} rejects env_kwargs {json.dumps(kwargs)}: {e}") from e


__all__ = ["make_env_checked", "parse_env_kwargs"]


def gpu_sim_kwargs(spec: str, device: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Env options that simulate on ``device``: a built-in task defaults to the mujoco_warp
    backend there (explicit options win); any other env spec keeps its own options."""
    if spec in sim.BUILTIN_TASKS:
        return {"backend": "mujoco_warp", "device": device, **kwargs}
    return kwargs
