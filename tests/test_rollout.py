"""Episode bookkeeping of the shared rollout loop."""

from __future__ import annotations

import torch

import sim
from robot_rl.rollout import run_episodes


def test_quota_spreads_episodes_and_records_layout() -> None:
    env = sim.make("reach", num_envs=3, seed=0, horizon=4)
    started: list[int] = []

    def on_start(ids: torch.Tensor) -> None:
        started.extend(ids.tolist())

    result = run_episodes(
        env, lambda obs: torch.zeros(3, 4), 7, seed=0, record=True, on_episode_start=on_start
    )
    assert len(result.success) == len(result.episodes) == 7
    assert result.lengths == [4] * 7 and result.success_rate == 0.0
    ep = result.episodes[0]
    assert ep["actions"].shape == (4, 4) and ep["rewards"].shape == (4,)
    assert ep["obs"]["goal"].shape == (4, 3) and ep["states"].shape[0] == 4
    # next_obs of step t is obs of step t + 1 within an episode.
    assert (ep["next_obs"]["robot0_eef_pos"][:-1] == ep["obs"]["robot0_eef_pos"][1:]).all()
    # Envs 0 and 1 run 3 episodes and env 2 runs 2 episodes (7 = 3 + 2 + 2 would bias).
    assert started.count(0) >= 3 and started.count(2) >= 2


def test_summary_names() -> None:
    env = sim.make("reach", num_envs=2, seed=0, horizon=3)
    summary = run_episodes(env, lambda obs: torch.zeros(2, 4), 2, seed=0).summary()
    assert set(summary) == {
        "eval/success_rate",
        "eval/mean_return",
        "eval/mean_episode_length",
        "eval/episodes",
    }
