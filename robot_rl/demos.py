"""Scripted demonstrations written as robomimic-layout HDF5.

``expert`` quality runs the task's scripted expert with small action noise. ``mixed``
quality draws each episode's demonstrator: an expert (``expert_fraction``), a noisy expert
(action noise 0.2-0.5), or a failing one that aims 5-8 cm beside the object, so the file has
the spread of outcomes offline RL learns from.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch

from robot_rl.algos.common import check_fields
from robot_rl.checkpoint import check_output
from robot_rl.data import write_robomimic
from robot_rl.envs import make_env_checked, parse_env_kwargs
from robot_rl.errors import ConfigError
from robot_rl.outputs import claim_output
from robot_rl.rollout import run_episodes
from sim.expert_registry import make_expert
from sim.vec_env import env_kwargs_of


@dataclass
class DemosConfig:
    """Generate scripted demonstrations for a task."""

    task: str = "push"
    """Env spec with a scripted expert: a built-in task (reach, push, lift, push_obstacle),
    point, or any env whose name has a registered expert."""
    episodes: int = 100
    """Episodes to write."""
    out: Path = Path("data/push_expert.hdf5")
    """Output HDF5 file."""
    quality: Literal["expert", "mixed"] = "expert"
    """expert: scripted expert with small noise; mixed: expert, noisy and failing episodes."""
    noise_std: float = 0.05
    """Action noise of the expert episodes."""
    expert_fraction: float = 0.3
    """mixed only: share of expert episodes; the rest splits 4:3 into noisy and failing."""
    only_success: bool = False
    """Keep successful episodes only (collects until ``episodes`` successes)."""
    num_envs: int = 16
    """Parallel envs."""
    controller: str | None = None
    """Built-in tasks: action space ee_delta (the task default) or joint_delta."""
    reward_type: str | None = None
    """Reward stored in the file: sparse (1 on success, the default) or dense (shaped)."""
    env_kwargs: str = "{}"
    """JSON object of env options (e.g. '{"horizon": 80}'); --controller and --reward-type
    are shorthands for two of them."""
    seed: int = 0
    """Seed for resets, noise and demonstrator draws."""
    overwrite: bool = False
    """Replace ``out`` if it is an HDF5 file."""

    def __post_init__(self) -> None:
        check_fields(self)
        if not 0.0 <= self.expert_fraction <= 1.0:
            raise ConfigError(f"--expert-fraction must be in [0, 1], got {self.expert_fraction}")
        parse_env_kwargs(self.env_kwargs)


@dataclass
class DemosReport:
    """What a demonstration run produced."""

    episodes: int
    success_rate: float
    mean_length: float
    by_quality: dict[str, dict[str, float]]


def generate_demos(cfg: DemosConfig, progress: bool = True) -> DemosReport:
    """Run the scripted demonstrator and write ``cfg.out``."""
    check_output(cfg.out, cfg.overwrite)
    with claim_output(cfg.out, "hdf5", cfg.overwrite):
        return _generate(cfg, progress)


def _generate(cfg: DemosConfig, progress: bool) -> DemosReport:
    # Only options that were set go to the env, so envs without them still work.
    options = {"controller": cfg.controller, "reward_type": cfg.reward_type}
    options = {k: v for k, v in options.items() if v is not None}
    env = make_env_checked(
        cfg.task,
        min(cfg.num_envs, cfg.episodes),
        cfg.seed,
        **{**parse_env_kwargs(cfg.env_kwargs), **options},
    )
    expert = make_expert(env, noise_std=cfg.noise_std, seed=cfg.seed)
    per_episode = hasattr(expert, "set_episode_params")
    if cfg.quality == "mixed" and not per_episode:
        raise ConfigError(f"--quality mixed needs an expert with set_episode_params; "
                          f"{type(expert).__name__} has none")  # fmt: skip
    quality = torch.zeros(env.num_envs, dtype=torch.long)  # 0 expert, 1 noisy, 2 failing
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    names = ("expert", "noisy", "failing")

    def draw_demonstrator(env_ids: torch.Tensor) -> None:
        k = len(env_ids)
        noise = torch.full((k,), cfg.noise_std)
        offset = torch.zeros(k, 3)
        if cfg.quality == "mixed":
            u = torch.rand(k, generator=gen)
            noisy_cut = cfg.expert_fraction + (1 - cfg.expert_fraction) * 4 / 7
            q = (u >= cfg.expert_fraction).long() + (u >= noisy_cut).long()
            quality[env_ids.cpu()] = q
            noise = torch.where(q == 1, 0.2 + 0.3 * torch.rand(k, generator=gen), noise)
            angle = 2 * math.pi * torch.rand(k, generator=gen)
            radius = 0.05 + 0.03 * torch.rand(k, generator=gen)
            miss = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
            offset[:, :2] = torch.where((q == 2)[:, None], miss, torch.zeros_like(miss))
        if per_episode:
            expert.set_episode_params(env_ids, noise.to(env.device), offset.to(env.device))

    kept: list[dict] = []
    attempts = 0
    all_success: list[bool] = []
    all_lengths: list[int] = []
    while len(kept) < cfg.episodes:
        need = cfg.episodes - len(kept)
        result = run_episodes(
            env,
            expert.act,
            need,
            seed=cfg.seed + attempts,
            record=True,
            on_episode_start=draw_demonstrator,
            episode_attrs=lambda i: {"quality": names[int(quality[i])]},
            progress=progress,
            desc=f"demos {cfg.task}",
        )
        attempts += 1
        for ep in result.episodes:
            all_success.append(ep["attrs"]["success"])
            all_lengths.append(len(ep["actions"]))
            if ep["attrs"]["success"] or not cfg.only_success:
                kept.append(ep)
        if cfg.only_success and attempts > 20:
            raise ConfigError(
                f"only {len(kept)} of {cfg.episodes} successful episodes after {attempts} rounds"
            )
    kept = kept[: cfg.episodes]
    env_args = {
        "env_name": cfg.task,
        "env_type": "robot_rl",
        "env_kwargs": env_kwargs_of(env),
        "generator": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
    }
    write_robomimic(cfg.out, kept, env_args, overwrite=cfg.overwrite, seed=cfg.seed)
    by_quality: dict[str, dict[str, float]] = {}
    for name in names:
        eps = [e for e in kept if e["attrs"]["quality"] == name]
        if eps:
            by_quality[name] = {
                "episodes": len(eps),
                "success_rate": sum(e["attrs"]["success"] for e in eps) / len(eps),
            }
    return DemosReport(
        episodes=len(kept),
        success_rate=sum(all_success) / max(len(all_success), 1),
        mean_length=sum(all_lengths) / max(len(all_lengths), 1),
        by_quality=by_quality,
    )
