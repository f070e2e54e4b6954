"""EXPO (Dong, Li, Sadigh, Finn 2025) on chunked diffusion policies: core pieces.

The base diffusion policy trains by imitation only (no critic gradient) and acts through its
EMA copy. A small tanh-Gaussian edit policy on (state, base action) outputs ``beta * tanh(u)``
added to the base action, then clipped to [-1, 1] (the clip is outside the density: the
log-prob is that of the unclipped edit, corrected by ``-|A| log beta``). On-the-fly selection
draws N base samples and their edits (2N candidates, one batched denoising call for all
states), scores them with the min over a random pair of target critics and takes the argmax;
the same :func:`select` acts and forms the TD target.

Chunks (Q-chunking): the critic values the executed chunk Q(s, a_t..a_{t+Ta-1}) flattened to
``Ta * |A|``, with Ta-step backups r_t + ... + gamma^{Ta-1} r_{t+Ta-1} + gamma^Ta Q'(s_{t+Ta});
edits act on the flattened chunk. Ta = 1 is plain EXPO.
Reward convention: as SAC here, r' = 10 r - 5 (Cal-QL's sparse-task shift).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from robot_rl.errors import ConfigError
from robot_rl.perf import adam
from robot_rl.policies.critic import CriticEnsemble, draw_members, polyak_update
from robot_rl.policies.modules import mlp


@dataclass
class EXPOConfig:
    """Hyperparameters of EXPO."""

    num_base_samples: int = 4
    """N base samples per state (paper 8)."""
    num_edits: int = 4
    """Edited candidates (one per base sample; paper 8)."""
    beta: float = 0.05
    """Edit scale: candidate = clip(base + beta * tanh(u), -1, 1)."""
    utd: int = 4
    """Critic minibatches per update (paper 20)."""
    batch_size: int = 256
    """Rows per critic minibatch."""
    num_critics: int = 10
    """Critic ensemble size (LayerNorm)."""
    critic_hidden_dims: tuple[int, ...] = (128, 128)
    """Critic widths (paper 3x256)."""
    edit_hidden_dims: tuple[int, ...] = (128, 128)
    """Edit-policy widths."""
    target_subset: int = 2
    """Selection/TD score: min over this many random target critics."""
    tau: float = 0.005
    """Polyak rate."""
    discount: float = 0.99
    """Per-env-step discount (a chunk of Ta steps bootstraps with discount**Ta)."""
    lr: float = 3e-4
    """Adam rate of critic, edit policy and temperature."""
    target_entropy_per_dim: float = -0.5
    """Target entropy = this * |A| (of the flattened chunk)."""
    offline_ratio: float = 0.5
    """Share of offline rows in critic and imitation batches."""
    reward_scale: float = 10.0
    """Critics learn on reward_scale * r + reward_bias ..."""
    reward_bias: float = -5.0
    """... (SAC's convention in this project)."""

    @classmethod
    def cpu(cls) -> EXPOConfig:
        """Small settings for a 2-core machine."""
        return cls()

    @classmethod
    def paper(cls) -> EXPOConfig:
        """The authors' settings."""
        return replace(
            cls(),
            num_base_samples=8,
            num_edits=8,
            beta=0.05,
            utd=20,
            critic_hidden_dims=(256, 256, 256),
            edit_hidden_dims=(256, 256),
        )


class EditPolicy(nn.Module):
    """Tanh-Gaussian on (state, action): edit = beta * tanh(u), u ~ N(mu, sigma)."""

    def __init__(self, obs_dim: int, action_dim: int, beta: float, hidden: tuple[int, ...]):
        super().__init__()
        if beta <= 0:
            raise ConfigError(f"beta must be > 0, got {beta}")
        self.beta, self.action_dim = beta, action_dim
        self.net = mlp(obs_dim + action_dim, list(hidden), 2 * action_dim, layer_norm=True)

    def forward(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """Edited action clip(a + beta tanh u) [B, A] and log-prob of a + beta tanh u [B]."""
        mean, raw = self.net(torch.cat([obs, action], -1)).chunk(2, -1)
        log_std = -5.0 + 3.5 * (torch.tanh(raw) + 1.0)  # in [-5, 2]
        u = mean + log_std.exp() * torch.randn_like(mean)
        gauss = -0.5 * ((u - mean) / log_std.exp()).pow(2) - log_std - 0.5 * math.log(2 * math.pi)
        log_det = 2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u))
        log_pi = (gauss - log_det).sum(-1) - self.action_dim * math.log(self.beta)
        return (action + self.beta * torch.tanh(u)).clamp(-1.0, 1.0), log_pi


def select(
    obs: Tensor,
    base: Tensor,
    edit: EditPolicy,
    target: CriticEnsemble,
    subset: int = 2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """On-the-fly policy: for obs [B, D] and base samples [B, N, A], score the N bases and
    their N edits by the min over a random target subset and return the argmax [B, A]."""
    b, n, a = base.shape
    with torch.no_grad():
        flat_obs = obs.repeat_interleave(n, 0)
        edited, _ = edit(flat_obs, base.reshape(b * n, a))
        cands = torch.cat([base, edited.view(b, n, a)], 1)  # [B, 2N, A]
        members = draw_members(target.num_critics, subset, generator=generator)
        q = target.forward_members(
            obs.repeat_interleave(2 * n, 0), cands.reshape(-1, a), members.to(obs.device)
        )
        q = q.min(0).values.view(b, 2 * n)
        best = q.argmax(1)
        return cands[torch.arange(b, device=obs.device), best]


def td_target(
    reward: Tensor,
    not_done: Tensor,
    next_obs: Tensor,
    next_base: Tensor,
    edit: EditPolicy,
    target: CriticEnsemble,
    discount: float,
    subset: int = 2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Chunk backup: reward (already the discounted Ta-step sum) + discount**Ta-style
    ``discount`` * not_done * Q'(s', select(s'))."""
    with torch.no_grad():
        a_next = select(next_obs, next_base, edit, target, subset, generator)
        q = target.random_subset_min(next_obs, a_next, subset, generator=generator)
        return reward + discount * not_done * q


class EXPO:
    """Critic ensemble, target and edit policy with their optimizers (base policy apart)."""

    def __init__(
        self,
        critic: CriticEnsemble,
        target: CriticEnsemble,
        edit: EditPolicy,
        cfg: EXPOConfig,
        chunk: int = 1,
    ) -> None:
        self.cfg, self.critic, self.target, self.edit, self.chunk = cfg, critic, target, edit, chunk
        self.log_temperature = torch.zeros((), requires_grad=True)
        self.target_entropy = cfg.target_entropy_per_dim * edit.action_dim
        self.opt_critic = adam(critic.parameters(), lr=cfg.lr)
        self.opt_edit = adam(edit.parameters(), lr=cfg.lr)
        self.opt_temp = adam([self.log_temperature], lr=cfg.lr)

    def critic_step(
        self, obs: Tensor, action: Tensor, reward: Tensor, not_done: Tensor,
        next_obs: Tensor, next_base: Tensor, generator: torch.Generator | None = None,
    ) -> Tensor:  # fmt: skip
        """One TD step on flattened chunks; ``reward`` is the raw discounted chunk return."""
        cfg = self.cfg
        # Shift applies per env step: sum_k gamma^k (s r_k + b) = s R + b sum_k gamma^k.
        bias = cfg.reward_bias * sum(cfg.discount**k for k in range(self.chunk))
        y = td_target(
            cfg.reward_scale * reward + bias, not_done, next_obs, next_base, self.edit,
            self.target, cfg.discount**self.chunk, cfg.target_subset, generator,
        )  # fmt: skip
        loss = (self.critic(obs, action) - y).pow(2).mean(1).sum()
        self.opt_critic.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_critic.step()
        polyak_update(self.target, self.critic, cfg.tau)
        return loss.detach()

    def edit_step(self, obs: Tensor, action: Tensor) -> Tensor:
        """SAC step of the edit policy on replay (s, a) against the ensemble mean."""
        edited, log_pi = self.edit(obs, action)
        self.critic.requires_grad_(False)
        q = self.critic(obs, edited).mean(0)
        self.critic.requires_grad_(True)
        temp = self.log_temperature.exp()
        loss = (temp.detach() * log_pi - q).mean()
        self.opt_edit.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_edit.step()
        t_loss = -(self.log_temperature * (log_pi.detach() + self.target_entropy)).mean()
        self.opt_temp.zero_grad(set_to_none=True)
        t_loss.backward()
        self.opt_temp.step()
        return loss.detach()


__all__ = ["EXPO", "EXPOConfig", "EditPolicy", "select", "td_target"]
