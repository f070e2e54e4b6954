"""SAC (Haarnoja et al. 2018) over the shared critic ensemble: the update RLPD and WSRL reuse,
the agent that collects into a replay buffer, and plain SAC's presets and build.

One :meth:`SAC.update` takes ``utd * batch_size`` transitions: ``utd`` critic steps on
consecutive minibatches of ``batch_size`` (each followed by a Polyak update of the target),
then one actor and temperature step, on the whole batch (WSRL) or on the last minibatch
(RLPD). The TD target is the min over a random subset of target critics, with or without the
entropy term; the actor maximizes the mean or the min of the ensemble. Every critic is
evaluated in one batched call (:class:`CriticEnsemble`), and the update returns its metrics
as device tensors so the caller decides when to synchronize.

Settings (per ``ALGORITHMS.md``; each method's file holds its presets):

========  ===  =========  ===========  ==============  =============  =============
method    UTD  subset     actor        entropy backup  target entropy offline ratio
========  ===  =========  ===========  ==============  =============  =============
sac       1    2 of 2     min          yes             -|A|           0
rlpd      20   2 of 10    mean         yes             -|A|/2         0.5
wsrl      4    2 of 10    min of 10    no              -|A|           0
========  ===  =========  ===========  ==============  =============  =============

Actions: the actor and the replay work in the env's [-1, 1] box (the actor's action normalizer
is the identity, as the offline trainers now save it), so fine-tuning can take any action the
env takes, not only those inside the demonstrations' range.

Reward convention (plain SAC): new critics learn on ``10 r - 5`` with gamma 0.99, the Cal-QL
shift for 0/1 sparse tasks (a step that does not succeed costs). For a dense env reward (e.g.
gymnasium's Reacher, about -0.1 per step) pass ``--reward-scale 1 --reward-bias 0``; the
convention is written into the run's ``policy/config.json`` (``reward``), and a later run
that keeps these critics reads it from there.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from robot_rl.algos.agent import (
    Obs,
    OnlineConfig,
    RewardConvention,
    load_optimizer,
    optimizer_tensors,
    saved_reward_convention,
    strip_prefix,
)
from robot_rl.algos.common import load_task_dataset
from robot_rl.checkpoint import read_config
from robot_rl.data import Normalizer, OfflineDataset
from robot_rl.data.normalizer import ACTION_FIELD
from robot_rl.data.replay import MixedSampler, ReplayBuffer
from robot_rl.errors import CheckpointError, ConfigError
from robot_rl.perf import adam
from robot_rl.policies import load_policy
from robot_rl.policies.critic import (
    CriticConfig,
    CriticEnsemble,
    critic_checkpoint,
    load_critic,
    load_temperature,
    make_target,
    polyak_update,
)
from robot_rl.policies.gaussian import GaussianPolicy, GaussianPolicyConfig

DESCRIPTION = "plain SAC (from scratch; --init or --dataset optional)"

# Fields left unset take these values. cpu: one run <= 10 min on one core (8 envs per update
# call, UTD 4, narrow critics); paper: the authors' settings, one env per update.
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {"num_envs": 8, "updates_per_collect": 1, "batch_size": 256, "utd": 4,
            "num_critics": 2, "critic_hidden_dims": [128, 128], "random_steps": 1000,
            "warmup_steps": 0, "actor_delay_updates": 0, "offline_ratio": 0.0,
            "from_scratch": True, "target_entropy_per_dim": -1.0, "entropy_backup": True,
            "actor_reduce": "min", "temperature_lr": 3e-4},
    "paper": {"num_envs": 1, "updates_per_collect": 1, "batch_size": 256, "utd": 1,
              "num_critics": 2, "critic_hidden_dims": [256, 256], "random_steps": 5000,
              "warmup_steps": 0, "actor_delay_updates": 0, "offline_ratio": 0.0,
              "from_scratch": True, "target_entropy_per_dim": -1.0, "entropy_backup": True,
              "actor_reduce": "min", "temperature_lr": 3e-4},
    "gpu": {"num_envs": 1024, "updates_per_collect": 8, "batch_size": 32768, "utd": 1,
            "num_critics": 2, "critic_hidden_dims": [1024, 512, 256], "random_steps": 10240,
            "warmup_steps": 0, "actor_delay_updates": 0, "offline_ratio": 0.0,
            "from_scratch": True, "target_entropy_per_dim": -1.0, "entropy_backup": True,
            "actor_reduce": "min", "temperature_lr": 3e-4, "compile_critic": True,
            "replay_capacity": 10_240_000},
}  # fmt: skip
"""gpu follows FastTD3's Isaac Lab lift settings (Seo et al. 2025: 1024 envs, 8 updates per
vector step of batch 32,768, a 1024-512-256 critic, 10 vector steps before learning, 10k
transitions per env of replay, torch.compile): the learner, not the simulator, sets the pace."""

REWARD = RewardConvention(scale=10.0, bias=-5.0, discount=0.99)
"""New critics: 10 r - 5, gamma 0.99 (see the module docstring)."""


@dataclass
class SACConfig:
    """Hyperparameters of one SAC update."""

    utd: int = 1
    """Critic minibatches (gradient steps) per update call."""
    batch_size: int = 256
    """Transitions per critic minibatch."""
    actor_full_batch: bool = False
    """Actor step on all ``utd * batch_size`` rows (WSRL) rather than the last minibatch."""
    target_subset: int = 2
    """TD target: min over this many target critics, drawn at random each critic step."""
    actor_reduce: Literal["mean", "min"] = "min"
    """Ensemble reduction the actor maximizes."""
    entropy_backup: bool = True
    """Subtract temperature * log pi(a'|s') in the TD target."""
    target_entropy_per_dim: float = -1.0
    """Target entropy = this * |A| (SAC, WSRL -1; RLPD -0.5)."""
    actor_lr: float = 3e-4
    """Actor Adam learning rate."""
    critic_lr: float = 3e-4
    """Critic Adam learning rate."""
    temperature_lr: float = 3e-4
    """Temperature Adam learning rate."""
    discount: float = 0.99
    """Discount gamma."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    reward_scale: float = 10.0
    """Critics learn on r' = reward_scale * r + reward_bias ..."""
    reward_bias: float = -5.0
    """... so a step that does not succeed costs (Cal-QL's sparse-task convention)."""
    compile_critic: bool = False
    """torch.compile the online critic ensemble's forward (and backward)."""


class SAC:
    """The learner: actor, critic ensemble, target ensemble, temperature and optimizers."""

    def __init__(
        self,
        policy: GaussianPolicy,
        critic: CriticEnsemble,
        target: CriticEnsemble,
        cfg: SACConfig,
        init_temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        if cfg.utd < 1 or cfg.batch_size < 1:
            raise ConfigError(f"utd and batch_size must be >= 1, got {cfg.utd}, {cfg.batch_size}")
        if not 1 <= cfg.target_subset <= critic.num_critics:
            raise ConfigError(
                f"target_subset {cfg.target_subset} must be in [1, {critic.num_critics}] "
                "(the number of critics)"
            )
        CriticEnsemble.reduce(torch.zeros(1, 1), cfg.actor_reduce)  # validates the name
        self.cfg = cfg
        self.policy, self.critic, self.target = policy, critic, target
        if cfg.compile_critic:
            critic.compile()  # in place: parameter names and state_dict stay the same
        self.generator = generator
        device = policy.device
        self.log_temperature = torch.tensor(
            math.log(init_temperature), device=device, requires_grad=True
        )
        self.target_entropy = cfg.target_entropy_per_dim * policy.config.action_dim
        self.optimizers = {
            "actor": adam(policy.parameters(), lr=cfg.actor_lr),
            "critic": adam(critic.parameters(), lr=cfg.critic_lr),
            "temperature": adam([self.log_temperature], lr=cfg.temperature_lr),
        }

    @property
    def temperature(self) -> float:
        """Current SAC temperature (a host sync)."""
        return self.log_temperature.exp().item()

    def update(self, batch: dict[str, Any], update_actor: bool = True) -> dict[str, Tensor]:
        """``utd`` critic steps and (unless ``update_actor`` is False) one actor/temperature
        step on ``utd * batch_size`` rows."""
        cfg, n = self.cfg, self.cfg.batch_size
        rows = batch["actions"].shape[0]
        if rows != cfg.utd * n:
            raise ConfigError(f"update needs utd * batch_size = {cfg.utd * n} rows, got {rows}")
        with torch.no_grad():
            obs = self.policy.flat_obs(batch["obs"])
            next_obs = self.policy.flat_obs(batch["next_obs"])
            action = self.policy.normalizer.normalize_action(batch["actions"]).clamp(-1.0, 1.0)
            reward = cfg.reward_scale * batch["rewards"] + cfg.reward_bias
            not_done = 1.0 - batch["terminals"]
        for i in range(cfg.utd):
            sl = slice(i * n, (i + 1) * n)
            critic_metrics = self._critic_step(
                obs[sl], action[sl], reward[sl], not_done[sl], next_obs[sl], _rows(batch, sl)
            )
        if not update_actor:
            return critic_metrics
        actor_rows = slice(0, rows) if cfg.actor_full_batch else slice(rows - n, rows)
        actor_metrics = self._actor_step(obs[actor_rows], _rows(batch, actor_rows)["obs"])
        return {**critic_metrics, **actor_metrics}

    def _critic_step(
        self,
        obs: Tensor,
        action: Tensor,
        reward: Tensor,
        not_done: Tensor,
        next_obs: Tensor,
        batch: dict[str, Any],
    ) -> dict[str, Tensor]:
        cfg = self.cfg
        td_target = self.td_target(reward, not_done, next_obs, batch["next_obs"])
        q = self.critic(obs, action)
        # Sum over members of each member's mean squared TD error.
        loss = (q - td_target).pow(2).mean(dim=1).sum()
        opt = self.optimizers["critic"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        polyak_update(self.target, self.critic, cfg.tau)
        return {
            "train/critic_loss": loss.detach() / self.critic.num_critics,
            "train/q_mean": q.detach().mean(),
            "train/td_target_mean": td_target.mean(),
        }

    @torch.no_grad()
    def td_target(
        self, reward: Tensor, not_done: Tensor, next_obs: Tensor, next_obs_dict: dict[str, Tensor]
    ) -> Tensor:
        """r' + gamma * (1 - terminated) * [min of a random target subset at a' ~ pi(s')
        (- temperature * log pi(a'|s') with the entropy backup)], [B]. Truncated transitions
        have ``not_done = 1`` and bootstrap from their true final observation."""
        next_action, next_log_pi = self.policy.sample(next_obs_dict)
        # Only the drawn target members are evaluated (2 of 10 for RLPD/WSRL).
        q_next = self.target.random_subset_min(
            next_obs, next_action, self.cfg.target_subset, generator=self.generator
        )
        if self.cfg.entropy_backup:
            q_next = q_next - self.log_temperature.exp() * next_log_pi
        return reward + self.cfg.discount * not_done * q_next

    def _actor_step(self, obs: Tensor, obs_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        action, log_pi = self.policy.sample(obs_dict)
        # Critic weights get no gradient from the actor loss.
        self.critic.requires_grad_(False)
        q_pi = CriticEnsemble.reduce(self.critic(obs, action), self.cfg.actor_reduce)
        self.critic.requires_grad_(True)
        temperature = self.log_temperature.exp()
        actor_loss = (temperature.detach() * log_pi - q_pi).mean()
        opt = self.optimizers["actor"]
        opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        opt.step()
        temp_loss = -(self.log_temperature * (log_pi.detach() + self.target_entropy)).mean()
        opt = self.optimizers["temperature"]
        opt.zero_grad(set_to_none=True)
        temp_loss.backward()
        opt.step()
        return {
            "train/actor_loss": actor_loss.detach(),
            "train/entropy": -log_pi.detach().mean(),
            "train/temperature": temperature.detach(),
            "train/q_pi_mean": q_pi.detach().mean(),
        }

    def state_dict(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """Flat tensors (networks, temperature, optimizer moments) and JSON metadata
        (optimizer hyperparameters), for safetensors without pickle."""
        tensors = {f"actor.{k}": v for k, v in self.policy.state_dict().items()}
        tensors.update({f"critic.{k}": v for k, v in self.critic.state_dict().items()})
        tensors.update({f"target.{k}": v for k, v in self.target.state_dict().items()})
        tensors["log_temperature"] = self.log_temperature.detach()
        meta: dict[str, Any] = {}
        for name, opt in self.optimizers.items():
            moments, meta[name] = optimizer_tensors(name, opt)
            tensors.update(moments)
        return tensors, meta

    def load_state_dict(self, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        try:
            for prefix, module in (
                ("actor.", self.policy),
                ("critic.", self.critic),
                ("target.", self.target),
            ):
                module.load_state_dict(strip_prefix(tensors, prefix))
            with torch.no_grad():
                self.log_temperature.copy_(tensors["log_temperature"])
            for name, opt in self.optimizers.items():
                load_optimizer(name, opt, tensors, meta[name])
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(f"learner state does not match this configuration: {e}") from e


def _rows(batch: dict[str, Any], rows: slice) -> dict[str, Any]:
    return {
        "obs": {k: v[rows] for k, v in batch["obs"].items()},
        "next_obs": {k: v[rows] for k, v in batch["next_obs"].items()},
    }


# ---- the agent the fine-tuning loop drives ------------------------------------------------


class SACAgent:
    """SAC, RLPD or WSRL as the loop drives it: act (start policy during warmup, uniform
    random actions, then the actor), store transitions, update from mixed batches."""

    def __init__(
        self,
        sac: SAC,
        buffer: ReplayBuffer,
        sampler: MixedSampler,
        reward: RewardConvention,
        *,
        warmup_steps: int,
        random_steps: int,
        actor_delay_updates: int,
        generator: torch.Generator,
        device_generator: torch.Generator | None = None,
    ) -> None:
        self.sac, self.buffer, self.sampler, self.reward = sac, buffer, sampler, reward
        self.policy: GaussianPolicy = sac.policy
        self.warmup_steps, self.random_steps = warmup_steps, random_steps
        self.actor_delay_updates, self.generator = actor_delay_updates, generator
        self.device_generator = device_generator or generator

    def act(self, obs: Obs, env_steps: int) -> Tensor:
        device = self.policy.device
        if self.warmup_steps <= env_steps < self.warmup_steps + self.random_steps:
            n = next(iter(obs.values())).shape[0]
            gen = self.device_generator
            return (
                torch.rand(n, self.policy.config.action_dim, generator=gen, device=gen.device) * 2
                - 1
            )
        # Warmup (WSRL) runs the start policy: no update has happened yet.
        return self.policy.act({k: v.to(device) for k, v in obs.items()})

    def observe(self, obs: Obs, action: Tensor, reward: Tensor, terminated: Tensor,
                truncated: Tensor, next_obs: Obs, final_obs: Obs) -> None:  # fmt: skip
        self.buffer.add(obs, action, reward, final_obs, terminated)

    def learning(self, env_steps: int) -> bool:
        return env_steps > self.warmup_steps + self.random_steps

    def update(self, index: int) -> dict[str, Tensor | float]:
        cfg = self.sac.cfg
        batch = self.sampler.sample(cfg.utd * cfg.batch_size, self.device_generator)
        return self.sac.update(batch, update_actor=index >= self.actor_delay_updates)

    def extras(self) -> tuple[dict[str, Any], dict[str, dict[str, Tensor]]]:
        config, files = critic_checkpoint(self.sac.critic, self.sac.target, self.sac.temperature)
        config["reward"] = self.reward.to_json()
        return config, files

    def state_dict(self) -> tuple[dict[str, dict[str, Tensor]], dict[str, Any]]:
        tensors, optimizers = self.sac.state_dict()
        if self.device_generator is not self.generator:
            tensors = {**tensors, "device_generator": self.device_generator.get_state()}
        return {"learner": tensors, "replay": self.buffer.state_dict()}, {"optimizers": optimizers}

    def load_state_dict(self, files: dict[str, dict[str, Tensor]], meta: dict[str, Any]) -> None:
        learner = dict(files["learner"])
        device_state = learner.pop("device_generator", None)
        if device_state is not None and self.device_generator is not self.generator:
            self.device_generator.set_state(device_state)
        self.sac.load_state_dict(learner, meta["optimizers"])
        replay = dict(files["replay"])
        if int(replay["pos"][2]) != self.buffer.capacity:
            replay["pos"] = replay["pos"].clone()
            replay["pos"][2] = self.buffer.capacity  # a larger budget: the rows, a bigger ring
        self.buffer.load_state_dict(replay)


def build_agent(
    cfg: OnlineConfig,
    env: Any,
    generator: torch.Generator,
    *,
    keep_critics: bool,
    actor_full_batch: bool,
    actor_lr: float,
    default_reward: RewardConvention,
) -> SACAgent:
    """The SAC-family agent for a resolved ``cfg``: the actor (from ``init``, from the
    dataset's shapes, or from ``env``'s spaces), critics (the start policy's if
    ``keep_critics``, else new), offline data, reward convention and replay."""
    init_cfg = read_config(cfg.init) if cfg.init is not None else {}
    data_path = cfg.dataset
    train_cfg = init_cfg.get("train", {})
    if data_path is None and cfg.offline_ratio > 0 and "dataset" in train_cfg:
        data_path = Path(train_cfg["dataset"])
    if cfg.offline_ratio > 0 and data_path is None:
        raise ConfigError(f"{cfg.algo}: offline_ratio {cfg.offline_ratio} needs --dataset")
    policy, offline = _actor_and_data(cfg, env, data_path)
    temperature = 1.0
    if keep_critics and not cfg.fresh_critic:
        assert cfg.init is not None
        try:
            critic, target = load_critic(cfg.init, device=cfg.device)
        except CheckpointError as e:
            raise ConfigError(
                f"{cfg.algo} starts from a policy with critics: {e} "
                "(pass --fresh-critic to start new critics instead)"
            ) from e
        temperature = load_temperature(cfg.init) or 1.0
        # Kept critics keep the convention they were trained under.
        reward = saved_reward_convention(init_cfg) or default_reward
    else:
        critic = CriticEnsemble(CriticConfig(
            obs_dim=policy.config.obs_dim, action_dim=policy.config.action_dim,
            num_critics=cfg.num_critics, hidden_dims=list(cfg.critic_hidden_dims),
        )).to(cfg.device)  # fmt: skip
        target = make_target(critic)
        reward = default_reward
    reward = RewardConvention(
        reward.scale if cfg.reward_scale is None else cfg.reward_scale,
        reward.bias if cfg.reward_bias is None else cfg.reward_bias,
        reward.discount if cfg.discount is None else cfg.discount,
    )
    if cfg.init_temperature is not None:
        temperature = cfg.init_temperature
    sac_cfg = SACConfig(
        utd=cfg.utd, batch_size=cfg.batch_size, actor_full_batch=actor_full_batch,
        target_subset=min(2, critic.num_critics), actor_reduce=cfg.actor_reduce,
        entropy_backup=cfg.entropy_backup, target_entropy_per_dim=cfg.target_entropy_per_dim,
        actor_lr=actor_lr, temperature_lr=cfg.temperature_lr, discount=reward.discount,
        reward_scale=reward.scale, reward_bias=reward.bias, compile_critic=bool(cfg.compile_critic),
    )  # fmt: skip
    sampling = device_generator(generator, policy.device)
    sac = SAC(policy, critic, target, sac_cfg, temperature, sampling)
    capacity = cfg.env_steps + cfg.num_envs
    if cfg.replay_capacity is not None:
        capacity = min(capacity, max(cfg.replay_capacity, cfg.num_envs))
    buffer = ReplayBuffer.for_space(
        capacity, env.observation_space, env.action_dim,
        keys=policy.obs_keys, device=cfg.device,
    )  # fmt: skip
    sampler = MixedSampler(buffer, offline, cfg.offline_ratio)
    return SACAgent(
        sac, buffer, sampler, reward, warmup_steps=cfg.warmup_steps,
        random_steps=cfg.random_steps, actor_delay_updates=cfg.actor_delay_updates,
        generator=generator, device_generator=sampling,
    )  # fmt: skip


def device_generator(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """The generator to draw replay indices, target subsets and random actions with: the run's
    own on the CPU; on a GPU, one there, seeded from it, so no draw is copied host-to-device
    (each such copy waits for the queued GPU work: a host sync per critic step)."""
    if device.type != "cuda":
        return generator
    seed = int(torch.randint(2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


def _actor_and_data(
    cfg: OnlineConfig, env: Any, data_path: Path | None
) -> tuple[GaussianPolicy, OfflineDataset | None]:
    offline: OfflineDataset | None = None
    if cfg.init is not None:
        policy = load_policy(cfg.init, device=cfg.device)
        if not isinstance(policy, GaussianPolicy):
            raise ConfigError(
                f"{cfg.init}: {cfg.algo} fine-tunes a gaussian policy, got {policy.policy_type!r}"
            )
        if data_path is not None:
            offline, _ = load_task_dataset(data_path, obs_keys=policy.obs_keys)
    elif data_path is not None:
        offline, env_info = load_task_dataset(data_path)
        keys = [k for k, v in offline.obs.items() if v.is_floating_point()]
        dims = sum(offline.obs[k].shape[-1] for k in keys)
        policy_cfg = GaussianPolicyConfig(keys, dims, offline.action_dim, hidden_dims=[256, 256])
        normalizer = Normalizer.fit(offline, keys, actions="env")
        policy = GaussianPolicy(policy_cfg, normalizer, env_info)
    else:
        policy = _actor_from_env(cfg, env)
    if cfg.init is not None or data_path is not None:
        trained_for = policy.env_info.get("env_name")
        if trained_for != cfg.task:
            raise ConfigError(f"start policy / data are for env {trained_for!r}, not {cfg.task!r}")
    if cfg.from_scratch:
        # A new actor acts in the env's whole [-1, 1] box whatever the start's normalizer.
        normalizer = Normalizer(dict(policy.normalizer.params))
        ones = torch.ones(policy.config.action_dim)
        normalizer.params[ACTION_FIELD] = (ones, torch.zeros_like(ones))
        policy = GaussianPolicy(policy.config, normalizer, policy.env_info)
    policy = policy.to(cfg.device).train()
    # Normalizer constants on the device too: otherwise every forward copies them host-to-
    # device (several copies per critic step, and none may happen inside a CUDA graph).
    policy.normalizer.params = {
        k: (scale.to(cfg.device), offset.to(cfg.device))
        for k, (scale, offset) in policy.normalizer.params.items()
    }
    return policy, None if offline is None else offline.to(cfg.device)


def _actor_from_env(cfg: OnlineConfig, env: Any) -> GaussianPolicy:
    """SAC with no prior data: every float observation key of the env, identity normalizers."""
    spaces = env.observation_space.spaces
    keys = [k for k, sp in spaces.items() if sp.dtype is not None and "float" in str(sp.dtype)]
    dims = {k: int(math.prod(spaces[k].shape)) for k in keys}
    if any(len(spaces[k].shape) != 1 for k in keys):
        raise ConfigError(f"{cfg.algo} from an env alone needs flat observations; got "
                          f"{ {k: tuple(spaces[k].shape) for k in keys} }")  # fmt: skip
    params = {f"obs.{k}": (torch.ones(d), torch.zeros(d)) for k, d in dims.items()}
    ones = torch.ones(env.action_dim)
    params[ACTION_FIELD] = (ones, torch.zeros_like(ones))
    env_info = {"env_name": cfg.task, "env_kwargs": json.loads(cfg.env_kwargs or "{}")}
    own = getattr(env, "env_kwargs", None)
    if isinstance(own, dict) and own:
        env_info["env_kwargs"] = {**own, **env_info["env_kwargs"]}
    config = GaussianPolicyConfig(keys, sum(dims.values()), env.action_dim, hidden_dims=[256, 256])
    return GaussianPolicy(config, Normalizer(params), env_info)


def build(cfg: OnlineConfig, env: Any, generator: torch.Generator) -> SACAgent:
    """Plain SAC: new critics, 10 r - 5 unless set, the actor from scratch by default."""
    return build_agent(cfg, env, generator, keep_critics=False, actor_full_batch=False,
                       actor_lr=3e-4, default_reward=REWARD)  # fmt: skip


__all__ = ["DESCRIPTION", "PRESETS", "REWARD", "SAC", "SACAgent", "SACConfig", "build",
           "build_agent"]  # fmt: skip
