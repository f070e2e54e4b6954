"""What the online fine-tuning loop drives: the :class:`Agent` interface, the run settings
every online algorithm reads (:class:`OnlineConfig`), and the reward convention a critic is
trained under, recorded beside it.

An online algorithm is one module (``sac``, ``rlpd``, ``wsrl``, ``expo``) with

- ``DESCRIPTION``: one line for ``--help``;
- ``PRESETS``: ``{"cpu": {...}, "paper": {...}}``, values for the :class:`OnlineConfig`
  fields a user left unset (``None``);
- ``REWARD``: the :class:`RewardConvention` new critics learn under, and why;
- ``build(cfg, env, generator) -> Agent``: networks, data and settings from a resolved config.

Per vector step the loop calls ``act``, steps the env, then ``observe``; while ``learning``,
``updates_per_collect`` calls of ``update``. The agent owns its replay, so a chunked agent
(EXPO) can keep per-env action queues and build multi-step transitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from torch import Tensor

from robot_rl.errors import ConfigError
from robot_rl.perf import MatmulPrecision
from robot_rl.policies.base import Policy

Obs = dict[str, Tensor]


@dataclass(frozen=True)
class RewardConvention:
    """Critics learn on ``scale * r + bias`` per env step, discounted by ``discount``."""

    scale: float
    bias: float
    discount: float

    def __post_init__(self) -> None:
        if not 0.0 < self.discount < 1.0:
            raise ConfigError(f"discount must be in (0, 1), got {self.discount}")
        if self.scale == 0:
            raise ConfigError("reward_scale must not be 0")

    def to_json(self) -> dict[str, float]:
        return {"scale": self.scale, "bias": self.bias, "discount": self.discount}


def saved_reward_convention(config: dict[str, Any]) -> RewardConvention | None:
    """The convention a saved policy directory's critics were trained under: the ``reward``
    entry every critic-training command writes, or the ``train`` settings of an offline
    trainer that predates it; None if the directory records none."""
    if isinstance(config.get("reward"), dict):
        r = config["reward"]
        return RewardConvention(float(r["scale"]), float(r["bias"]), float(r["discount"]))
    train = config.get("train", {})
    if "reward_scale" in train and "reward_bias" in train:
        return RewardConvention(
            float(train["reward_scale"]), float(train["reward_bias"]),
            float(train.get("discount", 0.99)),
        )  # fmt: skip
    return None


class Agent(Protocol):
    """An online learner as the fine-tuning loop drives it."""

    policy: Policy
    """What evaluation and deployment run, and what the run directory's ``policy/`` holds."""
    reward: RewardConvention

    def act(self, obs: Obs, env_steps: int) -> Tensor:
        """Env actions [N, A] in [-1, 1]; the agent picks its phase (warmup with the start
        policy, random exploration, learning) from ``env_steps`` collected so far."""

    def observe(
        self, obs: Obs, action: Tensor, reward: Tensor, terminated: Tensor, truncated: Tensor,
        next_obs: Obs, final_obs: Obs,
    ) -> None:  # fmt: skip
        """One vector step (``final_obs``: the true next observation of every env)."""

    def learning(self, env_steps: int) -> bool:
        """Whether updates run after a vector step ending at ``env_steps``."""

    def update(self, index: int) -> dict[str, Tensor | float]:
        """One update call (``index`` counts them from 0 over the run); metrics."""

    def extras(self) -> tuple[dict[str, Any], dict[str, dict[str, Tensor]]]:
        """Config entries and files saved beside the policy (critics, reward convention), so
        the next run can start from it."""

    def state_dict(self) -> tuple[dict[str, dict[str, Tensor]], dict[str, Any]]:
        """Checkpoint files (name -> tensors) and JSON metadata: everything to resume."""

    def load_state_dict(self, files: dict[str, dict[str, Tensor]], meta: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""


@dataclass
class OnlineConfig:
    """Fine-tune a policy online on a VecEnv (``robot-rl finetune --algo ...``)."""

    algo: Literal["sac", "rlpd", "wsrl", "expo"]
    """sac (plain SAC), rlpd (SAC + 50/50 offline data), wsrl (warm start from Cal-QL),
    expo (diffusion base + edit policy + on-the-fly selection)."""
    task: str
    """Env spec to fine-tune in (a built-in task, gym id, module:factory, registered name);
    must be the env the start policy was trained for."""
    out: Path
    """Run directory."""
    init: Path | None = None
    """Start policy directory (wsrl: Cal-QL with critics; expo: a diffusion policy; sac/rlpd:
    its normalizer, and its actor with --no-from-scratch)."""
    dataset: Path | None = None
    """Offline data (rlpd, expo: mixed into batches; default: the dataset ``init`` trained on).
    sac needs neither ``init`` nor ``dataset``: it then builds its actor from the env."""
    env_kwargs: str = "{}"
    """JSON object of options for the env factory (merged over the start policy's)."""
    scale: Literal["cpu", "paper", "gpu"] = "cpu"
    """Preset for the fields left unset: cpu (small, <= 10 min here), paper (authors'), or gpu
    (sac/rlpd/wsrl: 1024 GPU-simulated envs, large batches, compiled critics; see README)."""
    env_steps: int = 20_000
    """Env-step budget (transitions collected, warmup included)."""
    num_envs: int | None = None
    """Parallel envs collecting (default: per scale)."""
    updates_per_collect: int | None = None
    """Update calls per vector step of all envs (default: per scale)."""
    utd: int | None = None
    """Critic minibatches per update call (default: per algo and scale)."""
    batch_size: int | None = None
    """Transitions per critic minibatch (default: per scale)."""
    warmup_steps: int | None = None
    """wsrl/expo: env steps of the start policy alone before updates (default: per scale)."""
    random_steps: int | None = None
    """sac/rlpd: env steps of uniform random actions before updates (default: per scale)."""
    actor_delay_updates: int | None = None
    """Update calls that train only the critics before the actor and temperature follow
    (default: cpu wsrl 250; 0, as published, otherwise)."""
    offline_ratio: float | None = None
    """Share of each batch from the offline data (default: rlpd and expo 0.5, others 0)."""
    from_scratch: bool | None = None
    """Re-initialize the actor (default: sac and rlpd yes, wsrl no)."""
    fresh_critic: bool = False
    """wsrl: allow a start policy without critics (new critics; not the WSRL recipe)."""
    compile_critic: bool | None = None
    """torch.compile the critic ensemble's forward (and backward) (default: gpu scale on)."""
    replay_capacity: int | None = None
    """Online replay rows, a ring (default: the whole budget; gpu scale: 10M)."""
    num_critics: int | None = None
    """Size of newly built critic ensembles (default: per algo and scale)."""
    critic_hidden_dims: list[int] | None = None
    """Widths of newly built critics (default: per scale)."""
    target_entropy_per_dim: float | None = None
    """Target entropy per action dim (default: rlpd and expo -0.5, others -1)."""
    entropy_backup: bool | None = None
    """Entropy term in the TD target (default: wsrl no, others yes)."""
    actor_reduce: Literal["mean", "min"] | None = None
    """Ensemble reduction the actor maximizes (default: rlpd mean, others min)."""
    init_temperature: float | None = None
    """SAC temperature at the start (default: cpu wsrl 0.1; else the start policy's for
    wsrl, 1 for the others)."""
    temperature_lr: float | None = None
    """Temperature Adam learning rate (default: wsrl 1e-4 as published, others 3e-4)."""
    reward_scale: float | None = None
    """Critics learn on reward_scale * r + reward_bias (default: the start policy's recorded
    convention where its critics are kept, else the algorithm's; see README)."""
    reward_bias: float | None = None
    """See reward_scale."""
    discount: float | None = None
    """Discount gamma (default: as reward_scale)."""
    num_samples: int | None = None
    """expo: base samples N per state (2N candidates with the edits; default per scale)."""
    beta: float | None = None
    """expo: edit scale (default: cpu preset 0.3, paper preset 0.05, the authors')."""
    beta_mode: Literal["fixed", "adaptive"] | None = None
    """expo: fixed beta (default, the authors') or adaptive (tuned against the critics'
    disagreement on edits; ``beta`` is its start)."""
    eval_every: int = 2000
    """Env steps between deterministic evaluations."""
    eval_episodes: int = 50
    """Episodes per evaluation."""
    eval_seed: int = 1000
    """Reset seed of every evaluation (the same episodes each time)."""
    checkpoint_every: int = 5000
    """Env steps between checkpoints."""
    log_every: int = 500
    """Env steps between training-metric logs."""
    resume: bool = False
    """Continue the run in ``out`` from its checkpoint."""
    seed: int = 0
    """Seed for env resets, initialization and sampling."""
    device: str = "cpu"
    """Training device (the replay buffer lives there too)."""
    matmul_precision: MatmulPrecision = "highest"
    """float32 matmuls: highest (exact), medium (bfloat16 inputs on AMX CPUs and tensor-core
    GPUs), high (TF32 on GPUs)."""
    overwrite: bool = False
    """Delete an existing ``out`` and start over."""


def strip_prefix(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries under ``prefix``, with it removed (one module's part of a flat file)."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def optimizer_tensors(name: str, opt: Any) -> tuple[dict[str, Tensor], list[dict[str, Any]]]:
    """An optimizer's moments as flat tensors ``optim.<name>.<param>.<slot>`` and its
    param groups as JSON (safetensors + JSON, no pickle)."""
    import torch

    state = opt.state_dict()
    tensors = {
        f"optim.{name}.{idx}.{slot}": torch.as_tensor(value)
        for idx, slots in state["state"].items()
        for slot, value in slots.items()
    }
    return tensors, state["param_groups"]


def load_optimizer(name: str, opt: Any, tensors: dict[str, Tensor], groups: list[Any]) -> None:
    """Inverse of :func:`optimizer_tensors`."""
    prefix = f"optim.{name}."
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, slot = key[len(prefix) :].split(".", 1)
            state.setdefault(int(idx), {})[slot] = value
    opt.load_state_dict({"state": state, "param_groups": groups})


__all__ = [
    "Agent",
    "Obs",
    "OnlineConfig",
    "RewardConvention",
    "load_optimizer",
    "optimizer_tensors",
    "saved_reward_convention",
    "strip_prefix",
]
