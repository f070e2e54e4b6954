"""check_vec_env names each missing or wrong piece; the toy env and built-ins pass it."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from sim.errors import EnvContractError, SimError
from sim.toy import PointReachEnv
from sim.vec_env import EpisodeStats, check_vec_env


class NoStep:
    name = "nostep"
    num_envs = 2
    device = torch.device("cpu")
    observation_space = gym.spaces.Dict({"x": gym.spaces.Box(-1, 1, (2,), np.float32)})
    action_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_dim = 2

    def reset(self, seed=None):
        return {"x": torch.zeros(2, 2)}


class FloatDones(PointReachEnv):
    def step(self, action):
        obs, rew, term, trunc, info = super().step(action)
        return obs, rew, term.float(), trunc, info


class NoFinalObs(PointReachEnv):
    def step(self, action):
        obs, rew, term, trunc, info = super().step(action)
        return obs, rew, term, trunc, {"success": info["success"]}


class BoxObs(PointReachEnv):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.observation_space = gym.spaces.Box(-1, 1, (4,), np.float32)


class WrongBounds(PointReachEnv):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.action_space = gym.spaces.Box(-2, 2, (2,), np.float32)


class WrongShape(PointReachEnv):
    def reset(self, seed=None):
        obs = super().reset(seed)
        return {**obs, "pos": obs["pos"][:, :1]}


class Float64Obs(PointReachEnv):
    def reset(self, seed=None):
        obs = super().reset(seed)
        return {**obs, "goal": obs["goal"].double()}


class ExtraKey(PointReachEnv):
    def reset(self, seed=None):
        return {**super().reset(seed), "vel": torch.zeros(self.num_envs, 2)}


@pytest.mark.parametrize(
    "env, fragment",
    [
        (NoStep(), "missing step()"),
        (FloatDones(2), "terminated must be torch.bool, got torch.float32"),
        (NoFinalObs(2), "info has no 'final_obs'"),
        (BoxObs(2), "observation_space must be a gymnasium.spaces.Dict, got Box"),
        (WrongBounds(2), "action_space bounds must be [-1, 1]"),
        (WrongShape(2), "reset() observation 'pos' has shape (2, 1), expected (2, 2)"),
        (Float64Obs(2), "reset() observation 'goal' is torch.float64, expected float32"),
        (ExtraKey(2), "missing [], not declared ['vel']"),
    ],
)
def test_check_names_what_is_wrong(env: object, fragment: str) -> None:
    with pytest.raises(EnvContractError) as e:
        check_vec_env(env)
    assert fragment in str(e.value)
    assert "\n" not in str(e.value)
    assert isinstance(e.value, SimError)  # the CLI maps SimError to exit 2


def test_missing_attributes_all_named() -> None:
    class Bare:
        def reset(self, seed=None): ...

    with pytest.raises(EnvContractError, match=r"missing num_envs, device, observation_space, "
                       r"action_space, action_dim, step\(\)"):  # fmt: skip
        check_vec_env(Bare())


def test_toy_env_fits_and_autoresets() -> None:
    env = PointReachEnv(3, seed=0, horizon=4)
    check_vec_env(env)
    start = env.reset(seed=0)
    for _ in range(4):
        obs, _, term, trunc, info = env.step(torch.zeros(3, 2))
    # Zero actions never reach the goal: every env truncates at the horizon and resets.
    assert trunc.all() and not term.any()
    assert not torch.equal(info["final_obs"]["goal"], obs["goal"])
    assert torch.equal(info["final_obs"]["pos"], start["pos"])  # never moved
    assert torch.equal(info["final_obs"]["goal"], start["goal"])


def test_episode_stats_sums_and_resets() -> None:
    stats = EpisodeStats(2, "cpu")
    stats.update(torch.tensor([1.0, 2.0]), torch.tensor([False, False]))
    ret, length = stats.update(torch.tensor([0.5, 1.0]), torch.tensor([True, False]))
    assert ret.tolist() == [1.5, 3.0] and length.tolist() == [2, 2]
    ret, length = stats.update(torch.tensor([1.0, 1.0]), torch.tensor([False, False]))
    assert ret.tolist() == [1.0, 4.0] and length.tolist() == [1, 3]


def test_contract_modules_load_no_simulator() -> None:
    code = (
        "import sys, sim, sim.vec_env, sim.registry, sim.toy, sim.expert_registry;"
        "bad = [m for m in ('mujoco', 'sim.tasks') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    # The former import cycle experts <-> experts_multimodal.
    cycle = subprocess.run([sys.executable, "-c", "import sim.experts_multimodal"], check=False)
    assert cycle.returncode == 0
