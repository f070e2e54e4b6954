"""WSRL (Zhou et al., ICLR 2025): warm-start SAC from a Cal-QL policy, no offline data kept.

Recipe (``ALGORITHMS.md``): start actor, 10 critics and temperature from Cal-QL; run the
frozen pretrained policy for K = 5,000 env steps into an empty buffer; then SAC on online
data only: TD target the min over a random pair, no entropy backup, the actor maximizing the
min over all critics, target entropy -|A|, UTD 4 (one actor step on the whole 1,024 rows),
Adam actor 1e-4, critic 3e-4, temperature 1e-4.

cpu preset, measured deviations (lift, 4k-step Cal-QL start at 0.52): a short Cal-QL run stops
with its temperature far above equilibrium (0.75, still falling at lr 1e-4); from there the
actor's entropy rose from -1 to +0.7 within 300 updates and success fell to 0.16 (0.10 with a
5k warmup). Starting at temperature 0.1 held entropy near the -|A| target; adding 250
critic-only updates after the warmup, so the critics fit online data before the actor follows
them, gave 0.52 / 0.52 / 0.34 minimum success on seeds 0-2 (critic-only phase alone: 0.42 /
0.34; discount 0.95 collapsed to 0).

Reward convention: the critics keep the one they were pretrained under, read from the start
policy's ``config.json`` (``reward``, or an offline trainer's ``train`` settings), so a WSRL run
started from an earlier fine-tuning run's ``policy/`` keeps it too; 10 r - 5 only if the start
records none (or with ``--fresh-critic``).
"""

from __future__ import annotations

from typing import Any

import torch

from robot_rl.algos.agent import OnlineConfig, RewardConvention
from robot_rl.algos.sac import SACAgent, build_agent
from robot_rl.errors import ConfigError

DESCRIPTION = "warm start from a Cal-QL policy with critics, online data only (needs --init)"

_SHARED: dict[str, Any] = {
    "batch_size": 256, "num_critics": 10, "critic_hidden_dims": [256, 256], "random_steps": 0,
    "offline_ratio": 0.0, "from_scratch": False, "target_entropy_per_dim": -1.0,
    "entropy_backup": False, "actor_reduce": "min", "temperature_lr": 1e-4,
}  # fmt: skip
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {**_SHARED, "num_envs": 8, "updates_per_collect": 1, "utd": 4, "warmup_steps": 2000,
            "init_temperature": 0.1, "actor_delay_updates": 250},
    "paper": {**_SHARED, "num_envs": 1, "updates_per_collect": 1, "utd": 4,
              "warmup_steps": 5000, "actor_delay_updates": 0},
    # FastTD3-style (see sac.PRESETS["gpu"]) around WSRL's recipe: the 5k warmup becomes 5
    # vector steps of 1024 envs; the Cal-QL critics are kept, so their widths are the start's.
    "gpu": {**_SHARED, "num_envs": 1024, "updates_per_collect": 8, "utd": 1,
            "batch_size": 32768, "warmup_steps": 5120, "actor_delay_updates": 0,
            "compile_critic": True, "replay_capacity": 10_240_000},
}  # fmt: skip

REWARD = RewardConvention(scale=10.0, bias=-5.0, discount=0.99)
"""Only for new critics (--fresh-critic) or a start that records no convention."""

ACTOR_LR = 1e-4


def build(cfg: OnlineConfig, env: Any, generator: torch.Generator) -> SACAgent:
    """Actor, critics, temperature and reward convention from the Cal-QL start."""
    if cfg.init is None:
        raise ConfigError("wsrl needs --init, a Cal-QL policy directory with critics")
    return build_agent(cfg, env, generator, keep_critics=True, actor_full_batch=True,
                       actor_lr=ACTOR_LR, default_reward=REWARD)  # fmt: skip


__all__ = ["ACTOR_LR", "DESCRIPTION", "PRESETS", "REWARD", "build"]
