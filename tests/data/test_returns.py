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


def _returns_by_hand(rewards: list[float], cut: list[bool], gamma: float) -> list[float]:
    """Plain backward recursion, written independently: ``cut[i]`` stops the sum after step i."""
    out, g = [], 0.0
    for r, c in zip(reversed(rewards), reversed(cut), strict=True):
        g = r + (0.0 if c else gamma * g)
        out.append(g)
    return out[::-1]


def test_terminal_inside_an_episode_restarts_the_return() -> None:
    # One 4-step episode with a terminal at step 1 (an env that ends but is logged on): the
    # return of steps 0-1 must not see steps 2-3.
    rewards = [1.0, 2.0, 4.0, 8.0]
    out = discounted_returns(
        np.array(rewards), np.array([0, 1, 0, 0]), np.array([4]), 0.5, sparse=False
    )
    np.testing.assert_allclose(out, [2.0, 2.0, 8.0, 8.0])
    np.testing.assert_allclose(out, _returns_by_hand(rewards, [False, True, False, True], 0.5))


def test_zero_discount_is_allowed_and_gives_the_shaped_reward() -> None:
    out = discounted_returns(
        np.array([0.0, 1.0, 0.0]), np.array([0, 1, 0]), np.array([2, 1]), 0.0, reward_scale=3.0
    )
    # Episode 1 succeeded: shaped rewards [0, 3]; episode 2 failed: r_neg / (1 - 0) = 0.
    np.testing.assert_allclose(out, [0.0, 3.0, 0.0])


def test_returns_are_computed_in_float64() -> None:
    # float32 inputs must not make a float32 recursion (long horizons lose precision).
    out = discounted_returns(
        np.full(3, 0.1, np.float32), np.zeros(3, np.float32), np.array([3]), 0.9, sparse=False
    )
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, _returns_by_hand([0.1] * 3, [False, False, True], 0.9))


def test_mc_returns_defaults_and_passes_every_setting_through() -> None:
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

    ds = OfflineDataset.from_episodes([ep([0, 1]), ep([0, 0])])
    # Defaults: raw rewards (scale 1, bias 0), sparse.
    torch.testing.assert_close(mc_returns(ds, 0.5), torch.tensor([0.5, 1.0, 0.0, 0.0]))
    # Scale 4, bias -1, dense: the failing episode sums to its end instead of r_neg/(1-gamma).
    out = mc_returns(ds, 0.5, reward_scale=4.0, reward_bias=-1.0, sparse=False)
    torch.testing.assert_close(out, torch.tensor([-1.0 + 0.5 * 3.0, 3.0, -1.5, -1.0]))
    assert out.device == ds.device


def test_float32_terminals_do_not_round_the_discount() -> None:
    # Terminals read from a float32 file: the discount 1 - terminal must stay float64, else
    # gamma = 0.99 becomes 0.99000001 and a 300-step return is off by ~3e-6 relative.
    n, gamma = 300, 0.99
    out = discounted_returns(
        np.ones(n), np.zeros(n, np.float32), np.array([n]), gamma, sparse=False
    )
    ref = _returns_by_hand([1.0] * n, [False] * (n - 1) + [True], gamma)
    np.testing.assert_allclose(out, ref, rtol=1e-12)


def test_integral_float_episode_lengths_are_accepted() -> None:
    # Lengths stored as floats (e.g. h5 attributes written by another tool) index like ints.
    rewards, terminals = np.array([0.0, 1.0, 0.0, 2.0, 0.0]), np.zeros(5)
    as_int = discounted_returns(rewards, terminals, np.array([2, 3]), 0.5, sparse=False)
    as_float = discounted_returns(rewards, terminals, np.array([2.0, 3.0]), 0.5, sparse=False)
    np.testing.assert_array_equal(as_float, as_int)
    np.testing.assert_allclose(as_int, [0.5, 1.0, 1.0, 2.0, 0.0])
