"""Offline demonstrations as concatenated tensors, with transition and sequence sampling."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor


@dataclass
class OfflineDataset:
    """All transitions of a set of episodes, concatenated along the first axis.

    Float observations are float32; uint8 observations (camera images) stay uint8, because
    float32 images would take four times the memory.
    """

    obs: dict[str, Tensor]
    """Observation at each step, key -> [M, ...]."""
    next_obs: dict[str, Tensor]
    """Observation after each step's action, key -> [M, ...]."""
    actions: Tensor
    """Actions, [M, A] float32."""
    rewards: Tensor
    """Rewards, [M] float32."""
    dones: Tensor
    """1.0 on the last step of every episode (by termination or by time limit), [M] float32."""
    terminals: Tensor
    """1.0 where the episode ended by success or termination (robomimic's `dones`); use this,
    not `dones`, to stop bootstrapping, [M] float32."""
    episode_ids: Tensor
    """Episode index of each transition, [M] long."""
    episode_starts: Tensor
    """First transition index of each episode, [N] long."""
    episode_lengths: Tensor
    """Number of transitions in each episode, [N] long."""
    env_args: dict[str, Any] = field(default_factory=dict)
    """Environment metadata (env_name, env_type, env_kwargs)."""
    episode_attrs: list[dict[str, Any]] = field(default_factory=list)
    """Per-episode attributes from the file (e.g. quality, success), one dict per episode."""
    episode_names: list[str] = field(default_factory=list)
    """Name of each episode in its source file (e.g. demo_3)."""
    states: Tensor | None = None
    """Simulator states [M, S] float64 (kept at full precision so a sim can be reset to
    them exactly), or None when some episode has none."""

    @classmethod
    def from_episodes(
        cls,
        episodes: list[dict[str, Any]],
        *,
        env_args: dict[str, Any] | None = None,
        names: list[str] | None = None,
    ) -> OfflineDataset:
        """Concatenates complete, validated episodes (numpy arrays) into one dataset.

        Args:
            episodes: dicts with obs, next_obs (key -> [T, ...]), actions [T, A], rewards [T],
                dones [T] (the file's termination flags), optional states [T, S] and attrs.
            env_args: environment metadata.
            names: episode names; defaults to demo_0, demo_1, ...

        Returns:
            The dataset on the CPU.
        """
        lengths = np.array([len(ep["actions"]) for ep in episodes], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        keys = list(episodes[0]["obs"])

        def cat_obs(part: str) -> dict[str, Tensor]:
            return {k: _obs_tensor(np.concatenate([ep[part][k] for ep in episodes])) for k in keys}

        def cat_float(name: str) -> Tensor:
            return torch.from_numpy(
                np.concatenate([np.asarray(ep[name], dtype=np.float32) for ep in episodes])
            )

        terminals = cat_float("dones")
        last_step = torch.zeros_like(terminals)
        last_step[torch.from_numpy(starts + lengths - 1)] = 1.0
        states = None
        if all(ep.get("states") is not None for ep in episodes):
            states = torch.from_numpy(
                np.concatenate([np.asarray(ep["states"], dtype=np.float64) for ep in episodes])
            )
        return cls(
            obs=cat_obs("obs"),
            next_obs=cat_obs("next_obs"),
            actions=cat_float("actions"),
            rewards=cat_float("rewards"),
            dones=torch.maximum(terminals, last_step),
            terminals=terminals,
            episode_ids=torch.repeat_interleave(torch.from_numpy(lengths)),
            episode_starts=torch.from_numpy(starts),
            episode_lengths=torch.from_numpy(lengths),
            env_args=dict(env_args or {}),
            episode_attrs=[dict(ep.get("attrs") or {}) for ep in episodes],
            episode_names=list(names or (f"demo_{i}" for i in range(len(episodes)))),
            states=states,
        )

    @property
    def num_transitions(self) -> int:
        """Number of transitions M."""
        return int(self.actions.shape[0])

    @property
    def num_episodes(self) -> int:
        """Number of episodes N."""
        return int(self.episode_lengths.shape[0])

    @property
    def obs_keys(self) -> list[str]:
        """Observation keys, in file order."""
        return list(self.obs)

    @property
    def action_dim(self) -> int:
        """Action dimension A."""
        return int(self.actions.shape[1])

    @property
    def device(self) -> torch.device:
        """Device the tensors live on."""
        return self.actions.device

    def obs_dims(self) -> dict[str, tuple[int, ...]]:
        """Shape of one observation per key (without the transition axis)."""
        return {k: tuple(v.shape[1:]) for k, v in self.obs.items()}

    def to(self, device: torch.device | str) -> OfflineDataset:
        """Returns a copy with every tensor on `device`."""
        return dataclasses.replace(
            self,
            obs={k: v.to(device) for k, v in self.obs.items()},
            next_obs={k: v.to(device) for k, v in self.next_obs.items()},
            actions=self.actions.to(device),
            rewards=self.rewards.to(device),
            dones=self.dones.to(device),
            terminals=self.terminals.to(device),
            episode_ids=self.episode_ids.to(device),
            episode_starts=self.episode_starts.to(device),
            episode_lengths=self.episode_lengths.to(device),
            states=None if self.states is None else self.states.to(device),
        )

    def episode(self, i: int) -> dict[str, Any]:
        """Views of episode `i`: obs, next_obs, actions, rewards, dones, terminals, states, attrs."""
        if not -self.num_episodes <= i < self.num_episodes:
            raise IndexError(f"episode {i} out of range for {self.num_episodes} episodes")
        i %= self.num_episodes
        s = int(self.episode_starts[i])
        sl = slice(s, s + int(self.episode_lengths[i]))
        return {
            "obs": {k: v[sl] for k, v in self.obs.items()},
            "next_obs": {k: v[sl] for k, v in self.next_obs.items()},
            "actions": self.actions[sl],
            "rewards": self.rewards[sl],
            "dones": self.dones[sl],
            "terminals": self.terminals[sl],
            "states": None if self.states is None else self.states[sl],
            "attrs": self.episode_attrs[i] if self.episode_attrs else {},
        }

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        extras: dict[str, Tensor] | None = None,
    ) -> dict[str, Any]:
        """Uniformly samples transitions.

        Args:
            extras: further per-transition tensors [M, ...] (e.g. MC returns) gathered at the
                same indices and returned under their own names.

        Returns:
            obs, next_obs (key -> [B, ...]), actions [B, A], rewards, dones, terminals [B].
        """
        idx = self._random_indices(batch_size, generator)
        batch = {
            **{k: v[idx] for k, v in (extras or {}).items()},
            "obs": {k: v[idx] for k, v in self.obs.items()},
            "next_obs": {k: v[idx] for k, v in self.next_obs.items()},
            "actions": self.actions[idx],
            "rewards": self.rewards[idx],
            "dones": self.dones[idx],
            "terminals": self.terminals[idx],
        }
        return batch if device is None else _to_device(batch, device)

    def sample_sequences(
        self,
        batch_size: int,
        *,
        n_obs_steps: int,
        horizon: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> dict[str, Any]:
        """Samples observation histories and action chunks for chunked policies (Chi et al.).

        For a current step t drawn uniformly over all transitions, observations cover steps
        t-n_obs_steps+1..t and actions cover t-n_obs_steps+1..t-n_obs_steps+horizon. Indices
        outside the episode are clamped to its first or last step, so edges repeat. Only
        padding past the episode end is flagged: steps before the start precede the first
        executed action and are kept unflagged, as in Chi et al.'s sampler.

        Returns:
            obs (key -> [B, n_obs_steps, ...]), actions [B, horizon, A], is_pad [B, horizon]
            (True on padded future steps) and action_mask = ~is_pad (True where the action
            is real and belongs in the loss).
        """
        t = self._random_indices(batch_size, generator)
        return self.sequences_at(t, n_obs_steps=n_obs_steps, horizon=horizon, device=device)

    def sequences_at(
        self,
        t: Tensor,
        *,
        n_obs_steps: int,
        horizon: int,
        device: torch.device | str | None = None,
    ) -> dict[str, Any]:
        """Sequences as in `sample_sequences` for given current steps t [B] (e.g. validation)."""
        if n_obs_steps < 1 or horizon < 1:
            raise ValueError(f"n_obs_steps ({n_obs_steps}) and horizon ({horizon}) must be >= 1")
        t = t.to(self.device)
        ep = self.episode_ids[t]
        first = self.episode_starts[ep].unsqueeze(1)
        last = first + self.episode_lengths[ep].unsqueeze(1) - 1
        base = t.unsqueeze(1) - (n_obs_steps - 1)
        obs_idx = base + torch.arange(n_obs_steps, device=t.device)
        act_idx = base + torch.arange(horizon, device=t.device)
        is_pad = act_idx > last
        obs_idx = torch.minimum(torch.maximum(obs_idx, first), last)
        act_idx = torch.minimum(torch.maximum(act_idx, first), last)
        batch = {
            "obs": {k: v[obs_idx] for k, v in self.obs.items()},
            "actions": self.actions[act_idx],
            "is_pad": is_pad,
            "action_mask": ~is_pad,
        }
        return batch if device is None else _to_device(batch, device)

    def _random_indices(self, batch_size: int, generator: torch.Generator | None) -> Tensor:
        # Draw on the generator's device so a CPU generator also works for a GPU dataset.
        gen_device = generator.device if generator is not None else self.device
        idx = torch.randint(
            self.num_transitions, (batch_size,), generator=generator, device=gen_device
        )
        return idx.to(self.device)


def _obs_tensor(array: np.ndarray) -> Tensor:
    if array.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(array))
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _to_device(batch: dict[str, Any], device: torch.device | str) -> dict[str, Any]:
    return {
        k: _to_device(v, device) if isinstance(v, dict) else v.to(device, non_blocking=True)
        for k, v in batch.items()
    }
