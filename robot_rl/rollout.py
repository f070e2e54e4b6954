"""Run whole episodes on a ``VecEnv``: evaluation and demonstration recording share this loop.

Episodes are assigned to envs up front (env i runs ``quota[i]`` episodes), so the result does
not favour short episodes the way "take the first N that finish" would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sim.vec_env import EpisodeStats, Obs, VecEnv

ActFn = Callable[[Obs], torch.Tensor]


@dataclass
class RolloutResult:
    """Per-episode outcomes in completion order, and the recorded episodes if asked for."""

    success: list[bool] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    episodes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        """Fraction of successful episodes."""
        return float(np.mean(self.success)) if self.success else 0.0

    def summary(self) -> dict[str, float]:
        """Fixed metric names shared by every algorithm's evaluation."""
        return {
            "eval/success_rate": self.success_rate,
            "eval/mean_return": float(np.mean(self.returns)) if self.returns else 0.0,
            "eval/mean_episode_length": float(np.mean(self.lengths)) if self.lengths else 0.0,
            "eval/episodes": len(self.success),
        }


def run_episodes(
    env: VecEnv,
    act: ActFn,
    num_episodes: int,
    *,
    seed: int | None = None,
    record: bool = False,
    on_episode_start: Callable[[torch.Tensor], None] | None = None,
    reset_policy: Callable[[torch.Tensor], None] | None = None,
    episode_attrs: Callable[[int], dict[str, Any]] | None = None,
    progress: bool = False,
    desc: str = "episodes",
) -> RolloutResult:
    """Roll out ``act`` until ``num_episodes`` episodes have finished.

    Args:
        env: the batched environment; it is reset here.
        act: maps a batch of observations to actions.
        num_episodes: episodes to collect, spread evenly over the envs.
        seed: reset seed (reproducible episode sequence).
        record: keep full trajectories (obs, next_obs, actions, rewards, dones, states) as
            numpy episodes in robomimic's per-demo layout.
        on_episode_start: called with the env ids whose episodes just began (e.g. to draw
            per-episode expert parameters).
        reset_policy: called with env ids whose episodes ended, so a stateful policy can clear
            its observation history or action queue.
        episode_attrs: called with an env id when its recorded episode ends, before the next
            ``on_episode_start``; the returned dict is stored in the episode's ``attrs``.
        progress: show a progress bar.
        desc: progress-bar label.
    """
    n = env.num_envs
    quota = torch.full((n,), num_episodes // n, dtype=torch.long)
    quota[: num_episodes % n] += 1
    finished = torch.zeros(n, dtype=torch.long)
    result = RolloutResult()
    obs = env.reset(seed=seed)
    all_ids = torch.arange(n, device=env.device)
    if on_episode_start is not None:
        on_episode_start(all_ids)
    if reset_policy is not None:
        reset_policy(all_ids)
    traj: list[dict[str, list]] = [_empty_traj() for _ in range(n)] if record else []
    stats = EpisodeStats(n, env.device)
    get_state = getattr(env, "get_state", None) if record else None
    bar = tqdm(total=num_episodes, desc=desc, disable=not progress, leave=False)
    while bool((finished < quota).any()):
        states = get_state() if get_state is not None else None
        with torch.no_grad():
            action = act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        returns, lengths = stats.update(reward, terminated | truncated)
        done = (terminated | truncated).cpu()
        if record:
            _append(traj, obs, action, reward, terminated, info["final_obs"], states)
        for i in done.nonzero().flatten().tolist():
            if finished[i] >= quota[i]:
                if record:
                    traj[i] = _empty_traj()
                continue
            finished[i] += 1
            result.success.append(bool(info["success"][i]))
            result.returns.append(float(returns[i]))
            result.lengths.append(int(lengths[i]))
            if record:
                episode = _finish(traj[i])
                episode["attrs"] = {"success": result.success[-1]}
                if episode_attrs is not None:
                    episode["attrs"].update(episode_attrs(i))
                result.episodes.append(episode)
                traj[i] = _empty_traj()
            bar.update(1)
        if done.any():
            ids = done.nonzero().flatten().to(env.device)
            if on_episode_start is not None:
                on_episode_start(ids)
            if reset_policy is not None:
                reset_policy(ids)
        obs = next_obs
    bar.close()
    return result


def _empty_traj() -> dict[str, list]:
    return {"obs": [], "next_obs": [], "actions": [], "rewards": [], "dones": [], "states": []}


def _append(
    traj: list[dict[str, list]],
    obs: Obs,
    action: torch.Tensor,
    reward: torch.Tensor,
    terminated: torch.Tensor,
    next_obs: Obs,
    states: torch.Tensor | None,
) -> None:
    obs_np = {k: v.cpu().numpy() for k, v in obs.items()}
    next_np = {k: v.cpu().numpy() for k, v in next_obs.items()}
    act_np, rew_np = action.cpu().numpy(), reward.cpu().numpy()
    term_np = terminated.cpu().numpy()
    for i, t in enumerate(traj):
        t["obs"].append({k: v[i] for k, v in obs_np.items()})
        t["next_obs"].append({k: v[i] for k, v in next_np.items()})
        t["actions"].append(act_np[i])
        t["rewards"].append(rew_np[i])
        t["dones"].append(term_np[i])
        if states is not None:
            t["states"].append(states[i].cpu().numpy())


def _finish(t: dict[str, list]) -> dict[str, Any]:
    def stack_obs(steps: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {k: np.stack([s[k] for s in steps]) for k in steps[0]}

    episode: dict[str, Any] = {
        "obs": stack_obs(t["obs"]),
        "next_obs": stack_obs(t["next_obs"]),
        "actions": np.stack(t["actions"]).astype(np.float32),
        "rewards": np.asarray(t["rewards"], dtype=np.float32),
        "dones": np.asarray(t["dones"], dtype=np.int64),
    }
    if t["states"]:
        episode["states"] = np.stack(t["states"])
    return episode
