"""Gaussian behaviour cloning: maximize the likelihood of demonstrated actions."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from tqdm import trange

from robot_rl.algos.common import (
    OfflineTrainConfig,
    config_json,
    default_log_dir,
    load_task_dataset,
    make_writer,
    seed_everything,
    with_matmul_precision,
)
from robot_rl.checkpoint import check_output
from robot_rl.data import Normalizer
from robot_rl.policies.gaussian import GaussianPolicy, GaussianPolicyConfig


@dataclass
class BCConfig(OfflineTrainConfig):
    """Train a tanh-Gaussian MLP policy on demonstrations."""

    hidden_dims: list[int] = field(default_factory=lambda: [256, 256, 256])
    """MLP hidden widths."""
    activation: str = "relu"
    """Hidden activation."""
    steps: int = 20_000
    """Gradient steps."""
    batch_size: int = 256
    """Transitions per batch."""
    lr: float = 1e-3
    """Adam learning rate (cosine-decayed to 0)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""


@with_matmul_precision
def train_bc(cfg: BCConfig, progress: bool = True) -> GaussianPolicy:
    """Fit the policy, save it to ``cfg.out`` and return it."""
    check_output(cfg.out, cfg.overwrite)
    generator = seed_everything(cfg.seed)
    dataset, env_info = load_task_dataset(cfg.dataset, cfg.obs_keys, cfg.filter_key)
    obs_keys = cfg.obs_keys or [k for k, v in dataset.obs.items() if v.is_floating_point()]
    normalizer = Normalizer.fit(dataset, obs_keys, actions="env")
    policy_cfg = GaussianPolicyConfig(
        obs_keys=obs_keys,
        obs_dim=sum(dataset.obs[k].shape[-1] for k in obs_keys),
        action_dim=dataset.action_dim,
        hidden_dims=list(cfg.hidden_dims),
        activation=cfg.activation,
    )
    policy = GaussianPolicy(policy_cfg, normalizer, env_info).to(cfg.device)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.steps)
    with make_writer(default_log_dir(cfg), f"bc-{cfg.out.name}") as writer:
        bar = trange(cfg.steps, desc="bc", disable=not progress, leave=False)
        for step in bar:
            batch = dataset.sample(cfg.batch_size, generator=generator, device=cfg.device)
            target = normalizer.normalize_action(batch["actions"])
            loss = -policy.log_prob(batch["obs"], target).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if step % 200 == 0 or step == cfg.steps - 1:
                value = loss.item()
                writer.add_scalar("train/actor_loss", value, step)
                bar.set_postfix(nll=f"{value:.3f}")
    policy.eval()
    policy.save(cfg.out, overwrite=cfg.overwrite, extra_config={"train": config_json(cfg)})
    return policy
