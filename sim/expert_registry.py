"""Scripted experts by env name: built-in ones and those a user registers.

An expert is built as ``factory(env, noise_std=..., seed=...)`` and has ``act(obs) -> actions``
in [-1, 1]; ``set_episode_params(env_ids, noise_std, target_offset)`` is optional (mixed-quality
demos need it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from sim.errors import SimError
from sim.vec_env import env_name

ExpertFactory = Callable[..., Any]

# name -> (module, class): imported on use, so listing experts loads no simulator.
_BUILTIN: dict[str, tuple[str, str]] = {
    "reach": ("sim.experts", "ReachExpert"),
    "push": ("sim.experts", "PushExpert"),
    "lift": ("sim.experts", "LiftExpert"),
    "push_obstacle": ("sim.experts_multimodal", "PushObstacleExpert"),
    "point": ("sim.toy", "PointReachExpert"),
}
_REGISTERED: dict[str, ExpertFactory] = {}


def register_expert(name: str, factory: ExpertFactory, *, overwrite: bool = False) -> None:
    """Make ``make_expert`` build ``factory(env, noise_std=, seed=)`` for envs named ``name``."""
    if (name in _REGISTERED or name in _BUILTIN) and not overwrite:
        raise SimError(f"expert {name!r} is already registered; pass overwrite=True")
    _REGISTERED[name] = factory


def available_experts() -> list[str]:
    """Names with a scripted expert."""
    return sorted({*_BUILTIN, *_REGISTERED})


def expert_factory(name: str) -> ExpertFactory:
    """The factory registered for ``name``, or a one-line SimError listing the others."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in _BUILTIN:
        module, cls = _BUILTIN[name]
        return getattr(importlib.import_module(module), cls)
    raise SimError(
        f"no scripted expert for {name!r}; have {available_experts()} "
        "(register one with sim.expert_registry.register_expert, or record with a policy)"
    )


def make_expert(env: Any, noise_std: float = 0.0, seed: int = 0, name: str | None = None) -> Any:
    """The scripted expert for ``env`` (looked up by ``name``, default the env's name)."""
    return expert_factory(name or env_name(env))(env, noise_std=noise_std, seed=seed)


__all__ = ["available_experts", "expert_factory", "make_expert", "register_expert"]
