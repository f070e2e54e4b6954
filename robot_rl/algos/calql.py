"""Cal-QL (Nakamoto et al. 2023): CQL whose pessimism stops at the Monte-Carlo return.

The critic ensemble learns by TD with a max-target backup (max over sampled next actions of
the min over a random subset of target critics; no entropy in the backup) plus the CQL
regularizer alpha * [logsumexp over sampled actions of Q - Q(s, a_data)]. The sampled actions
are n uniform, n from pi(s) and n from pi(s'), importance-corrected by their densities.
Cal-QL clips Q of the policy's actions from below at the dataset's return-to-go, so Q is
pushed down only where it exceeds what the behaviour policy achieved. The actor is SAC's
(with a learned temperature, target entropy -|A|) against the ensemble min.

Rewards: the tasks' sparse reward is 1 on the success step, which ends the episode. We train
on r' = 10 r - 5 by default (the authors' antmaze setting): failing steps cost 5, an
all-failure episode has MC value -5 / (1 - gamma), and success pays 5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
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
from robot_rl.checkpoint import check_output
from robot_rl.data.returns import mc_returns
from robot_rl.errors import ConfigError
from robot_rl.perf import adam
from robot_rl.policies.critic import (
    CriticEnsemble,
    critic_checkpoint,
    polyak_update,
)
from robot_rl.policies.gaussian import GaussianPolicy

PRESETS: dict[str, dict[str, Any]] = {
    # One run <= 10 minutes on one CPU thread: narrow critics, one CQL sample per kind.
    "cpu": {
        "steps": 6_000,
        "hidden_dims": [256, 256],
        "critic_hidden_dims": [128, 128],
        "num_critics": 10,
        "cql_n_actions": 1,
    },
    # The authors' settings (10 critics as WSRL pretrains them; 4x256 critics as antmaze).
    "paper": {
        "steps": 1_000_000,
        "hidden_dims": [256, 256],
        "critic_hidden_dims": [256, 256, 256, 256],
        "num_critics": 10,
        "cql_n_actions": 10,
    },
}


@dataclass
class CalQLConfig(OfflineTrainConfig):
    """Train a tanh-Gaussian policy, a critic ensemble and a temperature with Cal-QL."""

    scale: Literal["cpu", "paper"] = "cpu"
    """Preset for the fields left unset: cpu (small, <= 10 min here) or paper (authors')."""
    steps: int | None = None
    """Gradient steps (default: per scale)."""
    batch_size: int = 256
    """Transitions per batch."""
    hidden_dims: list[int] | None = None
    """Actor MLP widths (default: per scale)."""
    critic_hidden_dims: list[int] | None = None
    """Critic MLP widths (default: per scale)."""
    num_critics: int | None = None
    """Critic ensemble size (default: per scale)."""
    critic_layer_norm: bool = True
    """LayerNorm in the critics (as WSRL's pretrained ensemble)."""
    # Measured here: 3k cpu-preset steps took 87 s compiled (compile included), 114 s not.
    compile_critic: bool = False
    """torch.compile the critic ensemble's forward (and backward), fusing its LayerNorm and
    activation passes (README: timings)."""
    target_subset: int = 2
    """TD target: min over this many target critics drawn at random each step."""
    cql_n_actions: int | None = None
    """Actions sampled per kind (uniform, pi(s), pi(s')) for the CQL term (default: per scale)."""
    cql_alpha: float = 5.0
    """CQL weight (with ``cql_lagrange``, it multiplies the tuned alpha')."""
    cql_lagrange: bool = False
    """Tune alpha' by dual descent so the CQL gap stays at ``cql_target_action_gap``."""
    cql_target_action_gap: float = 0.8
    """Target of the Lagrange-tuned CQL gap."""
    cql_temperature: float = 1.0
    """Temperature of the CQL logsumexp."""
    calibrated: bool = True
    """Clip policy-action Q from below at the MC return (Cal-QL); False gives plain CQL."""
    max_target_backup: bool = True
    """TD target: max over ``cql_n_actions`` next-action samples instead of one."""
    actor_lr: float = 1e-4
    """Actor Adam learning rate."""
    critic_lr: float = 3e-4
    """Critic (and alpha') Adam learning rate."""
    temperature_lr: float = 1e-4
    """Temperature Adam learning rate."""
    init_temperature: float = 1.0
    """Initial SAC temperature."""
    target_entropy: float | None = None
    """SAC target entropy (default -|A|)."""
    discount: float = 0.99
    """Discount gamma (also of the MC returns)."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    reward_scale: float = 10.0
    """r' = reward_scale * r + reward_bias."""
    reward_bias: float = -5.0
    """Added to every scaled reward; negative so failing steps cost."""


def resolve(cfg: CalQLConfig) -> CalQLConfig:
    """Fill unset fields from the ``scale`` preset and check the values."""
    if cfg.scale not in PRESETS:
        raise ConfigError(f"unknown scale {cfg.scale!r}; choose from {sorted(PRESETS)}")
    preset = {k: v for k, v in PRESETS[cfg.scale].items() if getattr(cfg, k) is None}
    cfg = replace(cfg, **preset)  # replace() re-runs the per-field checks on preset values
    if not 1 <= cfg.target_subset <= cfg.num_critics:
        raise ConfigError(
            f"target_subset must be in [1, num_critics={cfg.num_critics}], got {cfg.target_subset}"
        )
    return cfg


@with_matmul_precision
def train_calql(cfg: CalQLConfig, progress: bool = True) -> GaussianPolicy:
    """Run Cal-QL, save the policy (with critics and temperature) to ``cfg.out``, return it."""
    cfg = resolve(cfg)
    check_output(cfg.out, cfg.overwrite)
    generator = seed_everything(cfg.seed)
    dataset, env_info = load_task_dataset(cfg.dataset, cfg.obs_keys, cfg.filter_key)
    dataset = dataset.to(cfg.device)
    mc = mc_returns(
        dataset, cfg.discount, reward_scale=cfg.reward_scale, reward_bias=cfg.reward_bias
    )
    policy, critic, target = build_actor_critic(cfg, dataset, env_info)
    normalizer, action_dim = policy.normalizer, dataset.action_dim
    log_temp = torch.tensor(math.log(cfg.init_temperature), device=cfg.device, requires_grad=True)
    log_cql_alpha = torch.zeros((), device=cfg.device, requires_grad=True)
    target_entropy = -float(action_dim) if cfg.target_entropy is None else cfg.target_entropy

    actor_opt = adam(policy.parameters(), lr=cfg.actor_lr)
    critic_opt = adam(critic.parameters(), lr=cfg.critic_lr)
    temp_opt = adam([log_temp], lr=cfg.temperature_lr)
    cql_alpha_opt = adam([log_cql_alpha], lr=cfg.critic_lr)
    n, b = cfg.cql_n_actions, cfg.batch_size
    with make_writer(default_log_dir(cfg), f"calql-{cfg.out.name}") as writer:
        bar = trange(cfg.steps, desc="calql", disable=not progress, leave=False)
        for step in bar:
            batch = dataset.sample(b, generator, extras={"mc": mc})
            with torch.no_grad():
                obs = policy.flat_obs(batch["obs"])
                next_obs = policy.flat_obs(batch["next_obs"])
                action = normalizer.normalize_action(batch["actions"]).clamp(-1.0, 1.0)
                reward = cfg.reward_scale * batch["rewards"] + cfg.reward_bias

            # Actor and temperature (SAC) against the ensemble min.
            temperature = log_temp.exp()
            actor_loss, log_pi, q_pi = calql_actor_loss(
                policy, critic, batch["obs"], obs, temperature
            )
            actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            actor_opt.step()
            temp_loss = -(log_temp * (log_pi.detach() + target_entropy)).mean()
            temp_opt.zero_grad(set_to_none=True)
            temp_loss.backward()
            temp_opt.step()

            with torch.no_grad():
                # TD target: max over next-action samples of a random-subset min, no entropy.
                k = n if cfg.max_target_backup else 1
                next_rep = _repeat(batch["next_obs"], k)
                next_actions, _ = policy.sample(next_rep)
                q_next = target(next_obs.repeat_interleave(k, 0), next_actions)
                q_next = CriticEnsemble.subset_min(q_next, cfg.target_subset, generator=generator)
                q_next = q_next.view(b, k).max(dim=1).values
                td_target = calql_td_target(reward, batch["terminals"], q_next, cfg.discount)

                # CQL proposals at s: uniform, pi(s) and pi(s') actions, n each.
                obs_rep = _repeat(batch["obs"], n)
                rand_actions = torch.rand(b * n, action_dim, device=obs.device) * 2.0 - 1.0
                cur_actions, cur_log_pi = policy.sample(obs_rep)
                nxt_actions, nxt_log_pi = policy.sample(_repeat(batch["next_obs"], n))

            q_data = critic(obs, action)
            td_loss = (q_data - td_target).pow(2).mean(dim=1).sum()
            # One batched critic call for all 3n proposals per state: [E, 3, B, n].
            q_prop = critic(
                obs.repeat_interleave(n, 0).repeat(3, 1),
                torch.cat([rand_actions, cur_actions, nxt_actions]),
            ).view(cfg.num_critics, 3, b, n)
            q_rand, q_cur, q_nxt = q_prop.unbind(1)
            cql_gap = cql_action_gap(
                q_data,
                q_rand,
                q_cur,
                q_nxt,
                cur_log_pi.view(b, n),
                nxt_log_pi.view(b, n),
                action_dim,
                cql_temperature=cfg.cql_temperature,
                mc_return=batch["mc"] if cfg.calibrated else None,
            )
            if cfg.cql_lagrange:
                cql_alpha = log_cql_alpha.exp().clamp(0.0, 1e6) * cfg.cql_alpha
                cql_loss = (cql_alpha.detach() * (cql_gap - cfg.cql_target_action_gap)).sum()
                alpha_loss = -(cql_alpha * (cql_gap.detach() - cfg.cql_target_action_gap)).mean()
                cql_alpha_opt.zero_grad(set_to_none=True)
                alpha_loss.backward()
                cql_alpha_opt.step()
            else:
                cql_alpha = torch.tensor(cfg.cql_alpha)
                cql_loss = cfg.cql_alpha * cql_gap.sum()
            critic_opt.zero_grad(set_to_none=True)
            (td_loss + cql_loss).backward()
            critic_opt.step()
            polyak_update(target, critic, cfg.tau)

            if step % 200 == 0 or step == cfg.steps - 1:
                metrics = {
                    "train/critic_loss": td_loss.item() / cfg.num_critics,
                    "train/cql_loss": cql_loss.item() / cfg.num_critics,
                    "train/cql_gap": cql_gap.mean().item(),
                    "train/cql_alpha": cql_alpha.item(),
                    "train/actor_loss": actor_loss.item(),
                    "train/temperature": temperature.item(),
                    "train/entropy": -log_pi.mean().item(),
                    "train/q_mean": q_data.mean().item(),
                    "train/q_pi_mean": q_pi.mean().item(),
                    "train/q_rand_mean": q_rand.mean().item(),
                    "train/mc_mean": batch["mc"].mean().item(),
                }
                for name, val in metrics.items():
                    writer.add_scalar(name, val, step)
                bar.set_postfix(q=f"{metrics['train/q_mean']:.1f}", gap=f"{cql_gap.mean():.2f}")
    policy.eval()
    extra_config, extra_files = critic_checkpoint(critic, target, log_temp.exp().item())
    if cfg.cql_lagrange:
        extra_config["cql_alpha"] = (log_cql_alpha.exp() * cfg.cql_alpha).item()
    policy.save(
        cfg.out,
        overwrite=cfg.overwrite,
        extra_config={"train": config_json(cfg), **extra_config},
        extra_files=extra_files,
    )
    return policy


def calql_actor_loss(
    policy: GaussianPolicy,
    critic: CriticEnsemble,
    obs: dict[str, Tensor],
    flat_obs: Tensor,
    temperature: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """SAC's actor loss E[temperature * log pi - min_i Q_i(s, a~pi)]; also log pi and Q.

    The critics' parameters are frozen while the loss is built, so its backward pass reaches
    the actor through the action only and writes no critic gradients (the critic step would
    discard them, after paying for them).
    """
    pi_action, log_pi = policy.sample(obs)
    params = list(critic.parameters())
    was = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        q_pi = CriticEnsemble.reduce(critic(flat_obs, pi_action), "min")
    finally:
        for p, r in zip(params, was, strict=True):
            p.requires_grad_(r)
    return (temperature.detach() * log_pi - q_pi).mean(), log_pi, q_pi


def calql_td_target(reward: Tensor, terminals: Tensor, q_next: Tensor, discount: float) -> Tensor:
    """Backup r + gamma * (1 - terminal) * Q(s', a'): no bootstrap past a terminal step."""
    return reward + discount * (1.0 - terminals) * q_next


def calibrated_q(q_pi: Tensor, mc_return: Tensor) -> Tensor:
    """Cal-QL's calibration: policy-action Q [E, B, n] clipped from below at the return [B]."""
    return torch.maximum(q_pi, mc_return.unsqueeze(-1))


def cql_action_gap(
    q_data: Tensor,
    q_rand: Tensor,
    q_cur: Tensor,
    q_nxt: Tensor,
    cur_log_pi: Tensor,
    nxt_log_pi: Tensor,
    action_dim: int,
    *,
    cql_temperature: float = 1.0,
    mc_return: Tensor | None = None,
) -> Tensor:
    """CQL's gap per critic [E]: the batch mean of the soft maximum over proposals of Q minus
    Q(s, a_data); minimizing it pushes proposal Q down and data Q up.

    Args:
        q_data: Q(s, a_data) [E, B].
        q_rand, q_cur, q_nxt: Q of n uniform, pi(s) and pi(s') actions at s, [E, B, n].
        cur_log_pi, nxt_log_pi: log densities of the pi(s) and pi(s') actions, [B, n].
        action_dim: action size A (the uniform proposal's density is 2^-A).
        cql_temperature: temperature of the logsumexp.
        mc_return: the states' Monte-Carlo returns [B]; given, pi(s) and pi(s') Q are
            clipped from below at them (Cal-QL), else plain CQL.
    """
    if mc_return is not None:
        q_cur = calibrated_q(q_cur, mc_return)
        q_nxt = calibrated_q(q_nxt, mc_return)
    # Importance correction by the proposals' densities (uniform on [-1, 1]^A: 2^-A each).
    uniform_log_density = -action_dim * math.log(2.0)
    proposals = torch.cat(
        [q_rand - uniform_log_density, q_nxt - nxt_log_pi, q_cur - cur_log_pi], dim=-1
    )
    ood = torch.logsumexp(proposals / cql_temperature, dim=-1) * cql_temperature
    return (ood - q_data).mean(dim=1)


def _repeat(obs: dict[str, Tensor], n: int) -> dict[str, Tensor]:
    """Each observation repeated n times in a row: [B, ...] -> [B * n, ...]."""
    return {k: v.repeat_interleave(n, 0) for k, v in obs.items()}


__all__ = ["CalQLConfig", "train_calql"]
