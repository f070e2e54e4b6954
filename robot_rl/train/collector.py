"""Step a ``VecEnv`` with the current policy and write every transition into a replay buffer.

The env auto-resets finished episodes, so the observation it returns for them is the first of
the next episode; the stored next observation is always ``info["final_obs"]``, and only
``terminated`` (never ``truncated``) stops bootstrapping. Episode statistics accumulate in
device tensors and are read on the host only when asked for: a vector step makes no host
sync (no ``.item()``, no boolean-mask indexing, which waits for the device on CUDA).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from robot_rl.data.replay import ReplayBuffer
from sim.vec_env import EpisodeStats, Obs, VecEnv

ActFn = Callable[[Obs], Tensor]
"""Batch of observations -> env actions [N, A] in [-1, 1]."""


Observe = Callable[[Obs, Tensor, Tensor, Tensor, Tensor, Obs, Obs], None]
"""``(obs, action, reward, terminated, truncated, next_obs, final_obs)`` of one vector step."""


def into_buffer(buffer: ReplayBuffer) -> Observe:
    """An :data:`Observe` that stores each transition in ``buffer`` (next obs: final_obs)."""

    def observe(obs, action, reward, terminated, truncated, next_obs, final_obs) -> None:  # noqa: ANN001
        buffer.add(obs, action, reward, final_obs, terminated)

    return observe


class Collector:
    """Keeps the env's current observations between calls, so collection can be interleaved
    with updates one vector step at a time. Each vector step goes to ``sink``: a replay
    buffer, or an agent's ``observe``."""

    def __init__(self, env: VecEnv, sink: ReplayBuffer | Observe, seed: int | None = None) -> None:
        self.env = env
        self.observe = into_buffer(sink) if isinstance(sink, ReplayBuffer) else sink
        self.obs = env.reset(seed=seed)
        self.env_steps = 0
        """Transitions collected so far (num_envs per vector step)."""
        self._episode = EpisodeStats(env.num_envs, env.device)
        zero = torch.zeros((), device=env.device)
        self._episodes = zero.clone()
        self._successes = zero.clone()
        self._returns = zero.clone()
        self._lengths = zero.clone()

    @torch.no_grad()
    def collect(self, act: ActFn, vector_steps: int = 1) -> None:
        """Run ``vector_steps`` steps of all envs with ``act`` and store the transitions."""
        for _ in range(vector_steps):
            action = act(self.obs)
            next_obs, reward, terminated, truncated, info = self.env.step(action)
            self.observe(self.obs, action, reward, terminated, truncated, next_obs,
                         info["final_obs"])  # fmt: skip
            ended = terminated | truncated
            ep_return, ep_length = self._episode.update(reward, ended)
            done = ended.float()
            self._episodes += done.sum()
            self._successes += (done * info["success"].float()).sum()
            self._returns += (done * ep_return).sum()
            self._lengths += (done * ep_length.float()).sum()
            self.obs = next_obs
            self.env_steps += self.env.num_envs

    def pop_stats(self) -> dict[str, float]:
        """Training-episode metrics since the last call (one host sync), then reset them."""
        episodes = self._episodes.item()
        stats: dict[str, float] = {"train/episodes": episodes}
        if episodes > 0:
            stats["train/success_rate"] = self._successes.item() / episodes
            stats["train/episode_return"] = self._returns.item() / episodes
            stats["train/episode_length"] = self._lengths.item() / episodes
        for t in (self._episodes, self._successes, self._returns, self._lengths):
            t.zero_()
        return stats

    def state_dict(self) -> dict[str, Any]:
        """Counters to resume with (the env itself restarts with fresh episodes)."""
        return {"env_steps": self.env_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.env_steps = int(state["env_steps"])


def random_actions(num_envs: int, action_dim: int, generator: torch.Generator) -> ActFn:
    """An :data:`ActFn` drawing uniform actions in [-1, 1] (SAC's initial exploration)."""

    def act(obs: Obs) -> Tensor:
        shape = (num_envs, action_dim)
        return torch.rand(shape, generator=generator, device=generator.device) * 2.0 - 1.0

    return act


__all__ = ["ActFn", "Collector", "Observe", "into_buffer", "random_actions"]
