"""Monte-Carlo return-to-go of every transition, the lower bound Cal-QL calibrates Q against.

Computed at load time from the dataset's episodes. Rewards are first transformed as
``r' = reward_scale * r + reward_bias`` (the same transform the critic is trained on). With
``sparse=True`` an episode that never earns a positive reward is treated as failing forever:
every step gets ``r_neg / (1 - gamma)`` with ``r_neg = reward_bias`` (the transformed reward of
a 0-reward step), as in Nakamoto et al.'s reference code. Otherwise the discounted sum runs to
the episode's end and stops at a terminal step.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from robot_rl.data.dataset import OfflineDataset
from robot_rl.errors import ConfigError


def discounted_returns(
    rewards: np.ndarray,
    terminals: np.ndarray,
    episode_lengths: np.ndarray,
    gamma: float,
    *,
    reward_scale: float = 1.0,
    reward_bias: float = 0.0,
    sparse: bool = True,
) -> np.ndarray:
    """Return-to-go [M] for concatenated episodes.

    Args:
        rewards: raw rewards [M], episodes back to back.
        terminals: 1 where the episode really ended (success/termination), [M]; the return
            restarts there (it matters only if a terminal lies inside an episode).
        episode_lengths: transitions per episode [N], summing to M.
        gamma: discount in [0, 1).
        reward_scale: multiplies the raw reward.
        reward_bias: added after scaling; the transformed reward of a 0-reward step.
        sparse: give all-failure episodes ``reward_bias / (1 - gamma)`` at every step.
    """
    if not 0.0 <= gamma < 1.0:
        raise ConfigError(f"discount must be in [0, 1), got {gamma}")
    rewards = np.asarray(rewards, dtype=np.float64)
    terminals = np.asarray(terminals, dtype=np.float64)
    lengths = np.asarray(episode_lengths, dtype=np.int64)
    if int(lengths.sum()) != len(rewards) or len(terminals) != len(rewards):
        raise ConfigError(
            f"episode lengths sum to {int(lengths.sum())} but there are {len(rewards)} "
            f"rewards and {len(terminals)} terminals"
        )
    shaped = reward_scale * rewards + reward_bias
    # The return restarts after a terminal step and after each episode's last step.
    cont = gamma * (1.0 - terminals)
    ends = np.cumsum(lengths) - 1
    cont[ends] = 0.0
    out = np.empty_like(shaped)
    g = 0.0
    for i in range(len(shaped) - 1, -1, -1):
        g = shaped[i] + cont[i] * g
        out[i] = g
    if sparse:
        episode_id = np.repeat(np.arange(len(lengths)), lengths)
        best = np.full(len(lengths), -np.inf)
        np.maximum.at(best, episode_id, rewards)
        failed = best[episode_id] <= 0.0
        out[failed] = reward_bias / (1.0 - gamma)
    return out


def mc_returns(
    dataset: OfflineDataset,
    gamma: float,
    *,
    reward_scale: float = 1.0,
    reward_bias: float = 0.0,
    sparse: bool = True,
) -> Tensor:
    """Return-to-go [M] float32 of every transition of ``dataset`` (on the dataset's device)."""
    out = discounted_returns(
        dataset.rewards.cpu().numpy(),
        dataset.terminals.cpu().numpy(),
        dataset.episode_lengths.cpu().numpy(),
        gamma,
        reward_scale=reward_scale,
        reward_bias=reward_bias,
        sparse=sparse,
    )
    return torch.from_numpy(out.astype(np.float32)).to(dataset.device)
