"""push_obstacle is bimodal: the expert solves it either way round, the average of the two fails."""

from __future__ import annotations

import torch

import sim
from robot_rl.rollout import run_episodes
from sim.experts import make_expert
from sim.experts_multimodal import PushObstacleExpert


def test_expert_solves_it_on_both_sides_about_equally_often() -> None:
    env = sim.make("push_obstacle", num_envs=20, seed=0)
    expert = make_expert(env, noise_std=0.05, seed=0)
    assert isinstance(expert, PushObstacleExpert)
    sides: list[float] = []

    def start(env_ids: torch.Tensor) -> None:
        noise = torch.full((len(env_ids),), 0.05)
        expert.set_episode_params(env_ids, noise, torch.zeros(len(env_ids), 3))
        sides.extend(expert.side[env_ids].tolist())

    result = run_episodes(env, expert.act, 60, seed=0, on_episode_start=start)
    assert result.success_rate >= 0.95, result.success_rate
    left = sum(s > 0 for s in sides) / len(sides)
    assert 0.35 <= left <= 0.65, left


def test_start_states_do_not_hint_at_a_side() -> None:
    env = sim.make("push_obstacle", num_envs=8, seed=0)
    obs = env.reset(3)
    for key in ("robot0_eef_pos", "robot0_joint_pos"):
        torch.testing.assert_close(obs[key], obs[key][:1].expand_as(obs[key]))
    assert (obs["object"][:, 1] == 0).all() and (obs["goal"][:, 1] == 0).all()


def test_averaging_the_two_routes_traps_the_cube() -> None:
    env = sim.make("push_obstacle", num_envs=10, seed=0)
    left, right = PushObstacleExpert(env), PushObstacleExpert(env)
    left.side.fill_(1.0)
    right.side.fill_(-1.0)

    def mean_of_modes(obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return (left.act(obs) + right.act(obs)) / 2

    result = run_episodes(env, mean_of_modes, 10, seed=0)
    assert result.success_rate == 0.0
    # Each route alone succeeds from the same starts.
    assert run_episodes(env, left.act, 10, seed=0).success_rate >= 0.9
    assert run_episodes(env, right.act, 10, seed=0).success_rate >= 0.9
