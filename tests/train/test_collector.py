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


def test_pop_stats_with_one_finished_episode_averages_by_hand() -> None:
    env = sim.make("reach", num_envs=2, seed=0)
    buf = ReplayBuffer.for_space(400, env.observation_space, env.action_dim)
    collector = Collector(env, buf, seed=0)

    def toward_goal(obs: dict[str, torch.Tensor]) -> torch.Tensor:
        delta = (obs["goal"] - obs["robot0_eef_pos"]) / env.max_ee_delta
        return torch.cat([delta.clamp(-1, 1), torch.zeros(2, 1)], dim=1)

    # Step until the first episode ends (a success), then read the stats of exactly one.
    while buf.terminals[: len(buf)].sum() == 0:
        collector.collect(toward_goal, 1)
    rows = len(buf)
    assert buf.terminals[rows - 2 : rows].sum() == 1  # seeded: one env finishes first
    done_env = int(buf.terminals[rows - 2 : rows].argmax())
    env_rows = torch.arange(done_env, rows, 2)
    stats = collector.pop_stats()
    assert stats["train/episodes"] == 1.0
    assert stats["train/success_rate"] == 1.0
    assert stats["train/episode_length"] == len(env_rows)
    assert stats["train/episode_return"] == buf.rewards[env_rows].sum().item() == 1.0


def test_random_actions_are_uniform_on_the_box_and_seeded() -> None:
    act = random_actions(500, 4, torch.Generator().manual_seed(3))
    a = act({})
    assert a.shape == (500, 4) and a.min() >= -1.0 and a.max() <= 1.0
    # Uniform on [-1, 1]: both ends reached, mean 0, variance 1/3 (2000 draws, ~5 sigma).
    assert a.min() < -0.99 and a.max() > 0.99
    assert abs(a.mean().item()) < 0.07 and abs(a.var().item() - 1 / 3) < 0.03
    # Drawn from the given generator only: the same seed repeats, the global RNG is unused.
    torch.manual_seed(0)
    b = random_actions(500, 4, torch.Generator().manual_seed(3))({})
    assert torch.equal(a, b)
    assert not torch.equal(a, act({}))


def test_reset_seed_and_step_counter_round_trip() -> None:
    def first_obs(seed: int) -> torch.Tensor:
        env = sim.make("reach", num_envs=2, seed=0)
        buf = ReplayBuffer.for_space(10, env.observation_space, env.action_dim)
        return Collector(env, buf, seed=seed).obs["goal"]

    assert torch.equal(first_obs(1), first_obs(1))
    assert not torch.equal(first_obs(1), first_obs(2))
    env = sim.make("reach", num_envs=2, seed=0)
    buf = ReplayBuffer.for_space(10, env.observation_space, env.action_dim)
    collector = Collector(env, buf, seed=0)
    collector.collect(random_actions(2, env.action_dim, torch.Generator().manual_seed(0)), 2)
    state = collector.state_dict()
    assert state == {"env_steps": 4}  # the key saved in fine-tuning checkpoints
    other = Collector(env, ReplayBuffer.for_space(10, env.observation_space, env.action_dim))
    other.load_state_dict(state)
    assert other.env_steps == 4


def test_a_callable_sink_sees_every_step_and_stats_average_its_episodes() -> None:
    env = sim.make("reach", num_envs=2, seed=0, horizon=12)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def observe(obs, action, reward, terminated, truncated, next_obs, final_obs) -> None:  # noqa: ANN001
        seen.append((reward.clone(), (terminated | truncated).clone()))

    collector = Collector(env, observe, seed=0)

    def toward_goal(obs: dict[str, torch.Tensor]) -> torch.Tensor:
        delta = (obs["goal"] - obs["robot0_eef_pos"]) / env.max_ee_delta
        return torch.cat([delta.clamp(-1, 1), torch.zeros(2, 1)], dim=1)

    collector.collect(toward_goal, 40)
    assert len(seen) == 40
    # Independent tally from the transitions the sink saw: finished episodes and their returns.
    returns, running = [], [0.0, 0.0]
    for reward, ended in seen:
        for i in range(2):
            running[i] += float(reward[i])
            if ended[i]:
                returns.append(running[i])
                running[i] = 0.0
    assert len(returns) >= 2 and sum(returns) > 0
    stats = collector.pop_stats()
    assert stats["train/episodes"] == len(returns)
    assert abs(stats["train/episode_return"] - sum(returns) / len(returns)) < 1e-6


def test_episode_accumulators_live_on_the_envs_device() -> None:
    class MetaEnv:  # only what Collector.__init__ reads; the meta device stands in for a GPU
        num_envs, device = 3, torch.device("meta")

        def reset(self, seed: int | None = None) -> dict[str, torch.Tensor]:
            return {"x": torch.zeros(3, 1, device=self.device)}

    collector = Collector(MetaEnv(), lambda *transition: None)  # type: ignore[arg-type]
    accumulators = (collector._episode.returns, collector._episode.lengths, collector._episodes,
                    collector._successes, collector._returns, collector._lengths)  # fmt: skip
    assert {t.device.type for t in accumulators} == {"meta"}
