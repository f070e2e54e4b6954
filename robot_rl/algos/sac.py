"""Soft actor-critic over the shared critic ensemble; RLPD and WSRL are settings of it.

One :meth:`SAC.update` takes ``utd * batch_size`` transitions: ``utd`` critic steps on
consecutive minibatches of ``batch_size`` (each followed by a Polyak update of the target),
then one actor and temperature step, on the whole batch (WSRL) or on the last minibatch
(RLPD). The TD target is the min over a random subset of target critics, with or without the
entropy term; the actor maximizes the mean or the min of the ensemble. Every critic is
evaluated in one batched call (:class:`CriticEnsemble`), and the update returns its metrics
as device tensors so the caller decides when to synchronize.

Settings (per ``ALGORITHMS.md``):

========  ===  =========  ===========  ==============  =============  =============
preset    UTD  subset     actor        entropy backup  target entropy offline ratio
========  ===  =========  ===========  ==============  =============  =============
sac       1    2 of 2     min          yes             -|A|           0
rlpd      20   2 of 10    mean         yes             -|A|/2         0.5
wsrl      4    2 of 10    min of 10    no              -|A|           0
========  ===  =========  ===========  ==============  =============  =============
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from robot_rl.errors import CheckpointError, ConfigError
from robot_rl.perf import adam
from robot_rl.policies.critic import CriticEnsemble, polyak_update
from robot_rl.policies.gaussian import GaussianPolicy


@dataclass
class SACConfig:
    """Hyperparameters of one SAC update."""

    utd: int = 1
    """Critic minibatches (gradient steps) per update call."""
    batch_size: int = 256
    """Transitions per critic minibatch."""
    actor_full_batch: bool = False
    """Actor step on all ``utd * batch_size`` rows (WSRL) rather than the last minibatch."""
    target_subset: int = 2
    """TD target: min over this many target critics, drawn at random each critic step."""
    actor_reduce: Literal["mean", "min"] = "min"
    """Ensemble reduction the actor maximizes."""
    entropy_backup: bool = True
    """Subtract temperature * log pi(a'|s') in the TD target."""
    target_entropy_per_dim: float = -1.0
    """Target entropy = this * |A| (SAC, WSRL -1; RLPD -0.5)."""
    actor_lr: float = 3e-4
    """Actor Adam learning rate."""
    critic_lr: float = 3e-4
    """Critic Adam learning rate."""
    temperature_lr: float = 3e-4
    """Temperature Adam learning rate."""
    discount: float = 0.99
    """Discount gamma."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    reward_scale: float = 10.0
    """Critics learn on r' = reward_scale * r + reward_bias ..."""
    reward_bias: float = -5.0
    """... so a step that does not succeed costs (Cal-QL's sparse-task convention)."""
    compile_critic: bool = False
    """torch.compile the online critic ensemble's forward (and backward)."""


class SAC:
    """The learner: actor, critic ensemble, target ensemble, temperature and optimizers."""

    def __init__(
        self,
        policy: GaussianPolicy,
        critic: CriticEnsemble,
        target: CriticEnsemble,
        cfg: SACConfig,
        init_temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        if cfg.utd < 1 or cfg.batch_size < 1:
            raise ConfigError(f"utd and batch_size must be >= 1, got {cfg.utd}, {cfg.batch_size}")
        if not 1 <= cfg.target_subset <= critic.num_critics:
            raise ConfigError(
                f"target_subset {cfg.target_subset} must be in [1, {critic.num_critics}] "
                "(the number of critics)"
            )
        CriticEnsemble.reduce(torch.zeros(1, 1), cfg.actor_reduce)  # validates the name
        self.cfg = cfg
        self.policy, self.critic, self.target = policy, critic, target
        if cfg.compile_critic:
            critic.compile()  # in place: parameter names and state_dict stay the same
        self.generator = generator
        device = policy.device
        self.log_temperature = torch.tensor(
            math.log(init_temperature), device=device, requires_grad=True
        )
        self.target_entropy = cfg.target_entropy_per_dim * policy.config.action_dim
        self.optimizers = {
            "actor": adam(policy.parameters(), lr=cfg.actor_lr),
            "critic": adam(critic.parameters(), lr=cfg.critic_lr),
            "temperature": adam([self.log_temperature], lr=cfg.temperature_lr),
        }

    @property
    def temperature(self) -> float:
        """Current SAC temperature (a host sync)."""
        return self.log_temperature.exp().item()

    def update(self, batch: dict[str, Any], update_actor: bool = True) -> dict[str, Tensor]:
        """``utd`` critic steps and (unless ``update_actor`` is False) one actor/temperature
        step on ``utd * batch_size`` rows."""
        cfg, n = self.cfg, self.cfg.batch_size
        rows = batch["actions"].shape[0]
        if rows != cfg.utd * n:
            raise ConfigError(f"update needs utd * batch_size = {cfg.utd * n} rows, got {rows}")
        with torch.no_grad():
            obs = self.policy.flat_obs(batch["obs"])
            next_obs = self.policy.flat_obs(batch["next_obs"])
            action = self.policy.normalizer.normalize_action(batch["actions"]).clamp(-1.0, 1.0)
            reward = cfg.reward_scale * batch["rewards"] + cfg.reward_bias
            not_done = 1.0 - batch["terminals"]
        for i in range(cfg.utd):
            sl = slice(i * n, (i + 1) * n)
            critic_metrics = self._critic_step(
                obs[sl], action[sl], reward[sl], not_done[sl], next_obs[sl], _rows(batch, sl)
            )
        if not update_actor:
            return critic_metrics
        actor_rows = slice(0, rows) if cfg.actor_full_batch else slice(rows - n, rows)
        actor_metrics = self._actor_step(obs[actor_rows], _rows(batch, actor_rows)["obs"])
        return {**critic_metrics, **actor_metrics}

    def _critic_step(
        self,
        obs: Tensor,
        action: Tensor,
        reward: Tensor,
        not_done: Tensor,
        next_obs: Tensor,
        batch: dict[str, Any],
    ) -> dict[str, Tensor]:
        cfg = self.cfg
        td_target = self.td_target(reward, not_done, next_obs, batch["next_obs"])
        q = self.critic(obs, action)
        # Sum over members of each member's mean squared TD error.
        loss = (q - td_target).pow(2).mean(dim=1).sum()
        opt = self.optimizers["critic"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        polyak_update(self.target, self.critic, cfg.tau)
        return {
            "train/critic_loss": loss.detach() / self.critic.num_critics,
            "train/q_mean": q.detach().mean(),
            "train/td_target_mean": td_target.mean(),
        }

    @torch.no_grad()
    def td_target(
        self, reward: Tensor, not_done: Tensor, next_obs: Tensor, next_obs_dict: dict[str, Tensor]
    ) -> Tensor:
        """r' + gamma * (1 - terminated) * [min of a random target subset at a' ~ pi(s')
        (- temperature * log pi(a'|s') with the entropy backup)], [B]. Truncated transitions
        have ``not_done = 1`` and bootstrap from their true final observation."""
        next_action, next_log_pi = self.policy.sample(next_obs_dict)
        # Only the drawn target members are evaluated (2 of 10 for RLPD/WSRL).
        q_next = self.target.random_subset_min(
            next_obs, next_action, self.cfg.target_subset, generator=self.generator
        )
        if self.cfg.entropy_backup:
            q_next = q_next - self.log_temperature.exp() * next_log_pi
        return reward + self.cfg.discount * not_done * q_next

    def _actor_step(self, obs: Tensor, obs_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        action, log_pi = self.policy.sample(obs_dict)
        # Critic weights get no gradient from the actor loss.
        self.critic.requires_grad_(False)
        q_pi = CriticEnsemble.reduce(self.critic(obs, action), self.cfg.actor_reduce)
        self.critic.requires_grad_(True)
        temperature = self.log_temperature.exp()
        actor_loss = (temperature.detach() * log_pi - q_pi).mean()
        opt = self.optimizers["actor"]
        opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        opt.step()
        temp_loss = -(self.log_temperature * (log_pi.detach() + self.target_entropy)).mean()
        opt = self.optimizers["temperature"]
        opt.zero_grad(set_to_none=True)
        temp_loss.backward()
        opt.step()
        return {
            "train/actor_loss": actor_loss.detach(),
            "train/entropy": -log_pi.detach().mean(),
            "train/temperature": temperature.detach(),
            "train/q_pi_mean": q_pi.detach().mean(),
        }

    def state_dict(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """Flat tensors (networks, temperature, optimizer moments) and JSON metadata
        (optimizer hyperparameters), for safetensors without pickle."""
        tensors = {f"actor.{k}": v for k, v in self.policy.state_dict().items()}
        tensors.update({f"critic.{k}": v for k, v in self.critic.state_dict().items()})
        tensors.update({f"target.{k}": v for k, v in self.target.state_dict().items()})
        tensors["log_temperature"] = self.log_temperature.detach()
        meta: dict[str, Any] = {}
        for name, opt in self.optimizers.items():
            state = opt.state_dict()
            for idx, slots in state["state"].items():
                for slot, value in slots.items():
                    tensors[f"optim.{name}.{idx}.{slot}"] = torch.as_tensor(value)
            meta[name] = state["param_groups"]
        return tensors, meta

    def load_state_dict(self, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        try:
            for prefix, module in (
                ("actor.", self.policy),
                ("critic.", self.critic),
                ("target.", self.target),
            ):
                module.load_state_dict(_strip(tensors, prefix))
            with torch.no_grad():
                self.log_temperature.copy_(tensors["log_temperature"])
            for name, opt in self.optimizers.items():
                state: dict[int, dict[str, Tensor]] = {}
                for key, value in _strip(tensors, f"optim.{name}.").items():
                    idx, slot = key.split(".", 1)
                    state.setdefault(int(idx), {})[slot] = value
                opt.load_state_dict({"state": state, "param_groups": meta[name]})
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(f"learner state does not match this configuration: {e}") from e


def _rows(batch: dict[str, Any], rows: slice) -> dict[str, Any]:
    return {
        "obs": {k: v[rows] for k, v in batch["obs"].items()},
        "next_obs": {k: v[rows] for k, v in batch["next_obs"].items()},
    }


def _strip(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


__all__ = ["SAC", "SACConfig"]
