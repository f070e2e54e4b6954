"""RLPD (Ball et al. 2023): SAC with symmetric 50/50 offline/online batches.

Recipe (``ALGORITHMS.md``): LayerNorm critics, a 10-critic ensemble with the TD target as the
min over a random pair, UTD 20, the actor maximizing the ensemble mean, target entropy
-|A|/2, 5k uniform-random steps first, lr 3e-4, tau 0.005, gamma 0.99. The actor starts from
scratch (``--init`` only lends its normalizer, or its actor with ``--no-from-scratch``).

cpu preset, measured: 4 update calls of UTD 4 per vector step of 8 envs (2 critic steps per env
step; the paper: 20). With 1 call, lift stayed at 0.00 for 20k env steps on every seed; with 4
it reached 1.00 by 28k / 20k env steps on seeds 0 / 1 (from scratch, 50/50 with 200 mixed
demos).

Reward convention: new critics learn on 10 r - 5 (gamma 0.99) unless ``--reward-scale`` /
``--reward-bias`` / ``--discount`` say otherwise; recorded in ``policy/config.json``.
"""

from __future__ import annotations

from typing import Any

import torch

from robot_rl.algos.agent import OnlineConfig, RewardConvention
from robot_rl.algos.sac import SACAgent, build_agent

DESCRIPTION = "SAC + 50/50 offline/online batches, 10 critics (needs --dataset or --init)"

_SHARED: dict[str, Any] = {
    "batch_size": 256, "num_critics": 10, "warmup_steps": 0, "actor_delay_updates": 0,
    "offline_ratio": 0.5, "from_scratch": True, "target_entropy_per_dim": -0.5,
    "entropy_backup": True, "actor_reduce": "mean", "temperature_lr": 3e-4,
}  # fmt: skip
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {**_SHARED, "num_envs": 8, "updates_per_collect": 4, "utd": 4,
            "critic_hidden_dims": [128, 128], "random_steps": 1000},
    "paper": {**_SHARED, "num_envs": 1, "updates_per_collect": 1, "utd": 20,
              "critic_hidden_dims": [256, 256], "random_steps": 5000},
    # FastTD3-style (see sac.PRESETS["gpu"]): 1024 envs, 8 update calls of 32,768 rows (half
    # offline) per vector step, 10 LayerNorm critics of 512-512, compiled.
    "gpu": {**_SHARED, "num_envs": 1024, "updates_per_collect": 8, "utd": 1,
            "batch_size": 32768, "critic_hidden_dims": [512, 512], "random_steps": 10240,
            "compile_critic": True, "replay_capacity": 10_240_000},
}  # fmt: skip

REWARD = RewardConvention(scale=10.0, bias=-5.0, discount=0.99)


def build(cfg: OnlineConfig, env: Any, generator: torch.Generator) -> SACAgent:
    """New critics, the actor from scratch, half of every batch from the offline data."""
    return build_agent(cfg, env, generator, keep_critics=False, actor_full_batch=False,
                       actor_lr=3e-4, default_reward=REWARD)  # fmt: skip


__all__ = ["DESCRIPTION", "PRESETS", "REWARD", "build"]
