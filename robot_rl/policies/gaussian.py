"""Tanh-squashed Gaussian MLP policy: the BC policy and the actor of the actor-critic methods."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from robot_rl.data.normalizer import Normalizer
from robot_rl.policies.base import Policy
from robot_rl.policies.modules import mlp

_ATANH_CLIP = 1.0 - 1e-4

if TYPE_CHECKING:
    from sim.vec_env import Obs


@dataclass
class GaussianPolicyConfig:
    """Network shape of :class:`GaussianPolicy`."""

    obs_keys: list[str]
    """Observation keys read, in concatenation order."""
    obs_dim: int
    """Total flattened observation size."""
    action_dim: int
    """Action size."""
    hidden_dims: list[int] = field(default_factory=lambda: [256, 256, 256])
    """MLP hidden widths."""
    activation: str = "relu"
    """Hidden activation (relu, mish, silu, gelu, tanh)."""
    layer_norm: bool = False
    """LayerNorm after each hidden linear layer."""
    log_std_min: float = -5.0
    """Lower bound of the pre-tanh log standard deviation."""
    log_std_max: float = 2.0
    """Upper bound of the pre-tanh log standard deviation."""


class GaussianPolicy(Policy):
    """a = tanh(u), u ~ N(mu(s), sigma(s)) in normalized action space ([-1, 1])."""

    policy_type = "gaussian"
    config_cls = GaussianPolicyConfig

    def __init__(
        self, config: GaussianPolicyConfig, normalizer: Normalizer, env_info: dict[str, Any]
    ) -> None:
        super().__init__(config, normalizer, env_info)
        self.net = mlp(
            config.obs_dim,
            config.hidden_dims,
            2 * config.action_dim,
            activation=config.activation,
            layer_norm=config.layer_norm,
        )

    def dist_params(self, obs: Obs) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-tanh mean and log-std, [N, A] each."""
        mean, raw = self.net(self.flat_obs(obs)).chunk(2, dim=-1)
        lo, hi = self.config.log_std_min, self.config.log_std_max
        log_std = lo + 0.5 * (hi - lo) * (torch.tanh(raw) + 1.0)
        return mean, log_std

    def log_prob(self, obs: Obs, action: torch.Tensor) -> torch.Tensor:
        """Log-density [N] of normalized actions in (-1, 1) (edges clipped for atanh)."""
        mean, log_std = self.dist_params(obs)
        action = action.clamp(-_ATANH_CLIP, _ATANH_CLIP)
        return _tanh_gaussian_log_prob(torch.atanh(action), mean, log_std)

    def sample(self, obs: Obs, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterized normalized action [N, A] and its log-prob [N]."""
        mean, log_std = self.dist_params(obs)
        u = mean if deterministic else mean + log_std.exp() * torch.randn_like(mean)
        return torch.tanh(u), _tanh_gaussian_log_prob(u, mean, log_std)

    def act(self, obs: Obs, deterministic: bool = False) -> torch.Tensor:
        with torch.no_grad():
            action, _ = self.sample(obs, deterministic)
        return self.normalizer.unnormalize_action(action).clamp(-1.0, 1.0)


def _tanh_gaussian_log_prob(
    u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor
) -> torch.Tensor:
    """log N(u; mean, std) minus the tanh Jacobian, summed over action dims."""
    z = (u - mean) / log_std.exp()
    gauss = -0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)
    # log(1 - tanh(u)^2) in a numerically stable form.
    log_det = 2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u))
    return (gauss - log_det).sum(-1)
