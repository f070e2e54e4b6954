from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_rl.data.dataset import OfflineDataset
from robot_rl.data.returns import discounted_returns, mc_returns
from robot_rl.errors import ConfigError


def test_successful_episode_by_hand() -> None:
    # Success on the third step: r = [0, 0, 1], gamma 0.9, r' = 10 r - 5.
    out = discounted_returns(
        np.array([0.0, 0.0, 1.0]),
        np.array([0, 0, 1]),
        np.array([3]),
        0.9,
        reward_scale=10.0,
        reward_bias=-5.0,
    )
    # G2 = 5; G1 = -5 + 0.9*5 = -0.5; G0 = -5 + 0.9*(-0.5) = -5.45
    np.testing.assert_allclose(out, [-5.45, -0.5, 5.0])


def test_failing_episode_gets_infinite_horizon_value() -> None:
    out = discounted_returns(
        np.zeros(4), np.zeros(4), np.array([4]), 0.99, reward_scale=10.0, reward_bias=-5.0
    )
    np.testing.assert_allclose(out, np.full(4, -500.0))
    # Without the sparse rule the sum stops at the (time-limit) end.
    dense = discounted_returns(
        np.zeros(2), np.zeros(2), np.array([2]), 0.5, reward_bias=-1.0, sparse=False
    )
    np.testing.assert_allclose(dense, [-1.5, -1.0])


def test_episodes_do_not_leak_into_each_other() -> None:
    # Episode A: [0, 1] (success), episode B: [0, 0, 0] (fails, time limit).
    rewards = np.array([0.0, 1.0, 0.0, 0.0, 0.0])
    terminals = np.array([0, 1, 0, 0, 0])
    out = discounted_returns(rewards, terminals, np.array([2, 3]), 0.5)
    np.testing.assert_allclose(out, [0.5, 1.0, 0.0, 0.0, 0.0])
    # Without terminals, the episode boundary alone stops the sum.
    out = discounted_returns(rewards, np.zeros(5), np.array([2, 3]), 0.5, sparse=False)
    np.testing.assert_allclose(out, [0.5, 1.0, 0.0, 0.0, 0.0])


def test_mc_returns_on_dataset() -> None:
    def ep(rewards: list[float]) -> dict:
        t = len(rewards)
        obs = {"x": np.zeros((t, 1), np.float32)}
        return {
            "obs": obs,
            "next_obs": obs,
            "actions": np.zeros((t, 1), np.float32),
            "rewards": np.array(rewards, np.float32),
            "dones": np.array([0] * (t - 1) + [int(rewards[-1] > 0)]),
        }

    ds = OfflineDataset.from_episodes([ep([0, 0, 1]), ep([0, 0])])
    out = mc_returns(ds, 0.9, reward_scale=1.0, reward_bias=-1.0)
    assert out.dtype == torch.float32
    torch.testing.assert_close(
        out, torch.tensor([-1.0 + 0.9 * (-1 + 0.9 * 0), -1.0, 0.0, -10, -10])
    )


def test_invalid_inputs() -> None:
    with pytest.raises(ConfigError, match="discount"):
        discounted_returns(np.zeros(2), np.zeros(2), np.array([2]), 1.0)
    with pytest.raises(ConfigError, match="sum to"):
        discounted_returns(np.zeros(2), np.zeros(2), np.array([3]), 0.9)
