"""Record episodes from any ``VecEnv`` with any policy or scripted controller into a
robomimic-layout HDF5 file (the layout :func:`robot_rl.data.write_robomimic` writes).

:func:`record_episodes` is the library entry (an env and an act function in hand);
:func:`run_record` is the CLI entry: it resolves an env spec through :func:`sim.make_env` and
acts with a policy directory (``policy``) or the env's registered scripted expert.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from robot_rl.algos.common import check_device, check_fields
from robot_rl.data import write_robomimic
from robot_rl.envs import make_env_checked, parse_env_kwargs
from robot_rl.errors import ConfigError, OutputExistsError
from robot_rl.outputs import claim_output
from robot_rl.rollout import ActFn, run_episodes
from sim.errors import SimError
from sim.registry import resolve_env
from sim.vec_env import Obs, VecEnv, check_vec_env, env_kwargs_of, env_name


@dataclass
class RecordConfig:
    """Record episodes from an env with a policy directory or a scripted expert."""

    env: str
    """Env spec: a built-in task, a registered or entry-point name, module:factory, or a
    gymnasium id (gym:Reacher-v5)."""
    out: Path
    """Output HDF5 file."""
    episodes: int = 100
    """Episodes to write."""
    policy: Path | None = None
    """Policy directory to act with (default: the env's scripted expert)."""
    expert: str | None = None
    """Scripted expert name (default: the env's name)."""
    env_kwargs: str = "{}"
    """JSON object of keyword arguments for the env factory."""
    noise_std: float = 0.0
    """Scripted expert: Gaussian action noise."""
    deterministic: bool = True
    """Policy: act with its mode rather than sampling."""
    only_success: bool = False
    """Keep successful episodes only (collects until ``episodes`` successes)."""
    num_envs: int = 8
    """Parallel envs."""
    seed: int = 0
    """Seed for resets and noise."""
    device: str = "cpu"
    """Device of the env and policy."""
    overwrite: bool = False
    """Replace ``out`` if it is an HDF5 file."""

    def __post_init__(self) -> None:
        check_device(self.device)
        check_fields(self)
        parse_env_kwargs(self.env_kwargs)


@dataclass
class RecordReport:
    """What a recording run produced."""

    episodes: int
    success_rate: float
    """Over every episode run (including those dropped by ``only_success``)."""
    mean_length: float
    rounds: int


def record_episodes(
    env: VecEnv,
    act: ActFn,
    episodes: int,
    out: Path,
    *,
    env_spec: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    only_success: bool = False,
    reset_policy: Callable[[torch.Tensor], None] | None = None,
    on_episode_start: Callable[[torch.Tensor], None] | None = None,
    episode_attrs: Callable[[int], dict[str, Any]] | None = None,
    generator: dict[str, Any] | None = None,
    overwrite: bool = False,
    max_rounds: int = 20,
    progress: bool = False,
) -> RecordReport:
    """Run ``act`` in ``env`` for ``episodes`` episodes and write them to ``out``.

    ``env_args`` in the file: ``env_name`` and ``env_kwargs`` from :func:`rebuild_spec` (pass
    ``env_spec`` so :func:`sim.make_env` can rebuild the env), and ``generator`` (how the file
    was made). States are stored
    when the env has ``get_state()``.
    """
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} exists; pass --overwrite to replace it")
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    kept: list[dict[str, Any]] = []
    success: list[bool] = []
    lengths: list[int] = []
    rounds = 0
    while len(kept) < episodes:
        if rounds >= max_rounds:
            raise ConfigError(
                f"only {len(kept)} of {episodes} successful episodes after {rounds} rounds"
            )
        result = run_episodes(
            env,
            act,
            episodes - len(kept),
            seed=seed + rounds,
            record=True,
            on_episode_start=on_episode_start,
            reset_policy=reset_policy,
            episode_attrs=episode_attrs,
            progress=progress,
            desc=f"record {env_name(env)}",
        )
        rounds += 1
        for ep in result.episodes:
            success.append(bool(ep["attrs"]["success"]))
            lengths.append(len(ep["actions"]))
            if ep["attrs"]["success"] or not only_success:
                kept.append(ep)
    kept = kept[:episodes]
    name, kwargs = rebuild_spec(env, env_spec, env_kwargs)
    env_args = {
        "env_name": name,
        "env_type": "robot_rl",
        "env_kwargs": kwargs,
        "generator": generator or {},
    }
    write_robomimic(out, kept, env_args, overwrite=overwrite, seed=seed)
    return RecordReport(
        episodes=len(kept),
        success_rate=sum(success) / max(len(success), 1),
        mean_length=sum(lengths) / max(len(lengths), 1),
        rounds=rounds,
    )


def policy_actor(
    policy_dir: Path, env: VecEnv, device: str = "cpu", deterministic: bool = True
) -> tuple[ActFn, Callable[[torch.Tensor], None]]:
    """``(act, reset)`` for a saved policy, after checking it fits ``env``'s spaces."""
    from robot_rl.policies import load_policy

    policy = load_policy(policy_dir, device=device)
    missing = [k for k in policy.obs_keys if k not in env.observation_space.spaces]
    if missing:
        raise ConfigError(
            f"policy {policy_dir} reads observations {missing} that env {env_name(env)!r} "
            f"does not provide (it has {sorted(env.observation_space.spaces)})"
        )
    action_dim = getattr(policy.config, "action_dim", env.action_dim)
    if action_dim != env.action_dim:
        raise ConfigError(
            f"policy {policy_dir} outputs {action_dim}-dim actions but env "
            f"{env_name(env)!r} takes {env.action_dim}"
        )
    policy.eval()

    def act(obs: Obs) -> torch.Tensor:
        obs = {k: v.to(policy.device) for k, v in obs.items()}
        return policy.act(obs, deterministic=deterministic).to(env.device)

    return act, policy.reset


def rebuild_spec(
    env: VecEnv, env_spec: str | None, env_kwargs: dict[str, Any] | None
) -> tuple[str, dict[str, Any]]:
    """The (spec, options) pair that rebuilds ``env`` through the env registry.

    An env that names itself with a spec the registry resolves (``gym:Reacher-v5``, ``push``)
    is recorded under that name with its own ``env_kwargs``, so a file recorded through a
    user's ``module:factory`` wrapper replays without that module; otherwise the spec it was
    built from, with the options it was given.
    """
    own_name, own_kwargs = env_name(env), env_kwargs_of(env)
    if env_spec is None or own_name == env_spec:
        return own_name, own_kwargs or dict(env_kwargs or {})
    if own_kwargs:
        try:
            resolve_env(own_name)
        except SimError:
            pass
        else:
            return own_name, own_kwargs
    return env_spec, dict(env_kwargs or {})


def run_record(cfg: RecordConfig, progress: bool = True) -> RecordReport:
    """CLI entry: build the env from its spec, pick the actor, record, write ``cfg.out``."""
    if cfg.out.exists() and not cfg.overwrite:
        raise OutputExistsError(f"{cfg.out} exists; pass --overwrite to replace it")
    with claim_output(cfg.out, "hdf5", cfg.overwrite, [cfg.policy]):
        return _record(cfg, progress)


def _record(cfg: RecordConfig, progress: bool) -> RecordReport:
    from sim.expert_registry import make_expert

    kwargs = parse_env_kwargs(cfg.env_kwargs)
    if cfg.policy is not None:
        from robot_rl.checkpoint import read_config

        read_config(cfg.policy)  # a missing or broken policy fails before the env is built
    env = make_env_checked(
        cfg.env, min(cfg.num_envs, cfg.episodes), cfg.seed, device=cfg.device, **kwargs
    )
    check_vec_env(env)
    reset: Callable[[torch.Tensor], None] | None = None
    if cfg.policy is not None:
        act, reset = policy_actor(cfg.policy, env, cfg.device, cfg.deterministic)
    else:
        act = make_expert(env, noise_std=cfg.noise_std, seed=cfg.seed, name=cfg.expert).act
    generator = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}
    try:
        return record_episodes(
            env, act, cfg.episodes, cfg.out, env_spec=cfg.env, env_kwargs=kwargs,
            seed=cfg.seed, only_success=cfg.only_success, reset_policy=reset,
            generator=generator, overwrite=cfg.overwrite, progress=progress,
        )  # fmt: skip
    finally:
        close = getattr(env, "close", None)
        if close is not None:
            close()


__all__ = [
    "RecordConfig",
    "RecordReport",
    "parse_env_kwargs",
    "policy_actor",
    "record_episodes",
    "run_record",
]
