"""Evaluate a policy in any ``VecEnv``; check that a policy or dataset spec fits an env."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from robot_rl.algos.common import check_device, check_fields
from robot_rl.checkpoint import check_output, current_umask
from robot_rl.envs import make_env_checked, parse_env_kwargs
from robot_rl.errors import ConfigError
from robot_rl.outputs import claim_output
from robot_rl.policies import Policy, load_policy
from robot_rl.rollout import RolloutResult, run_episodes
from sim.vec_env import VecEnv, check_vec_env, env_name


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
    env_kwargs: str = "{}"
    """JSON object of env options, over those the policy recorded (e.g. '{"horizon": 80}')."""
    overwrite: bool = False
    """Replace an existing results file."""

    def __post_init__(self) -> None:
        check_device(self.device)
        check_fields(self)
        parse_env_kwargs(self.env_kwargs)


def policy_env(
    policy: Policy,
    num_envs: int,
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> VecEnv:
    """Build the env a policy recorded (``env_info``) through the env registry; ``env_kwargs``
    override the recorded options."""
    name = policy.env_info.get("env_name")
    if not name or not isinstance(name, str):
        raise ConfigError("the policy records no env (env_info.env_name); pass an env spec")
    recorded = policy.env_info.get("env_kwargs") or {}
    if not isinstance(recorded, dict):
        raise ConfigError(f"the policy's env_info.env_kwargs is not an object: {recorded!r}")
    return make_env_checked(name, num_envs, seed, **{**recorded, **(env_kwargs or {})})


def evaluate(
    policy: Policy,
    env: VecEnv,
    episodes: int = 50,
    seed: int = 1000,
    deterministic: bool = True,
    progress: bool = False,
) -> RolloutResult:
    """Run ``episodes`` episodes of the policy in ``env`` (the caller owns and closes it)."""
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    check_vec_env(env, step=False)
    check_policy_fits_env(policy, env)
    policy.eval()

    def act(obs: dict[str, torch.Tensor]) -> torch.Tensor:
        obs = {k: v.to(policy.device) for k, v in obs.items()}
        return policy.act(obs, deterministic=deterministic).to(env.device)

    # Sampled actions draw from torch's RNG: seed it (in a fork, leaving the caller's stream
    # alone) so two evaluations with one seed act, and report, alike.
    cuda = [policy.device] if policy.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        return run_episodes(
            env,
            act,
            episodes,
            seed=seed,
            reset_policy=policy.reset,
            progress=progress,
            desc=f"eval {env_name(env)}",
        )


def check_policy_fits_env(policy: Policy, env: VecEnv) -> None:
    """Raise ConfigError when the policy reads observations ``env`` lacks or acts in another
    action size."""
    missing = [k for k in policy.obs_keys if k not in env.observation_space.spaces]
    if missing:
        raise ConfigError(
            f"policy reads observations {missing} that env {env_name(env)!r} does not provide"
        )
    obs_dims = {k: tuple(env.observation_space.spaces[k].shape) for k in policy.obs_keys}
    action_dim = getattr(policy.config, "action_dim", env.action_dim)
    check_spec_fits_env(obs_dims, action_dim, env, "policy")


def run_eval(cfg: EvalConfig, progress: bool = True) -> dict[str, Any]:
    """CLI entry: evaluate and write the JSON report; returns the report."""
    out = cfg.out or cfg.policy / "eval.json"
    check_output(out, cfg.overwrite)
    policy = load_policy(cfg.policy, device=cfg.device)
    with claim_output(out, "json", cfg.overwrite, [cfg.policy / "config.json"]):
        kwargs = parse_env_kwargs(cfg.env_kwargs)
        env = policy_env(policy, min(cfg.num_envs, cfg.episodes), cfg.seed, kwargs)
        try:
            result = evaluate(policy, env, cfg.episodes, cfg.seed, cfg.deterministic, progress)
        finally:
            env.close()
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
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's 0600 -> the user's umask
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_spec_fits_env(
    obs_dims: dict[str, tuple[int, ...]], action_dim: int, env: VecEnv, what: str
) -> None:
    """Raise :class:`ConfigError` when ``what``'s observation keys or action size do not fit ``env``.

    ``what`` names the source in the message (a dataset or policy path).
    """
    name = env_name(env)
    if action_dim != env.action_dim:
        raise ConfigError(
            f"{what}: actions have {action_dim} dims but env {name!r} takes {env.action_dim}"
        )
    for key, shape in obs_dims.items():
        space = env.observation_space.spaces.get(key)
        if space is None:
            raise ConfigError(
                f"{what}: observation {key!r} does not exist in env {name!r} "
                f"(it has {sorted(env.observation_space.spaces)})"
            )
        if tuple(space.shape) != tuple(shape):
            raise ConfigError(
                f"{what}: observation {key!r} has shape {tuple(shape)} but env {name!r} "
                f"gives {tuple(space.shape)}"
            )
