"""Evaluate a saved policy in its simulation task."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import sim
from robot_rl.errors import ConfigError
from robot_rl.policies import Policy, load_policy
from robot_rl.rollout import RolloutResult, run_episodes
from robot_rl.train.common import check_output


@dataclass
class EvalConfig:
    """Roll out a policy directory in its task and report success, return and length."""

    policy: Path
    """Policy directory (config.json + model.safetensors)."""
    episodes: int = 50
    """Evaluation episodes."""
    num_envs: int = 8
    """Parallel envs."""
    seed: int = 1000
    """Reset seed (kept apart from the demo seeds by default)."""
    deterministic: bool = True
    """Act with the policy's mode rather than sampling."""
    out: Path | None = None
    """JSON results file (default ``<policy>/eval.json``)."""
    device: str = "cpu"
    """Device for the policy."""
    overwrite: bool = False
    """Replace an existing results file."""


def evaluate(
    policy: Policy,
    episodes: int = 50,
    num_envs: int = 8,
    seed: int = 1000,
    deterministic: bool = True,
    progress: bool = False,
) -> RolloutResult:
    """Run ``episodes`` episodes of the policy in the task it was trained for."""
    if episodes < 1 or num_envs < 1:
        raise ConfigError(f"episodes and num_envs must be >= 1, got {episodes}, {num_envs}")
    env_name = policy.env_info.get("env_name")
    env_kwargs = dict(policy.env_info.get("env_kwargs", {}))
    env = sim.make(env_name, num_envs=min(num_envs, episodes), seed=seed, **env_kwargs)
    _check_policy_fits(policy, env)
    policy.eval()

    def act(obs: dict[str, torch.Tensor]) -> torch.Tensor:
        obs = {k: v.to(policy.device) for k, v in obs.items()}
        return policy.act(obs, deterministic=deterministic).to(env.device)

    result = run_episodes(
        env,
        act,
        episodes,
        seed=seed,
        reset_policy=policy.reset,
        progress=progress,
        desc=f"eval {env_name}",
    )
    env.close()
    return result


def run_eval(cfg: EvalConfig, progress: bool = True) -> dict[str, Any]:
    """CLI entry: evaluate and write the JSON report; returns the report."""
    out = cfg.out or cfg.policy / "eval.json"
    check_output(out, cfg.overwrite)
    policy = load_policy(cfg.policy, device=cfg.device)
    result = evaluate(policy, cfg.episodes, cfg.num_envs, cfg.seed, cfg.deterministic, progress)
    report = {
        "policy": str(cfg.policy),
        "task": policy.env_info.get("env_name"),
        "seed": cfg.seed,
        "deterministic": cfg.deterministic,
        **result.summary(),
    }
    write_json(out, report)
    return report


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (temp file in the same directory, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def _check_policy_fits(policy: Policy, env: sim.ManipulationEnv) -> None:
    spaces = env.observation_space.spaces
    missing = [k for k in policy.obs_keys if k not in spaces]
    if missing:
        raise ConfigError(
            f"policy reads observations {missing} that task {env.name!r} does not provide"
        )
    action_dim = getattr(policy.config, "action_dim", env.action_dim)
    if action_dim != env.action_dim:
        raise ConfigError(
            f"policy outputs {action_dim}-dim actions but task {env.name!r} "
            f"({env.controller}) takes {env.action_dim}"
        )
