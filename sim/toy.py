"""A pure-torch ``VecEnv``: a 2-D point mass reaching a goal. No simulator, runs in microseconds.

It exists to show (and test) that any env fitting the contract in :mod:`sim.vec_env` drives
every loop. Build it with ``make_env("point", ...)`` or ``make_env("sim.toy:PointReachEnv")``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from sim.errors import SimError
from sim.vec_env import Obs, StepResult, VecEnv


class PointReachEnv(VecEnv):
    """Point at ``pos`` in [-1, 1]^2 moves by ``action * max_step`` toward a random ``goal``.

    Observations: ``pos`` [2] and ``goal`` [2]. Success when within ``goal_radius`` of the
    goal (the episode terminates); truncation at ``horizon``. Reward: ``sparse`` (1 on
    success) or ``dense`` (minus the distance).
    """

    name = "point"
    max_step = 0.1
    goal_radius = 0.05

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        horizon: int = 40,
        reward_type: str = "sparse",
    ) -> None:
        if num_envs < 1:
            raise SimError(f"num_envs must be >= 1, got {num_envs}")
        if reward_type not in ("sparse", "dense"):
            raise SimError(f"unknown reward_type {reward_type!r}; choose from sparse, dense")
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.horizon = horizon
        self.reward_type = reward_type
        self.env_kwargs = {"horizon": horizon, "reward_type": reward_type}
        box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = gym.spaces.Dict({"pos": box, "goal": box})
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._gen = torch.Generator().manual_seed(0 if seed is None else seed)
        self._pos = torch.zeros(num_envs, 2, device=self.device)
        self._goal = torch.zeros(num_envs, 2, device=self.device)
        self._t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.reset(seed)

    def _obs(self) -> Obs:
        return {"pos": self._pos.clone(), "goal": self._goal.clone()}

    def _reset_envs(self, ids: torch.Tensor) -> None:
        k = len(ids)
        self._pos[ids] = (torch.rand(k, 2, generator=self._gen) * 1.6 - 0.8).to(self.device)
        self._goal[ids] = (torch.rand(k, 2, generator=self._gen) * 1.6 - 0.8).to(self.device)
        self._t[ids] = 0

    def reset(self, seed: int | None = None) -> Obs:
        if seed is not None:
            self._gen.manual_seed(seed)
        self._reset_envs(torch.arange(self.num_envs, device=self.device))
        return self._obs()

    def get_state(self) -> torch.Tensor:
        """``[pos, goal]`` per env, [N, 4]."""
        return torch.cat([self._pos, self._goal], dim=1)

    def step(self, action: torch.Tensor) -> StepResult:
        action = torch.as_tensor(action, dtype=torch.float32, device=self.device)
        if action.shape != (self.num_envs, 2):
            raise SimError(f"point: action shape {tuple(action.shape)} != ({self.num_envs}, 2)")
        self._pos = (self._pos + action.clamp(-1, 1) * self.max_step).clamp(-1, 1)
        self._t += 1
        dist = torch.linalg.norm(self._pos - self._goal, dim=1)
        success = dist < self.goal_radius
        reward = success.float() if self.reward_type == "sparse" else -dist
        terminated = success.clone()
        truncated = (self._t >= self.horizon) & ~terminated
        final_obs = self._obs()
        done = terminated | truncated
        if done.any():
            self._reset_envs(done.nonzero().squeeze(1))
        info = {"final_obs": final_obs, "success": success}
        return self._obs(), reward, terminated, truncated, info


class PointReachExpert:
    """Scripted controller for :class:`PointReachEnv`: straight at the goal, optional noise."""

    def __init__(self, env: VecEnv, noise_std: float = 0.0, seed: int = 0) -> None:
        self.env = env
        self.noise_std = noise_std
        self.generator = torch.Generator().manual_seed(seed)

    def act(self, obs: Obs) -> torch.Tensor:
        action = ((obs["goal"] - obs["pos"]) / PointReachEnv.max_step).clamp(-1, 1)
        if self.noise_std > 0:
            noise = torch.randn(action.shape, generator=self.generator).to(action.device)
            action = (action + self.noise_std * noise).clamp(-1, 1)
        return action


def make_point_env(
    num_envs: int = 1, seed: int | None = None, device: str = "cpu", **kwargs: object
) -> PointReachEnv:
    """Factory in the ``module:factory`` shape: ``sim.toy:make_point_env``."""
    return PointReachEnv(num_envs=num_envs, device=device, seed=seed, **kwargs)  # type: ignore[arg-type]
