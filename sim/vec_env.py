"""The batched environment contract every simulator, adapter and robot implements.

This module imports no task and no simulator (torch and gymnasium only), so a loop, a policy
or a user's env can depend on it alone.

The contract (what the loops may use, and nothing else):

Required attributes
    ``num_envs: int`` — envs stepping in lockstep (N).
    ``device: torch.device`` — where every tensor the env returns lives, and where it accepts
    actions.
    ``observation_space: gymnasium.spaces.Dict`` of ``Box`` — per-env spaces (no batch dim);
    observations are ``dict[str, Tensor]`` with ``[N, *space.shape]`` float32 tensors.
    ``action_space: gymnasium.spaces.Box`` with bounds exactly [-1, 1], shape ``(A,)``.
    ``action_dim: int`` — ``A``; :class:`VecEnv` derives it from ``action_space``.

Required methods
    ``reset(seed: int | None = None) -> Obs`` — reset every env; a seed makes the episode
    sequence reproducible.
    ``step(action [N, A] float32) -> (obs, reward, terminated, truncated, info)`` with
    ``reward`` [N] float32, ``terminated`` / ``truncated`` [N] **bool**. Finished envs reset
    automatically inside ``step``: the returned ``obs`` rows of those envs are the first of the
    new episode. ``info`` holds at least:

    - ``"final_obs"``: Obs, the true next observation of *every* env (rows of unfinished envs
      equal the returned obs), so it is always the correct next observation to store;
    - ``"success"``: [N] bool, whether each env's task is solved at this step.

Optional (loops check with ``hasattr`` / :func:`env_name` / :func:`env_horizon`)
    ``name: str`` — for messages and recorded ``env_args`` (default: the class name).
    ``horizon: int`` — steps after which episodes truncate (``None``: unknown).
    ``env_kwargs: dict`` — JSON-able keyword arguments that rebuild the env; recorded in
    datasets' ``env_args``.
    ``get_state() -> Tensor [N, S]`` — flat simulator state per env (robomimic ``states``);
    recording stores it when present.
    ``close() -> None``.
    ``info["episode_return"]`` / ``info["episode_length"]`` are *not* part of the contract:
    loops keep their own per-env sums with :class:`EpisodeStats`.

Call :func:`check_vec_env` once when an env is handed in; it raises
:class:`~sim.errors.EnvContractError` (a ``SimError``, so the CLI exits 2) naming what is
missing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from sim.errors import EnvContractError

Obs = dict[str, torch.Tensor]
StepResult = tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]

REQUIRED_ATTRS = ("num_envs", "device", "observation_space", "action_space", "action_dim")
REQUIRED_METHODS = ("reset", "step")
REQUIRED_INFO = ("final_obs", "success")


class VecEnv(ABC):
    """A batch of ``num_envs`` environments stepping in lockstep (see the module docstring).

    Subclasses set ``num_envs``, ``device``, ``observation_space`` and ``action_space`` and
    implement :meth:`reset` and :meth:`step`.
    """

    num_envs: int
    device: torch.device
    observation_space: gym.spaces.Dict
    """Per-env observation space (no batch dimension), a Dict of Box."""
    action_space: gym.spaces.Box
    """Per-env action space, bounds [-1, 1]."""
    horizon: int | None = None
    """Steps after which an episode is truncated (None: unknown)."""

    @property
    def action_dim(self) -> int:
        """Size of one env's action vector."""
        return int(self.action_space.shape[0])

    @abstractmethod
    def reset(self, seed: int | None = None) -> Obs:
        """Reset every env; with a seed, the episode sequence is reproducible."""

    @abstractmethod
    def step(self, action: torch.Tensor) -> StepResult:
        """Advance one control step: ``(obs, reward, terminated, truncated, info)``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release simulator resources."""


def env_name(env: Any) -> str:
    """The env's ``name`` if it has one, else its class name."""
    name = getattr(env, "name", None)
    return name if isinstance(name, str) and name else type(env).__name__


def env_horizon(env: Any) -> int | None:
    """The env's ``horizon`` if it declares one."""
    horizon = getattr(env, "horizon", None)
    return int(horizon) if horizon is not None else None


def env_kwargs_of(env: Any) -> dict[str, Any]:
    """The env's ``env_kwargs`` (JSON-able rebuild arguments), or ``{}``."""
    kwargs = getattr(env, "env_kwargs", None)
    return dict(kwargs) if isinstance(kwargs, dict) else {}


class EpisodeStats:
    """Per-env running return and length, kept by the loops (envs need not report them).

    ``update(reward, done)`` returns this step's ``(returns, lengths)`` [N] including the
    step, then zeroes the rows of finished envs.
    """

    def __init__(self, num_envs: int, device: torch.device | str) -> None:
        self.returns = torch.zeros(num_envs, device=device)
        self.lengths = torch.zeros(num_envs, dtype=torch.long, device=device)

    def reset(self) -> None:
        """Zero every env (after ``env.reset``)."""
        self.returns.zero_()
        self.lengths.zero_()

    def update(self, reward: torch.Tensor, done: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.returns += reward.to(self.returns)
        self.lengths += 1
        out = self.returns.clone(), self.lengths.clone()
        # Elementwise (masked_fill_), unlike x[done] = 0: no device-to-host sync on CUDA.
        self.returns.masked_fill_(done, 0.0)
        self.lengths.masked_fill_(done, 0)
        return out


def _fail(name: str, msg: str) -> EnvContractError:
    return EnvContractError(f"env {name!r} does not fit the VecEnv contract: {msg}")


def check_vec_env(env: Any, *, step: bool = True) -> None:
    """Validate ``env`` against the contract once; raise a one-line ``EnvContractError``.

    Checks the required attributes and methods, the space types and action bounds, and one
    ``reset()``'s observation keys, shapes and dtypes against ``observation_space``. With
    ``step`` (default), also steps once with zero actions and checks reward / done shapes and
    dtypes and the required ``info`` keys, then resets again.
    """
    name = env_name(env)
    missing = [a for a in REQUIRED_ATTRS if not hasattr(env, a)]
    missing += [f"{m}()" for m in REQUIRED_METHODS if not callable(getattr(env, m, None))]
    if missing:
        raise _fail(name, f"missing {', '.join(missing)}")
    n = env.num_envs
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise _fail(name, f"num_envs must be an int >= 1, got {n!r}")
    if not isinstance(env.device, torch.device):
        raise _fail(name, f"device must be a torch.device, got {type(env.device).__name__}")
    space = env.observation_space
    if not isinstance(space, gym.spaces.Dict):
        raise _fail(
            name,
            f"observation_space must be a gymnasium.spaces.Dict, got {type(space).__name__} "
            "(wrap a Box as Dict({'state': box}))",
        )
    not_box = [k for k, s in space.spaces.items() if not isinstance(s, gym.spaces.Box)]
    if not_box:
        raise _fail(name, f"observation_space entries {not_box} are not Box spaces")
    act = env.action_space
    if not isinstance(act, gym.spaces.Box) or len(act.shape) != 1:
        raise _fail(name, f"action_space must be a 1-D gymnasium.spaces.Box, got {act!r}")
    if not (np.all(act.low == -1.0) and np.all(act.high == 1.0)):
        raise _fail(name, f"action_space bounds must be [-1, 1], got [{act.low}, {act.high}]")
    if env.action_dim != act.shape[0]:
        raise _fail(name, f"action_dim {env.action_dim} != action_space size {act.shape[0]}")

    obs = env.reset()
    _check_obs(name, obs, space, n, "reset()")
    if not step:
        return
    out = env.step(torch.zeros(n, env.action_dim, device=env.device))
    if not isinstance(out, tuple) or len(out) != 5:
        raise _fail(name, "step() must return (obs, reward, terminated, truncated, info)")
    obs, reward, terminated, truncated, info = out
    _check_obs(name, obs, space, n, "step()")
    _check_tensor(name, "reward", reward, n, None)
    _check_tensor(name, "terminated", terminated, n, torch.bool)
    _check_tensor(name, "truncated", truncated, n, torch.bool)
    if not isinstance(info, dict):
        raise _fail(name, f"step() info must be a dict, got {type(info).__name__}")
    missing_info = [k for k in REQUIRED_INFO if k not in info]
    if missing_info:
        raise _fail(name, f"step() info has no {', '.join(repr(k) for k in missing_info)}")
    _check_obs(name, info["final_obs"], space, n, "info['final_obs']")
    _check_tensor(name, "info['success']", info["success"], n, torch.bool)
    env.reset()


def _check_obs(name: str, obs: Any, space: gym.spaces.Dict, n: int, where: str) -> None:
    if not isinstance(obs, dict):
        raise _fail(name, f"{where} must return a dict of tensors, got {type(obs).__name__}")
    if set(obs) != set(space.spaces):
        extra = sorted(set(obs) - set(space.spaces))
        lacking = sorted(set(space.spaces) - set(obs))
        raise _fail(
            name,
            f"{where} observation keys differ from observation_space: "
            f"missing {lacking}, not declared {extra}",
        )
    for key, box in space.spaces.items():
        value = obs[key]
        if not isinstance(value, torch.Tensor):
            raise _fail(
                name, f"{where} observation {key!r} is {type(value).__name__}, not a tensor"
            )
        if tuple(value.shape) != (n, *box.shape):
            raise _fail(
                name,
                f"{where} observation {key!r} has shape {tuple(value.shape)}, "
                f"expected {(n, *box.shape)}",
            )
        if value.dtype != torch.float32:
            raise _fail(name, f"{where} observation {key!r} is {value.dtype}, expected float32")


def _check_tensor(name: str, what: str, value: Any, n: int, dtype: torch.dtype | None) -> None:
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != (n,):
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise _fail(name, f"step() {what} must be a tensor of shape ({n},), got {shape}")
    if dtype is not None and value.dtype != dtype:
        raise _fail(name, f"step() {what} must be {dtype}, got {value.dtype}")
    if dtype is None and not value.is_floating_point():
        raise _fail(name, f"step() {what} must be a float tensor, got {value.dtype}")


__all__ = [
    "Obs",
    "StepResult",
    "VecEnv",
    "EpisodeStats",
    "check_vec_env",
    "env_name",
    "env_horizon",
    "env_kwargs_of",
    "REQUIRED_ATTRS",
    "REQUIRED_INFO",
]
