"""Shared pieces of the offline trainers: config base, dataset loading, logging, seeding."""

from __future__ import annotations

import functools
import math
import os
import random
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from robot_rl.data import Normalizer, OfflineDataset, read_robomimic
from robot_rl.errors import ConfigError, DatasetError
from robot_rl.outputs import claim_output
from robot_rl.perf import MatmulPrecision, matmul_precision
from robot_rl.policies.critic import CriticConfig, CriticEnsemble, make_target
from robot_rl.policies.gaussian import GaussianPolicy, GaussianPolicyConfig

TrainFn = TypeVar("TrainFn", bound=Callable[..., Any])


@dataclass
class OfflineTrainConfig:
    """Fields every offline trainer shares; each algorithm's config extends it."""

    dataset: Path
    """robomimic-layout HDF5 file."""
    out: Path
    """Policy directory to write."""
    obs_keys: list[str] | None = None
    """Observation keys to use (default: all low-dimensional keys in the file)."""
    filter_key: str | None = None
    """Train only on the demos of this mask (e.g. ``train``); default all demos."""
    seed: int = 0
    """Seed for initialization and batch sampling."""
    device: str = "cpu"
    """Training device."""
    # README ("Ten critics"): medium made 10 critics 1.3x faster on this machine.
    matmul_precision: MatmulPrecision = "highest"
    """float32 matmuls: highest (exact), medium (bfloat16 inputs on AMX CPUs and tensor-core
    GPUs, ~2e-3 relative error), high (TF32 on GPUs)."""
    log_dir: Path | None = None
    """TensorBoard directory (default ``<out>/tb``)."""
    overwrite: bool = False
    """Replace ``out`` if it is a policy directory (never a directory holding other files)."""

    def __post_init__(self) -> None:
        check_device(self.device)
        check_fields(self)


# Numeric settings, checked wherever a config declares them (``check_fields``): name ->
# (low, high, low included, high included). None leaves that side open. Fields a config does
# not have, or leaves None (taken from a preset later), are skipped.
BOUNDS: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "steps": (1, None, True, False),
    "batch_size": (1, None, True, False),
    "num_critics": (1, None, True, False),
    "cql_n_actions": (1, None, True, False),
    "lr": (0, None, False, False),
    "actor_lr": (0, None, False, False),
    "critic_lr": (0, None, False, False),
    "temperature_lr": (0, None, False, False),
    "weight_decay": (0, None, True, False),
    "discount": (0, 1, True, True),
    "tau": (0, 1, False, True),
    "expectile": (0, 1, False, False),
    "beta": (0, None, False, False),
    "max_weight": (0, None, False, False),
    "init_temperature": (0, None, False, False),
    "cql_alpha": (0, None, True, False),
    "cql_temperature": (0, None, False, False),
    "cql_target_action_gap": (None, None, False, False),
    "reward_scale": (None, None, False, False),
    "reward_bias": (None, None, False, False),
    "target_entropy": (None, None, False, False),
    "n_obs_steps": (1, None, True, False),
    "horizon": (1, None, True, False),
    "n_action_steps": (1, None, True, False),
    "num_train_timesteps": (1, None, True, False),
    "num_inference_steps": (1, None, True, False),
    "hidden_dim": (1, None, True, False),
    "num_blocks": (1, None, True, False),
    "mlp_expansion": (1, None, True, False),
    "warmup_steps": (0, None, True, False),
    "ema_power": (0, None, False, False),
    "noise_std": (0, None, True, False),
    "episodes": (1, None, True, False),
    "num_envs": (1, None, True, False),
}
LIST_FIELDS = ("hidden_dims", "critic_hidden_dims", "down_dims")
"""Layer widths: every entry >= 1, at least one entry."""


def check_fields(cfg: Any) -> None:
    """Raise ConfigError naming the first numeric field of ``cfg`` outside its bounds."""
    for name, (low, high, low_in, high_in) in BOUNDS.items():
        value = getattr(cfg, name, None)
        if value is None or isinstance(value, bool):
            continue
        flag = "--" + name.replace("_", "-")
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value!r} ({flag})")
        below = low is not None and (value < low or (value == low and not low_in))
        above = high is not None and (value > high or (value == high and not high_in))
        if not (below or above):
            continue
        if low is not None and high is not None:
            interval = f"{'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"
            raise ConfigError(f"{name} must be in {interval}, got {value} ({flag})")
        if below:
            raise ConfigError(
                f"{name} must be {'>=' if low_in else '>'} {low}, got {value} ({flag})"
            )
        raise ConfigError(f"{name} must be {'<=' if high_in else '<'} {high}, got {value} ({flag})")
    for name in LIST_FIELDS:
        value = getattr(cfg, name, None)
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if len(value) == 0 or any(int(v) < 1 for v in value):
            raise ConfigError(f"{name} needs one or more widths >= 1, got {list(value)} ({flag})")


def check_device(device: str) -> None:
    """Raise ConfigError if ``device`` is not a torch device this machine has."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"--device {device!r} is not a torch device: {e}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} CUDA devices")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {device}: MPS is not available on this machine")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device {device!r}: use cpu, cuda or cuda:<index>")


def with_matmul_precision(train: TrainFn) -> TrainFn:
    """Run a trainer ``train(cfg, ...)`` under ``cfg.matmul_precision``, restored afterwards.

    Offline trainers (configs with ``out``) also claim their output first (see
    ``robot_rl.outputs``): refused before any work if it exists without ``--overwrite``, is not
    a policy directory, holds the dataset or cannot be written; locked against a second writer
    while training runs.
    """

    @functools.wraps(train)
    def wrapper(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        with matmul_precision(cfg.matmul_precision):
            if not isinstance(cfg, OfflineTrainConfig):
                return train(cfg, *args, **kwargs)
            with claim_output(cfg.out, "policy", cfg.overwrite, [cfg.dataset]):
                result = train(cfg, *args, **kwargs)
                publish_log(cfg)
                return result

    return wrapper  # type: ignore[return-value]


def build_actor_critic(
    cfg: Any, dataset: OfflineDataset, env_info: dict[str, Any]
) -> tuple[GaussianPolicy, CriticEnsemble, CriticEnsemble]:
    """The tanh-Gaussian actor (normalizer fit on ``dataset``), the critic ensemble and its
    frozen target that IQL and Cal-QL train, on ``cfg.device``.

    Reads ``obs_keys`` (default: every float key), ``hidden_dims``, ``num_critics``,
    ``critic_hidden_dims``, ``critic_layer_norm`` and ``compile_critic`` from ``cfg``.
    """
    obs_keys = cfg.obs_keys or [k for k, v in dataset.obs.items() if v.is_floating_point()]
    obs_dim = sum(dataset.obs[k].shape[-1] for k in obs_keys)
    actor_cfg = GaussianPolicyConfig(
        obs_keys=obs_keys,
        obs_dim=obs_dim,
        action_dim=dataset.action_dim,
        hidden_dims=list(cfg.hidden_dims),
    )
    # Actions in the env's [-1, 1] box, not the data's range: fine-tuning acts from here.
    normalizer = Normalizer.fit(dataset, obs_keys, actions="env")
    policy = GaussianPolicy(actor_cfg, normalizer, env_info)
    critic_cfg = CriticConfig(
        obs_dim=obs_dim,
        action_dim=dataset.action_dim,
        num_critics=cfg.num_critics,
        hidden_dims=list(cfg.critic_hidden_dims),
        layer_norm=cfg.critic_layer_norm,
    )
    critic = CriticEnsemble(critic_cfg).to(cfg.device)
    target = make_target(critic)
    if cfg.compile_critic:
        critic.compile()  # in place, after copying the target: parameter names stay the same
    return policy.to(cfg.device), critic, target


def config_json(cfg: Any) -> dict[str, Any]:
    """A config dataclass (or dict) as JSON-friendly values: paths become strings."""
    values = asdict(cfg) if is_dataclass(cfg) else dict(cfg)
    return {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch generator for batch sampling."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def load_task_dataset(
    path: Path, obs_keys: list[str] | None = None, filter_key: str | None = None
) -> tuple[OfflineDataset, dict[str, Any]]:
    """Read a robomimic-layout file; no env is built (offline training needs none).

    Returns the dataset and ``env_info`` (``env_name``, ``env_kwargs``), which the policy records
    beside its observation and action spec; ``eval`` and fine-tuning check that spec against the
    env they are given.
    """
    dataset = read_robomimic(path, obs_keys=obs_keys, filter_key=filter_key)
    check_training_data(dataset, path)
    env_info = {
        "env_name": dataset.env_args.get("env_name"),
        "env_kwargs": dict(dataset.env_args.get("env_kwargs", {})),
    }
    return dataset, env_info


ACTION_TOLERANCE = 1e-3
"""How far beyond [-1, 1] a dataset action may reach (float round-off of a clipped action)."""


def check_training_data(dataset: OfflineDataset, path: Path) -> None:
    """Raise DatasetError when the data, as the trainers see it (float32), is unusable.

    The reader checks NaN/inf in the file's own dtype; a float64 1e300 becomes inf in float32,
    so finiteness is checked again after the cast. Actions must lie in the normalized action
    box [-1, 1] the tanh policies act in.
    """
    parts = {"actions": dataset.actions, "rewards": dataset.rewards}
    parts.update({f"obs/{k}": v for k, v in dataset.obs.items()})
    parts.update({f"next_obs/{k}": v for k, v in dataset.next_obs.items()})
    for name, tensor in parts.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise DatasetError(
                f"{path}: {name} overflows float32 (NaN or inf after conversion to float32)"
            )
    for name, tensor in dataset.obs.items():
        if tensor.ndim < 2:
            raise DatasetError(
                f"{path}: obs/{name} is a scalar per step (shape {tuple(tensor.shape)}); "
                "observations must be [T, D]"
            )
    reach = float(dataset.actions.abs().max()) if dataset.num_transitions else 0.0
    if reach > 1.0 + ACTION_TOLERANCE:
        raise DatasetError(
            f"{path}: actions reach {reach:.4g}, outside [-1, 1]; store actions normalized to "
            "the env's action box"
        )


def default_log_dir(cfg: Any) -> Path:
    """Where an offline trainer logs while it runs: beside ``out``, moved into ``out/tb`` at
    the end (``publish_log``); a killed run's copy is a leftover ``clean_leftovers`` removes."""
    return cfg.log_dir or Path(cfg.out).parent / f".{Path(cfg.out).name}.tmp-tb"


def publish_log(cfg: Any) -> None:
    """Move the default TensorBoard log into the saved policy directory as ``tb``."""
    if cfg.log_dir is not None:
        return
    staging = default_log_dir(cfg)
    if staging.is_dir() and Path(cfg.out).is_dir():
        target = Path(cfg.out) / "tb"
        if target.exists():
            import shutil

            shutil.rmtree(target)
        os.replace(staging, target)


class _Writer(SummaryWriter):
    """A SummaryWriter whose ``with`` block never hangs on the way out of an error.

    Ctrl+C can land while the writer holds its internal lock; closing it then from the same
    thread would wait on that lock forever. On an exception the close runs in a daemon thread
    and is waited for at most ``CLOSE_TIMEOUT_S`` (normally it finishes at once, flushed).
    """

    CLOSE_TIMEOUT_S = 5.0

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
            return
        closer = threading.Thread(target=self.close, name="writer-close", daemon=True)
        closer.start()
        closer.join(self.CLOSE_TIMEOUT_S)


def make_writer(log_dir: Path | None, default_name: str) -> SummaryWriter:
    """TensorBoard writer under ``log_dir`` (default ``runs/<default_name>``; offline trainers
    pass ``default_log_dir(cfg)``, which lands in ``<out>/tb``); use it as a context manager."""
    return _Writer(str(log_dir or Path("runs") / default_name))
