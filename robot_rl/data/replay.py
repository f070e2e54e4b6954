"""Online replay: a preallocated ring of transitions on the training device, and mixed
offline/online batches.

Transitions are stored as collected: observation dicts, env actions, raw rewards and the
``terminated`` flag (1 only where the episode ended by termination, so truncated episodes
still bootstrap). Batches use the same keys as :meth:`OfflineDataset.sample` (``obs``,
``next_obs``, ``actions``, ``rewards``, ``terminals``), so an update step cannot tell where a
row came from.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from torch import Tensor

from robot_rl.data.dataset import OfflineDataset
from robot_rl.errors import CheckpointError, ConfigError

Batch = dict[str, Any]


class ReplayBuffer:
    """Fixed-capacity ring buffer; :meth:`add` writes N transitions with one indexed copy."""

    def __init__(
        self,
        capacity: int,
        obs_shapes: dict[str, tuple[tuple[int, ...], torch.dtype]],
        action_dim: int,
        device: str | torch.device = "cpu",
    ) -> None:
        """Args:
        capacity: transitions kept; the oldest are overwritten once full.
        obs_shapes: observation key -> (per-transition shape, dtype).
        action_dim: action size.
        device: where every tensor lives (the training device).
        """
        if capacity < 1:
            raise ConfigError(f"replay capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.device = torch.device(device)

        def empty(shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
            return torch.zeros((capacity, *shape), dtype=dtype, device=self.device)

        self.obs = {k: empty(s, d) for k, (s, d) in obs_shapes.items()}
        self.next_obs = {k: empty(s, d) for k, (s, d) in obs_shapes.items()}
        self.actions = empty((action_dim,), torch.float32)
        self.rewards = empty((), torch.float32)
        self.terminals = empty((), torch.float32)
        # Host-side counters: the write position is known without reading the device.
        self.pos = 0
        self.size = 0

    @classmethod
    def for_space(
        cls,
        capacity: int,
        observation_space: gym.spaces.Dict,
        action_dim: int,
        keys: list[str] | None = None,
        device: str | torch.device = "cpu",
    ) -> ReplayBuffer:
        """A buffer for an env's observation space (only ``keys`` if given)."""
        shapes = {}
        for key, space in observation_space.spaces.items():
            if keys is None or key in keys:
                dtype = torch.uint8 if space.dtype == "uint8" else torch.float32
                shapes[key] = (tuple(space.shape), dtype)
        return cls(capacity, shapes, action_dim, device)

    def __len__(self) -> int:
        return self.size

    @property
    def obs_keys(self) -> list[str]:
        """Stored observation keys."""
        return list(self.obs)

    def add(
        self,
        obs: dict[str, Tensor],
        action: Tensor,
        reward: Tensor,
        next_obs: dict[str, Tensor],
        terminated: Tensor,
    ) -> None:
        """Append N transitions (every argument has a leading dim N; extra obs keys ignored)."""
        n = action.shape[0]
        if n > self.capacity:
            raise ConfigError(f"cannot add {n} transitions to a buffer of capacity {self.capacity}")
        idx = (torch.arange(n, device=self.device) + self.pos) % self.capacity
        for key in self.obs:
            self.obs[key][idx] = obs[key].to(self.device, self.obs[key].dtype)
            self.next_obs[key][idx] = next_obs[key].to(self.device, self.obs[key].dtype)
        self.actions[idx] = action.to(self.device, torch.float32)
        self.rewards[idx] = reward.to(self.device, torch.float32)
        self.terminals[idx] = terminated.to(self.device, torch.float32)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        """Uniform transitions: obs, next_obs (key -> [B, ...]), actions, rewards, terminals."""
        if self.size == 0:
            raise ConfigError("cannot sample from an empty replay buffer")
        gen_device = generator.device if generator is not None else self.device
        idx = torch.randint(self.size, (batch_size,), generator=generator, device=gen_device)
        return self.gather(idx.to(self.device))

    def gather(self, idx: Tensor) -> Batch:
        """The transitions at storage rows ``idx``."""
        return {
            "obs": {k: v[idx] for k, v in self.obs.items()},
            "next_obs": {k: v[idx] for k, v in self.next_obs.items()},
            "actions": self.actions[idx],
            "rewards": self.rewards[idx],
            "terminals": self.terminals[idx],
        }

    def state_dict(self) -> dict[str, Tensor]:
        """Flat tensors for safetensors: the filled rows and the write position."""
        rows = slice(0, self.size)
        out = {f"obs.{k}": v[rows] for k, v in self.obs.items()}
        out.update({f"next_obs.{k}": v[rows] for k, v in self.next_obs.items()})
        out["actions"] = self.actions[rows]
        out["rewards"] = self.rewards[rows]
        out["terminals"] = self.terminals[rows]
        out["pos"] = torch.tensor([self.pos, self.size, self.capacity], dtype=torch.int64)
        return out

    def load_state_dict(self, tensors: dict[str, Tensor]) -> None:
        """Restore :meth:`state_dict` output into this (same-shaped) buffer."""
        try:
            pos, size, capacity = (int(x) for x in tensors["pos"])
        except KeyError as e:
            raise CheckpointError("replay state has no 'pos' entry") from e
        if capacity != self.capacity:
            raise CheckpointError(
                f"replay state has capacity {capacity}, this buffer {self.capacity}"
            )
        fields = {f"obs.{k}": v for k, v in self.obs.items()}
        fields.update({f"next_obs.{k}": v for k, v in self.next_obs.items()})
        fields.update(actions=self.actions, rewards=self.rewards, terminals=self.terminals)
        for name, dest in fields.items():
            src = tensors.get(name)
            if src is None or src.shape[0] != size or src.shape[1:] != dest.shape[1:]:
                got = None if src is None else tuple(src.shape)
                raise CheckpointError(
                    f"replay state entry {name!r} is {got}, expected ({size}, "
                    f"{', '.join(map(str, dest.shape[1:]))})"
                )
            dest[:size] = src.to(self.device, dest.dtype)
        self.pos, self.size = pos, size


class MixedSampler:
    """Batches with ``round(offline_ratio * B)`` offline rows and the rest online (RLPD's
    symmetric sampling at 0.5; 0 never touches the offline data)."""

    def __init__(
        self, online: ReplayBuffer, offline: OfflineDataset | None, offline_ratio: float
    ) -> None:
        if not 0.0 <= offline_ratio <= 1.0:
            raise ConfigError(f"offline_ratio must be in [0, 1], got {offline_ratio}")
        if offline_ratio > 0 and offline is None:
            raise ConfigError(f"offline_ratio {offline_ratio} > 0 needs an offline dataset")
        if offline is not None:
            missing = [k for k in online.obs_keys if k not in offline.obs]
            if missing:
                raise ConfigError(f"offline dataset lacks observation keys {missing}")
            offline = offline.to(online.device)
        self.online = online
        self.offline = offline
        self.offline_ratio = offline_ratio

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        """One batch of ``batch_size`` rows, offline rows first."""
        n_off = round(self.offline_ratio * batch_size)
        n_on = batch_size - n_off
        parts = []
        if n_off > 0:
            assert self.offline is not None
            parts.append(self.offline.sample(n_off, generator=generator))
        if n_on > 0:
            parts.append(self.online.sample(n_on, generator=generator))
        if len(parts) == 1:
            return _select(parts[0], self.online.obs_keys)
        return _cat([_select(p, self.online.obs_keys) for p in parts])


def _select(batch: Batch, keys: list[str]) -> Batch:
    return {
        "obs": {k: batch["obs"][k] for k in keys},
        "next_obs": {k: batch["next_obs"][k] for k in keys},
        "actions": batch["actions"],
        "rewards": batch["rewards"],
        "terminals": batch["terminals"],
    }


def _cat(parts: list[Batch]) -> Batch:
    out: Batch = {}
    for name, first in parts[0].items():
        if isinstance(first, dict):
            out[name] = {k: torch.cat([p[name][k] for p in parts]) for k in first}
        else:
            out[name] = torch.cat([p[name] for p in parts])
    return out


__all__ = ["Batch", "MixedSampler", "ReplayBuffer"]
