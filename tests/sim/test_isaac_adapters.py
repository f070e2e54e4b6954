"""The Isaac Lab / Isaac Gym adapters' translation, on stand-in envs with their interfaces.

The stand-ins below are not Isaac: they reproduce the parts of the interfaces the adapters use
(Isaac Lab: ``step`` returning ``(obs groups, reward, terminated, time_outs, extras)`` and
resetting finished envs inside ``step`` before computing observations, ``reset(env_ids=)``,
``cfg.episode_length_s``; IsaacGymEnvs ``VecTask``: ``(obs_dict, rew, reset_buf, extras)`` with
``extras["time_outs"]`` and resets deferred to the next step), driven by a point mass whose
every value is known, so the tests check exactly which observation lands where. The real
packages need an NVIDIA driver and do not install here.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from sim.adapters.isaac import IsaacGymVecEnv, IsaacLabVecEnv
from sim.errors import EnvSpecError
from sim.registry import make_env
from sim.vec_env import check_vec_env

GOAL = 0.5


class PointLab:
    """Isaac Lab-like point mass: pos += action * 0.1; terminated within 0.05 of GOAL."""

    def __init__(self, num_envs: int = 3, episode_length_s: float = 0.5, step_dt: float = 0.1):
        self.num_envs = num_envs
        self.device = "cpu"
        self.cfg = SimpleNamespace(episode_length_s=episode_length_s)
        self.step_dt = step_dt
        self.single_action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.pos = torch.zeros(num_envs, 1)
        self.episode_length_buf = torch.zeros(num_envs, dtype=torch.long)
        self.resets = 0
        self.last_action = None

    @property
    def unwrapped(self) -> PointLab:
        return self

    @property
    def max_episode_length(self) -> int:
        return math.ceil(self.cfg.episode_length_s / self.step_dt)

    def _obs(self) -> dict:
        return {
            "policy": torch.cat([self.pos, torch.full_like(self.pos, GOAL)], 1),
            "critic": {"pos": self.pos.clone(), "steps": self.episode_length_buf[:, None].float()},
        }

    def reset(self, seed=None, env_ids=None, options=None):
        ids = torch.arange(self.num_envs) if env_ids is None else env_ids
        self.pos[ids] = 0.0
        self.episode_length_buf[ids] = 0
        self.resets += len(ids)
        return self._obs(), {}

    def step(self, action):
        self.last_action = action.clone()
        self.pos += 0.1 * action
        self.episode_length_buf += 1
        terminated = (self.pos[:, 0] - GOAL).abs() < 0.05
        time_outs = self.episode_length_buf >= self.max_episode_length
        done = terminated | time_outs
        extras = {"is_success": terminated.clone()}
        if done.any():  # Isaac Lab resets inside step, before computing observations
            self.reset(env_ids=done.nonzero().squeeze(1))
        return self._obs(), terminated.float(), terminated, time_outs, extras

    def close(self) -> None:
        pass


class PointGym:
    """IsaacGymEnvs VecTask-like point mass with the deferred-reset convention."""

    def __init__(self, num_envs: int = 3, max_episode_length: int = 5):
        self.num_envs = num_envs
        self.device = "cpu"
        self.rl_device = "cpu"
        self.max_episode_length = max_episode_length
        self.action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
        self.pos = torch.zeros(num_envs, 1)
        self.obs_buf = torch.zeros(num_envs, 2)
        self.reset_buf = torch.ones(num_envs, dtype=torch.long)
        self.progress_buf = torch.zeros(num_envs, dtype=torch.long)
        self.reset_calls: list[list[int]] = []
        self.obs_dict: dict = {}

    def reset_idx(self, env_ids):
        self.reset_calls.append(env_ids.tolist())
        self.pos[env_ids] = 0.0
        self.progress_buf[env_ids] = 0
        self.reset_buf[env_ids] = 0

    def compute_observations(self):
        self.obs_buf = torch.cat([self.pos, self.progress_buf[:, None].float()], 1)

    def reset(self):
        self.obs_dict["obs"] = self.obs_buf.clone()
        return self.obs_dict

    def step(self, actions):
        ids = self.reset_buf.nonzero().flatten()  # pre_physics_step: deferred resets
        if len(ids) > 0:
            self.reset_idx(ids)
        self.pos += 0.1 * actions
        self.progress_buf += 1
        self.compute_observations()
        reached = (self.pos[:, 0] - GOAL).abs() < 0.05
        timeout = self.progress_buf >= self.max_episode_length - 1
        self.reset_buf = (reached | timeout).long()
        extras = {"time_outs": timeout & (self.reset_buf != 0), "success": reached}
        self.obs_dict["obs"] = self.obs_buf.clone()
        return self.obs_dict, reached.float(), self.reset_buf.clone(), extras


def test_isaaclab_adapter_fits_the_contract_and_flattens_groups() -> None:
    env = IsaacLabVecEnv(PointLab(), action_scale=1.0)
    check_vec_env(env)
    assert set(env.observation_space.spaces) == {"policy", "critic/pos", "critic/steps"}
    only = IsaacLabVecEnv(PointLab(), obs_groups=["policy"])
    assert set(only.observation_space.spaces) == {"policy"}


def test_isaaclab_time_limit_keeps_the_true_last_observation() -> None:
    lab = PointLab(num_envs=2, episode_length_s=0.5, step_dt=0.1)  # horizon 5 steps
    env = IsaacLabVecEnv(lab, action_scale=1.0)
    assert env.horizon == 5 and lab.max_episode_length > 10**6  # own time-out disabled
    env.reset()
    a = torch.tensor([[0.2], [-0.2]])  # never reaches the goal
    for t in range(5):
        obs, _, term, trunc, info = env.step(a)
        if t < 4:
            assert not trunc.any() and not term.any()
    assert trunc.all() and not term.any()
    # Final observation: 5 steps of 0.02 each; the returned one is the fresh episode's.
    torch.testing.assert_close(info["final_obs"]["policy"][:, 0], torch.tensor([0.1, -0.1]))
    assert torch.equal(obs["policy"][:, 0], torch.zeros(2))
    assert torch.equal(info["final_obs"]["critic/steps"][:, 0], torch.full((2,), 5.0))


def test_isaaclab_termination_success_and_action_scale() -> None:
    lab = PointLab(num_envs=2, episode_length_s=10.0)
    env = IsaacLabVecEnv(lab, action_scale=2.0)
    env.reset()
    obs, _, term, trunc, info = env.step(torch.tensor([[1.0], [0.0]]))  # env 0: pos 0.2
    torch.testing.assert_close(lab.last_action, torch.tensor([[2.0], [0.0]]))
    env.step(torch.tensor([[0.5], [0.0]]))  # 0.2 + 0.1 = 0.3
    obs, reward, term, trunc, info = env.step(torch.tensor([[1.0], [0.0]]))  # 0.5: goal
    assert term.tolist() == [True, False] and not trunc.any()
    assert info["success"].tolist() == [True, False]
    assert reward.tolist() == [1.0, 0.0]
    assert obs["policy"][0, 0] == 0.0  # reset inside the env's step


def test_isaacgym_adapter_splits_dones_and_starts_new_episodes_at_once() -> None:
    task = PointGym(num_envs=2, max_episode_length=5)  # time-out at the 4th step
    env = IsaacGymVecEnv(task)
    check_vec_env(env)
    env.reset()
    task.reset_calls.clear()
    # Actions in [-1, 1] map onto the task's [-2, 2] bounds.
    obs, _, term, trunc, info = env.step(torch.tensor([[1.0], [0.0]]))  # env 0: pos 0.2
    torch.testing.assert_close(obs["obs"][:, 0], torch.tensor([0.2, 0.0]))
    env.step(torch.tensor([[0.5], [0.0]]))  # 0.5 -> 1.0 in env units, pos 0.3
    obs, _, term, trunc, info = env.step(torch.tensor([[1.0], [0.0]]))  # pos 0.5: reached
    assert term.tolist() == [True, False] and not trunc.any()
    # final_obs: the terminal observation; obs: the new episode's first, reset exactly once.
    torch.testing.assert_close(info["final_obs"]["obs"][0], torch.tensor([0.5, 3.0]))
    assert torch.equal(obs["obs"][0], torch.zeros(2))
    assert info["success"].tolist() == [True, False]
    assert task.reset_calls == [[0]]
    obs, _, term, trunc, info = env.step(torch.zeros(2, 1))  # env 1 times out
    assert trunc.tolist() == [False, True] and not term.any()
    torch.testing.assert_close(info["final_obs"]["obs"][1], torch.tensor([0.0, 4.0]))
    assert task.reset_calls == [[0], [1]]  # the task's deferred reset found nothing to redo
    env.step(torch.zeros(2, 1))
    assert task.reset_calls == [[0], [1]]


@pytest.mark.parametrize(
    ("spec", "what"),
    [
        ("isaaclab:Isaac-Lift-Cube-Franka-v0", "Isaac Lab"),
        ("isaacgym:FrankaCubeStack", "Isaac Gym"),
    ],
)
def test_missing_isaac_is_one_line_naming_what_to_install(spec: str, what: str) -> None:
    with pytest.raises(EnvSpecError, match=what):
        make_env(spec, num_envs=2)
