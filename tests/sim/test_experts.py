"""Each scripted expert solves its task in at least 95 of 100 episodes."""

from __future__ import annotations

import pytest
import torch

import sim
from robot_rl.rollout import run_episodes
from sim.experts import make_expert


@pytest.mark.parametrize("task", ["reach", "push", "lift"])
def test_expert_success_rate(task: str) -> None:
    env = sim.make(task, num_envs=10, seed=0)
    expert = make_expert(env, noise_std=0.05, seed=0)
    result = run_episodes(env, expert.act, 100, seed=0)
    assert len(result.success) == 100
    assert result.success_rate >= 0.95, (task, result.success_rate)


def test_expert_in_joint_space() -> None:
    env = sim.make("lift", num_envs=10, seed=0, controller="joint_delta")
    expert = make_expert(env, noise_std=0.05)
    result = run_episodes(env, expert.act, 30, seed=0)
    assert result.success_rate >= 0.9


def test_failing_offset_makes_lift_fail() -> None:
    env = sim.make("lift", num_envs=10, seed=0)
    expert = make_expert(env)
    ids = torch.arange(10)
    offset = torch.tensor([[0.07, 0.0, 0.0]]).repeat(10, 1)

    def biased(env_ids: torch.Tensor) -> None:
        expert.set_episode_params(env_ids, torch.zeros(len(env_ids)), offset[: len(env_ids)])

    biased(ids)
    result = run_episodes(env, expert.act, 20, seed=0, on_episode_start=biased)
    assert result.success_rate <= 0.1
