"""EXPO's acting policy: a diffusion base policy, an edit policy and on-the-fly selection.

At each replanning step the base policy proposes ``num_samples`` chunks; the edit policy
moves each by at most ``beta`` per dimension; the 2N candidates (bases and edits) are scored
by a critic ensemble on (state, executed chunk) and the best one is executed (Dong, Li,
Sadigh, Finn 2025, with Q-chunking's chunk critic). The policy directory holds the base's EMA
weights, the edit policy and the target critics, so ``robot-rl eval`` and the robot runtime run
exactly the selection that fine-tuning used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from robot_rl.data import Normalizer
from robot_rl.errors import ConfigError
from robot_rl.policies.critic import CriticConfig, CriticEnsemble, draw_members
from robot_rl.policies.diffusion import DiffusionPolicy, DiffusionPolicyConfig
from robot_rl.policies.modules import mlp


class EditPolicy(nn.Module):
    """Tanh-Gaussian on (state, action): edit = beta * tanh(u), u ~ N(mu, sigma)."""

    def __init__(self, obs_dim: int, action_dim: int, beta: float, hidden: tuple[int, ...]):
        super().__init__()
        if beta <= 0:
            raise ConfigError(f"beta must be > 0, got {beta}")
        self.beta, self.action_dim = beta, action_dim
        self.net = mlp(obs_dim + action_dim, list(hidden), 2 * action_dim, layer_norm=True)

    def forward(
        self, obs: Tensor, action: Tensor, deterministic: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Edited action clip(a + beta tanh u) [B, A] and log-prob of a + beta tanh u [B]
        (``deterministic``: u is the mean)."""
        mean, raw = self.net(torch.cat([obs, action], -1)).chunk(2, -1)
        log_std = -5.0 + 3.5 * (torch.tanh(raw) + 1.0)  # in [-5, 2]
        u = mean if deterministic else mean + log_std.exp() * torch.randn_like(mean)
        gauss = -0.5 * ((u - mean) / log_std.exp()).pow(2) - log_std - 0.5 * math.log(2 * math.pi)
        log_det = 2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u))
        log_pi = (gauss - log_det).sum(-1) - self.action_dim * math.log(self.beta)
        return (action + self.beta * torch.tanh(u)).clamp(-1.0, 1.0), log_pi


@torch.no_grad()
def candidates(obs: Tensor, base: Tensor, edit: EditPolicy, deterministic: bool = False) -> Tensor:
    """The N bases [B, N, A] followed by their N edits: [B, 2N, A]."""
    b, n, a = base.shape
    edited, _ = edit(obs.repeat_interleave(n, 0), base.reshape(b * n, a), deterministic)
    return torch.cat([base, edited.view(b, n, a)], 1)


@torch.no_grad()
def select(
    obs: Tensor,
    base: Tensor,
    edit: EditPolicy,
    target: CriticEnsemble,
    subset: int = 2,
    generator: torch.Generator | None = None,
    deterministic: bool = False,
) -> Tensor:
    """On-the-fly policy: for obs [B, D] and base samples [B, N, A], score the N bases and
    their N edits by the min over a random subset of target critics (over all members if
    ``deterministic``) and return the argmax [B, A]."""
    b, n, a = base.shape
    cands = candidates(obs, base, edit, deterministic)  # [B, 2N, A]
    if deterministic:
        members = torch.arange(target.num_critics)
    else:
        members = draw_members(target.num_critics, subset, generator=generator)
    q = target.forward_members(
        obs.repeat_interleave(2 * n, 0), cands.reshape(-1, a), members.to(obs.device)
    )
    best = q.min(0).values.view(b, 2 * n).argmax(1)
    return cands[torch.arange(b, device=obs.device), best]


@dataclass
class EXPOPolicyConfig(DiffusionPolicyConfig):
    """A diffusion policy's settings plus EXPO's edit policy, critics and selection."""

    num_samples: int = 4
    """N base chunks per replanning step (2N candidates with the edits)."""
    beta: float = 0.05
    """Edit scale."""
    edit_hidden_dims: list[int] = field(default_factory=lambda: [128, 128])
    """Edit-policy widths."""
    num_critics: int = 10
    """Critic ensemble size."""
    critic_hidden_dims: list[int] = field(default_factory=lambda: [128, 128])
    """Critic widths."""
    target_subset: int = 2
    """Selection score: min over this many random target critics."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_samples < 1:
            raise ConfigError(f"num_samples={self.num_samples}: must be >= 1")
        if not 0 < self.target_subset <= self.num_critics:
            raise ConfigError(f"target_subset={self.target_subset}: must be in 1..num_critics")

    @property
    def chunk_dim(self) -> int:
        """Size of a flattened executed chunk, Ta * |A|."""
        return self.n_action_steps * self.action_dim


class EXPOPolicy(DiffusionPolicy):
    """Receding-horizon acting as :class:`DiffusionPolicy`, choosing each executed chunk among
    N base samples and their edits by the target critics' score."""

    policy_type = "expo"
    config_cls = EXPOPolicyConfig

    def __init__(
        self, config: EXPOPolicyConfig, normalizer: Normalizer, env_info: dict[str, Any]
    ) -> None:
        super().__init__(config, normalizer, env_info)
        self.edit = EditPolicy(
            config.obs_dim, config.chunk_dim, config.beta, tuple(config.edit_hidden_dims)
        )
        self.target = CriticEnsemble(
            CriticConfig(
                config.obs_dim,
                config.chunk_dim,
                num_critics=config.num_critics,
                hidden_dims=list(config.critic_hidden_dims),
            )
        ).requires_grad_(False)
        self.selecting = True
        """False: execute the first base sample (the plain diffusion policy, e.g. warmup)."""
        self.last_plan: dict[str, Tensor] | None = None
        """The latest replanning step: ``obs`` [R, D] (normalized current step), ``base``
        [R, N, Ta*A] and ``chosen`` [R, Ta*A] in env units; read by the fine-tuning agent to
        build its chunk transitions."""

    @classmethod
    def from_diffusion(
        cls, base: DiffusionPolicy, critic: CriticEnsemble, **settings: Any
    ) -> EXPOPolicy:
        """An EXPO policy whose base is ``base``'s networks and whose target is ``critic``'s
        weights; ``settings`` are the other :class:`EXPOPolicyConfig` fields."""
        cfg = EXPOPolicyConfig(
            **vars(base.config),
            num_critics=critic.num_critics,
            critic_hidden_dims=list(critic.config.hidden_dims),
            **settings,
        )
        policy = cls(cfg, base.normalizer, base.env_info).to(base.device)
        policy.denoiser.load_state_dict(base.denoiser.state_dict())
        policy.ema_denoiser.load_state_dict(base.ema_denoiser.state_dict())
        policy.target.load_state_dict(critic.state_dict())
        return policy

    def weights_for_save(self) -> dict[str, Tensor]:
        weights = super().weights_for_save()
        weights.update({f"edit.{k}": v for k, v in self.edit.state_dict().items()})
        weights.update({f"target.{k}": v for k, v in self.target.state_dict().items()})
        return weights

    def base_chunks(
        self, hist: Tensor, num_samples: int, generator: torch.Generator | None = None,
        deterministic: bool = False,
    ) -> Tensor:  # fmt: skip
        """``num_samples`` executed chunks per history [R, To, D]: [R, N, Ta*A] in env units
        (all R*N chains denoised in one batch)."""
        cfg = self.config
        cond = hist.flatten(1).repeat_interleave(num_samples, 0)
        if deterministic:
            # Distinct but fixed noise per sample: the same history gives the same candidates;
            # the first is the base policy's own deterministic chunk.
            generator = torch.Generator(device=cond.device).manual_seed(0)
        chunk = self.denoise(cond, generator)
        if deterministic:
            first = torch.arange(0, len(cond), num_samples, device=cond.device)
            chunk[first] = self.denoise(cond[first], deterministic=True)
        start = cfg.n_obs_steps - 1
        executed = chunk[:, start : start + cfg.n_action_steps]
        executed = self.normalizer.unnormalize_action(executed).clamp(-1.0, 1.0)
        return executed.reshape(hist.shape[0], num_samples, cfg.chunk_dim)

    def plan(self, hist: Tensor, generator: torch.Generator | None, deterministic: bool) -> Tensor:
        cfg = self.config
        obs = hist[:, -1]
        base = self.base_chunks(hist, cfg.num_samples, generator, deterministic)
        if self.selecting:
            chosen = select(obs, base, self.edit, self.target, cfg.target_subset, None,
                            deterministic)  # fmt: skip
        else:
            chosen = base[:, 0]
        self.last_plan = {"obs": obs, "base": base, "chosen": chosen}
        actions = chosen.view(-1, cfg.n_action_steps, cfg.action_dim)
        return self.normalizer.normalize_action(actions)


__all__ = ["EXPOPolicy", "EXPOPolicyConfig", "EditPolicy", "candidates", "select"]
