"""Collector: transitions land in the buffer with final observations and termination flags."""

from __future__ import annotations

import torch

import sim
from robot_rl.data.replay import ReplayBuffer
from robot_rl.train.collector import Collector, random_actions


def test_collector_stores_final_obs_and_only_terminations() -> None:
    env = sim.make("reach", num_envs=3, seed=0, horizon=5)
    buf = ReplayBuffer.for_space(100, env.observation_space, env.action_dim)
    collector = Collector(env, buf, seed=0)
    first_obs = {k: v.clone() for k, v in collector.obs.items()}
    collector.collect(random_actions(3, env.action_dim, torch.Generator().manual_seed(0)), 5)
    assert len(buf) == 15 and collector.env_steps == 15
    # Row t*3+i is env i at step t: its next_obs is the observation at t+1 (same episode).
    assert torch.equal(buf.obs["robot0_eef_pos"][:3], first_obs["robot0_eef_pos"])
    assert torch.equal(buf.next_obs["goal"][:12], buf.obs["goal"][3:15])
    # The last step truncated every episode: next_obs is the true final obs (old goal),
    # the env already shows a new goal, and nothing is marked terminal.
    assert torch.equal(buf.next_obs["goal"][12:15], buf.obs["goal"][12:15])
    assert not torch.equal(collector.obs["goal"], buf.obs["goal"][12:15])
    assert buf.terminals[:15].sum() == 0
    stats = collector.pop_stats()
    assert stats["train/episodes"] == 3 and stats["train/episode_length"] == 5
    assert collector.pop_stats() == {"train/episodes": 0.0}


def test_collector_marks_success_as_terminal() -> None:
    env = sim.make("reach", num_envs=2, seed=0)
    buf = ReplayBuffer.for_space(400, env.observation_space, env.action_dim)
    collector = Collector(env, buf, seed=0)

    def toward_goal(obs: dict[str, torch.Tensor]) -> torch.Tensor:
        delta = (obs["goal"] - obs["robot0_eef_pos"]) / env.max_ee_delta
        return torch.cat([delta.clamp(-1, 1), torch.zeros(2, 1)], dim=1)

    collector.collect(toward_goal, 40)
    term = buf.terminals[: len(buf)].bool()
    assert term.any()
    assert torch.equal(buf.rewards[: len(buf)].bool(), term)  # sparse reward 1 on success
    # Terminal next_obs is at the goal, not the reset state.
    nxt = {k: v[: len(buf)][term] for k, v in buf.next_obs.items()}
    dist = (nxt["goal"] - nxt["robot0_eef_pos"]).norm(dim=1)
    assert (dist < 0.03).all()
    assert collector.pop_stats()["train/success_rate"] == 1.0
