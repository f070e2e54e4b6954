"""Implicit Q-learning (Kostrikov et al. 2021): offline RL without querying unseen actions.

V(s) fits an upper expectile of the target ensemble's min Q(s, a) over dataset actions; the
critic ensemble regresses r' + gamma * V(s'); the tanh-Gaussian actor is extracted by
advantage-weighted regression, weight exp(beta * (Q - V)) clipped at ``max_weight``.

Rewards: the tasks' sparse reward is 1 on the success step, which ends the episode. We train
on r' = reward_scale * r + reward_bias. The ``paper`` scale uses r - 1 as in the authors'
antmaze runs (every step that does not succeed costs 1). The ``cpu`` scale keeps r in {0, 1}:
with r - 1 every value starts at 0 and must first drift down to about -1/(1 - gamma), which
15k steps do not finish (measured on lift: mean V still falling at -28, success and failure
starts valued alike, success 0.54); with r in {0, 1} failures are already right at 0 and the
success signal propagates back from the goal within the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor
from tqdm import trange

from robot_rl.algos.common import (
    OfflineTrainConfig,
    build_actor_critic,
    config_json,
    default_log_dir,
    load_task_dataset,
    make_writer,
    seed_everything,
    with_matmul_precision,
)
from robot_rl.checkpoint import check_output, load_extra, read_config
from robot_rl.errors import CheckpointError, ConfigError
from robot_rl.perf import adam
from robot_rl.policies.critic import (
    CriticEnsemble,
    critic_checkpoint,
    polyak_update,
)
from robot_rl.policies.gaussian import GaussianPolicy
from robot_rl.policies.modules import mlp

PRESETS: dict[str, dict[str, Any]] = {
    # One run <= 10 minutes on one CPU thread (15k steps: 2.6 min on an idle core). The actor
    # is the BC policy's network and learning rate, so IQL differs from BC only by its
    # weights. Advantages of 0/1 rewards are a fraction of a success, hence beta 50, not 10.
    # Lift, 200 mixed episodes: beta 10 0.84 / 0.76, beta 50 0.96 / 0.94 (BC 0.64 / 0.76).
    "cpu": {
        "steps": 15_000,
        "hidden_dims": [256, 256, 256],
        "critic_hidden_dims": [256, 256],
        "num_critics": 2,
        "actor_lr": 1e-3,
        "beta": 50.0,
        "reward_bias": 0.0,
    },
    # The authors' settings: 1M steps, 2x256 networks, two critics, antmaze beta and r - 1.
    "paper": {
        "steps": 1_000_000,
        "hidden_dims": [256, 256],
        "critic_hidden_dims": [256, 256],
        "num_critics": 2,
        "actor_lr": 3e-4,
        "beta": 10.0,
        "reward_bias": -1.0,
    },
}


@dataclass
class IQLConfig(OfflineTrainConfig):
    """Train a tanh-Gaussian policy, a critic ensemble and a value network with IQL."""

    scale: Literal["cpu", "paper"] = "cpu"
    """Preset for the fields left unset: cpu (<= 10 min here, 0/1 rewards) or paper (authors')."""
    steps: int | None = None
    """Gradient steps (default: per scale)."""
    batch_size: int = 256
    """Transitions per batch."""
    hidden_dims: list[int] | None = None
    """Actor and value MLP widths (default: per scale)."""
    critic_hidden_dims: list[int] | None = None
    """Critic MLP widths (default: per scale)."""
    num_critics: int | None = None
    """Critic ensemble size; V regresses toward the min over members (default: per scale)."""
    critic_layer_norm: bool = False
    """LayerNorm in the critics (the IQL authors use none)."""
    # Measured here: with IQL's 2 critics, 3k steps took 35 s compiled (compile included), 30 s
    # not; compiling pays for larger ensembles (Cal-QL's 10).
    compile_critic: bool = False
    """torch.compile the critic ensemble's forward (and backward); pays for large ensembles."""
    expectile: float = 0.9
    """Expectile tau of the value regression (authors: 0.7 locomotion, 0.9 antmaze)."""
    beta: float | None = None
    """AWR inverse temperature (authors: 3 locomotion, 10 antmaze; default: per scale)."""
    max_weight: float = 100.0
    """Clip of the AWR weight exp(beta * advantage)."""
    discount: float = 0.99
    """Discount gamma."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    actor_lr: float | None = None
    """Actor Adam learning rate, cosine-decayed to 0 as the authors do (default: per scale)."""
    critic_lr: float = 3e-4
    """Critic and value Adam learning rate."""
    reward_scale: float = 1.0
    """r' = reward_scale * r + reward_bias."""
    reward_bias: float | None = None
    """Added to every scaled reward (default: per scale; cpu 0, paper -1)."""


def expectile_loss(diff: Tensor, expectile: float) -> Tensor:
    """Asymmetric squared loss |tau - 1(diff < 0)| * diff^2, elementwise (diff = target - V)."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return weight * diff.pow(2)


def resolve(cfg: IQLConfig) -> IQLConfig:
    """Fill unset fields from the ``scale`` preset and check the values."""
    if cfg.scale not in PRESETS:
        raise ConfigError(f"unknown scale {cfg.scale!r}; choose from {sorted(PRESETS)}")
    preset = {k: v for k, v in PRESETS[cfg.scale].items() if getattr(cfg, k) is None}
    return replace(cfg, **preset)  # replace() re-runs the per-field checks on preset values


@with_matmul_precision
def train_iql(cfg: IQLConfig, progress: bool = True) -> GaussianPolicy:
    """Run IQL, save the policy (with critics and value net) to ``cfg.out`` and return it."""
    cfg = resolve(cfg)
    check_output(cfg.out, cfg.overwrite)
    generator = seed_everything(cfg.seed)
    dataset, env_info = load_task_dataset(cfg.dataset, cfg.obs_keys, cfg.filter_key)
    dataset = dataset.to(cfg.device)
    policy, critic, target = build_actor_critic(cfg, dataset, env_info)
    normalizer, obs_dim = policy.normalizer, policy.config.obs_dim
    value = mlp(obs_dim, cfg.hidden_dims, 1).to(cfg.device)

    actor_opt = adam(policy.parameters(), lr=cfg.actor_lr)
    actor_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(actor_opt, T_max=cfg.steps)
    critic_opt = adam(critic.parameters(), lr=cfg.critic_lr)
    value_opt = adam(value.parameters(), lr=cfg.critic_lr)
    with make_writer(default_log_dir(cfg), f"iql-{cfg.out.name}") as writer:
        bar = trange(cfg.steps, desc="iql", disable=not progress, leave=False)
        for step in bar:
            batch = dataset.sample(cfg.batch_size, generator=generator)
            with torch.no_grad():
                obs = policy.flat_obs(batch["obs"])
                next_obs = policy.flat_obs(batch["next_obs"])
                action = normalizer.normalize_action(batch["actions"]).clamp(-1.0, 1.0)
                reward = cfg.reward_scale * batch["rewards"] + cfg.reward_bias
                target_q = CriticEnsemble.reduce(target(obs, action), "min")

            v = value(obs).squeeze(-1)
            value_loss = expectile_loss(target_q - v, cfg.expectile).mean()
            value_opt.zero_grad(set_to_none=True)
            value_loss.backward()
            value_opt.step()

            with torch.no_grad():
                next_v = value(next_obs).squeeze(-1)
                td_target = reward + cfg.discount * (1.0 - batch["terminals"]) * next_v
            q = critic(obs, action)
            # Sum of the members' MSEs, so each member learns at the same rate whatever E is.
            critic_loss = (q - td_target).pow(2).mean(dim=1).sum()
            critic_opt.zero_grad(set_to_none=True)
            critic_loss.backward()
            critic_opt.step()
            polyak_update(target, critic, cfg.tau)

            advantage = target_q - v.detach()
            weight = torch.exp(cfg.beta * advantage).clamp(max=cfg.max_weight)
            actor_loss = -(weight * policy.log_prob(batch["obs"], action)).mean()
            actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            actor_opt.step()
            actor_schedule.step()

            if step % 200 == 0 or step == cfg.steps - 1:
                metrics = {
                    "train/critic_loss": critic_loss.item() / cfg.num_critics,
                    "train/value_loss": value_loss.item(),
                    "train/actor_loss": actor_loss.item(),
                    "train/q_mean": q.mean().item(),
                    "train/v_mean": v.mean().item(),
                    "train/advantage_mean": advantage.mean().item(),
                    "train/awr_weight_mean": weight.mean().item(),
                }
                for name, val in metrics.items():
                    writer.add_scalar(name, val, step)
                bar.set_postfix(q=f"{metrics['train/q_mean']:.2f}", pi=f"{actor_loss.item():.2f}")
    policy.eval()
    extra_config, extra_files = critic_checkpoint(critic, target)
    extra_files["value"] = dict(value.state_dict())
    extra_config["value"] = {"hidden_dims": list(cfg.hidden_dims)}
    policy.save(
        cfg.out,
        overwrite=cfg.overwrite,
        extra_config={"train": config_json(cfg), **extra_config},
        extra_files=extra_files,
    )
    return policy


def load_value(policy_dir: str | Path) -> torch.nn.Module:
    """The state-value network V(s) saved in an IQL policy directory (eval mode, frozen)."""
    config = read_config(policy_dir)
    if "value" not in config:
        raise CheckpointError(f"{policy_dir}: config.json has no 'value' entry (not IQL)")
    try:
        value = mlp(config["policy"]["obs_dim"], config["value"]["hidden_dims"], 1)
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{policy_dir}: config.json lacks the value net's shape: {e}") from e
    try:
        value.load_state_dict(load_extra(policy_dir, "value"))
    except RuntimeError as e:
        raise CheckpointError(
            f"{policy_dir}: value.safetensors does not fit its config: {e}"
        ) from e
    return value.eval().requires_grad_(False)


__all__ = ["IQLConfig", "load_value", "train_iql"]
