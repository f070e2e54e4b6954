"""Ensemble of Q-networks evaluated in one batched computation, shared by every actor-critic.

Each layer stores the weights of all E members stacked as ``[E, in, out]`` and runs as one
``torch.baddbmm``, so a 10-member ensemble costs a few large matmuls instead of ten Python
calls. Critics read the policy's flat normalized observation (``policy.flat_obs(obs)``) and
normalized actions in [-1, 1].

A policy directory written by IQL or Cal-QL holds the ensemble and its target in
``critic.safetensors`` (keys ``critic.*`` and ``target.*``), the :class:`CriticConfig` under
``"critic"`` in ``config.json`` and the SAC temperature (if any) under ``"temperature"``;
:func:`load_critic` and :func:`load_temperature` read them back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from robot_rl.checkpoint import load_extra, read_config
from robot_rl.errors import CheckpointError, ConfigError
from robot_rl.policies.modules import ACTIVATIONS

CRITIC_FILE = "critic"


@dataclass
class CriticConfig:
    """Shape of a :class:`CriticEnsemble`."""

    obs_dim: int
    """Flat (normalized) observation size."""
    action_dim: int
    """Action size."""
    num_critics: int = 10
    """Ensemble members E."""
    hidden_dims: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden widths of every member."""
    layer_norm: bool = True
    """LayerNorm after each hidden linear layer (RLPD, WSRL, EXPO use it)."""
    activation: str = "relu"
    """Hidden activation (relu, mish, silu, gelu, tanh)."""


class EnsembleLinear(nn.Module):
    """E independent linear layers applied as one batched matmul: [E, B, in] -> [E, B, out]."""

    def __init__(self, num_members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(num_members, 1, out_dim))
        # Same distribution as nn.Linear's default, independently per member.
        bound = 1.0 / math.sqrt(in_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over the last dim with a separate affine per member: [E, B, H]."""

    def __init__(self, num_members: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_members, 1, dim))
        self.bias = nn.Parameter(torch.zeros(num_members, 1, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = nn.functional.layer_norm(x, x.shape[-1:])
        return torch.addcmul(self.bias, x, self.weight)


class CriticEnsemble(nn.Module):
    """E Q-networks Q_i(s, a), evaluated together: ``forward(obs, action) -> q [E, B]``."""

    def __init__(self, config: CriticConfig) -> None:
        super().__init__()
        if config.num_critics < 1:
            raise ConfigError(f"num_critics must be >= 1, got {config.num_critics}")
        if config.activation not in ACTIVATIONS:
            raise ConfigError(
                f"unknown critic activation {config.activation!r}; "
                f"choose from {sorted(ACTIVATIONS)}"
            )
        self.config = config
        e = config.num_critics
        layers: list[nn.Module] = []
        prev = config.obs_dim + config.action_dim
        for h in config.hidden_dims:
            layers.append(EnsembleLinear(e, prev, h))
            if config.layer_norm:
                layers.append(EnsembleLayerNorm(e, h))
            layers.append(ACTIVATIONS[config.activation]())
            prev = h
        layers.append(EnsembleLinear(e, prev, 1))
        self.net = nn.Sequential(*layers)

    @property
    def num_critics(self) -> int:
        """Ensemble size E."""
        return self.config.num_critics

    def forward(self, obs: Tensor, action: Tensor) -> Tensor:
        """Q-values [E, B].

        Args:
            obs: flat normalized observations, [B, obs_dim] (every member sees the same
                batch) or [E, B, obs_dim] (member i sees ``obs[i]``).
            action: normalized actions, [B, A] or [E, B, A], matching ``obs``.
        """
        x = torch.cat([obs, action], dim=-1)
        e = self.num_critics
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(e, -1, -1)
        elif x.dim() != 3 or x.shape[0] != e:
            raise ValueError(
                f"critic input must be [B, D] or [{e}, B, D]; got obs {tuple(obs.shape)} "
                f"and action {tuple(action.shape)}"
            )
        return self.net(x).squeeze(-1)

    def forward_members(self, obs: Tensor, action: Tensor, members: Tensor) -> Tensor:
        """Q-values of the listed members only, [len(members), B], for inputs [B, D].

        A TD target needs only the random subset it takes the min over; evaluating just those
        members skips (E - k) / E of the target's arithmetic.
        """
        x = torch.cat([obs, action], dim=-1).unsqueeze(0).expand(len(members), -1, -1)
        for layer in self.net:
            if isinstance(layer, EnsembleLinear):
                x = torch.baddbmm(layer.bias[members], x, layer.weight[members])
            elif isinstance(layer, EnsembleLayerNorm):
                x = nn.functional.layer_norm(x, x.shape[-1:])
                x = torch.addcmul(layer.bias[members], x, layer.weight[members])
            else:
                x = layer(x)
        return x.squeeze(-1)

    def random_subset_min(
        self,
        obs: Tensor,
        action: Tensor,
        size: int = 2,
        replace: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Min over a random subset of members evaluated on their own, [B]; equal to
        ``subset_min(self(obs, action), ...)`` for the same generator state."""
        members = draw_members(self.num_critics, size, replace, generator)
        return self.forward_members(obs, action, members.to(obs.device)).min(dim=0).values

    @staticmethod
    def subset_min(
        q: Tensor, size: int = 2, replace: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        """Min over a random subset of ``size`` members (one draw for the whole batch, as in
        RLPD and WSRL): [E, B] -> [B]."""
        idx = draw_members(q.shape[0], size, replace, generator)
        return q[idx.to(q.device)].min(dim=0).values

    @staticmethod
    def reduce(q: Tensor, how: Literal["mean", "min"]) -> Tensor:
        """Mean or min over members: [E, ...] -> [...]."""
        if how == "mean":
            return q.mean(dim=0)
        if how == "min":
            return q.min(dim=0).values
        raise ConfigError(f"unknown ensemble reduction {how!r}; choose 'mean' or 'min'")


def draw_members(
    num_critics: int, size: int, replace: bool = False, generator: torch.Generator | None = None
) -> Tensor:
    """Indices of a random subset of ensemble members (one draw for the whole batch)."""
    if size < 1 or (not replace and size > num_critics):
        raise ConfigError(
            f"target subset size {size} invalid for {num_critics} critics (replace={replace})"
        )
    device = generator.device if generator is not None else torch.device("cpu")
    if replace:
        return torch.randint(num_critics, (size,), generator=generator, device=device)
    return torch.randperm(num_critics, generator=generator, device=device)[:size]


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- (1 - tau) * target + tau * source, for all parameters at once."""
    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


def make_target(critic: CriticEnsemble) -> CriticEnsemble:
    """A frozen copy of ``critic`` to be tracked with :func:`polyak_update`."""
    target = CriticEnsemble(critic.config).to(next(critic.parameters()).device)
    target.load_state_dict(critic.state_dict())
    target.requires_grad_(False)
    return target


def critic_checkpoint(
    critic: CriticEnsemble, target: CriticEnsemble, temperature: float | None = None
) -> tuple[dict[str, Any], dict[str, dict[str, Tensor]]]:
    """``(extra_config, extra_files)`` to pass to :meth:`Policy.save` so the directory also
    holds the critic ensemble, its target and the temperature."""
    tensors = {f"critic.{k}": v for k, v in critic.state_dict().items()}
    tensors.update({f"target.{k}": v for k, v in target.state_dict().items()})
    extra_config: dict[str, Any] = {"critic": asdict(critic.config)}
    if temperature is not None:
        extra_config["temperature"] = float(temperature)
    return extra_config, {CRITIC_FILE: tensors}


def load_critic(
    policy_dir: str | Path, device: str | torch.device | None = None
) -> tuple[CriticEnsemble, CriticEnsemble]:
    """The critic ensemble and its target (frozen) saved in an IQL/Cal-QL policy directory."""
    config = read_config(policy_dir)
    if "critic" not in config:
        raise CheckpointError(f"{policy_dir}: config.json has no 'critic' entry (not an RL policy)")
    try:
        critic_cfg = CriticConfig(**config["critic"])
    except TypeError as e:
        raise CheckpointError(f"{policy_dir}: invalid critic config: {e}") from e
    tensors = load_extra(policy_dir, CRITIC_FILE)
    nets = []
    for prefix in ("critic.", "target."):
        net = CriticEnsemble(critic_cfg)
        weights = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            net.load_state_dict(weights)
        except RuntimeError as e:
            raise CheckpointError(
                f"{policy_dir}: {prefix[:-1]} weights do not match the critic config: {e}"
            ) from e
        nets.append(net.to(device) if device is not None else net)
    nets[1].requires_grad_(False)
    return nets[0], nets[1]


def load_temperature(policy_dir: str | Path) -> float | None:
    """The SAC temperature saved with the policy (Cal-QL), or None if it has none (IQL)."""
    value = read_config(policy_dir).get("temperature")
    return None if value is None else float(value)
