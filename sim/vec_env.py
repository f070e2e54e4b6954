"""The batched environment protocol every simulator backend and the real robot implement."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import gymnasium as gym
import torch

Obs = dict[str, torch.Tensor]


class VecEnv(ABC):
    """A batch of ``num_envs`` environments stepping in lockstep, torch tensors on ``device``.

    Actions are in [-1, 1]. Finished envs reset automatically inside :meth:`step`; the
    observation returned for them is the first of the new episode, and the true last
    observation is in ``info["final_obs"]`` (for every env: rows of unfinished envs equal the
    returned observation, so ``info["final_obs"]`` is always the correct next observation).
    ``info["success"]`` [N] bool says whether each env's task was solved at this step.
    """

    num_envs: int
    device: torch.device
    observation_space: gym.spaces.Dict
    """Per-env observation space (no batch dimension)."""
    action_space: gym.spaces.Box
    """Per-env action space, bounds [-1, 1]."""
    horizon: int
    """Steps after which an episode is truncated."""

    @abstractmethod
    def reset(self, seed: int | None = None) -> Obs:
        """Reset every env; with a seed, the episode sequence is reproducible."""

    @abstractmethod
    def step(
        self, action: torch.Tensor
    ) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Advance one control step: ``(obs, reward, terminated, truncated, info)``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release simulator resources."""
