"""Online fine-tuning loop: collect with the current policy, update with SAC/RLPD/WSRL,
evaluate, checkpoint and resume.

Per vector step of ``num_envs`` envs: collect one transition per env, then (once learning has
started) ``updates_per_collect`` SAC updates of ``utd`` critic minibatches each. Before
learning starts, WSRL runs the frozen pretrained policy for ``warmup_steps`` env steps and
SAC/RLPD act uniformly at random for ``random_steps``; the first ``actor_delay_updates`` update
calls then train only the critics. Outputs in ``out``: ``curve.json``,
``curve.csv``, ``curve.png`` (success vs env steps), ``tb/``, ``checkpoint/`` (a policy
directory plus learner, optimizer, replay and RNG state; safetensors and JSON only) and the
final ``policy/`` (with its critics, so it can start another WSRL run).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch

from robot_rl.algos.common import (
    config_json,
    load_task_dataset,
    make_writer,
    seed_everything,
    with_matmul_precision,
)
from robot_rl.algos.sac import SAC, SACConfig
from robot_rl.checkpoint import CONFIG_FILE, load_extra
from robot_rl.data import Normalizer, OfflineDataset
from robot_rl.data.replay import MixedSampler, ReplayBuffer
from robot_rl.errors import CheckpointError, ConfigError, OutputExistsError
from robot_rl.evaluate import check_policy_fits_env, evaluate, policy_env
from robot_rl.outputs import DeferredInterrupt, claim_output, clean_leftovers
from robot_rl.perf import MatmulPrecision
from robot_rl.policies import load_policy
from robot_rl.policies.critic import (
    CriticConfig,
    CriticEnsemble,
    critic_checkpoint,
    load_critic,
    load_temperature,
    make_target,
)
from robot_rl.policies.gaussian import GaussianPolicy, GaussianPolicyConfig
from robot_rl.train.collector import Collector, random_actions
from robot_rl.train.curves import write_curve
from sim.vec_env import VecEnv, check_vec_env

ALGOS = ("sac", "rlpd", "wsrl")

# Fields left unset take these values. cpu: one run <= 10 min on one core (8 envs per update
# call, UTD 4 per call, narrow critics); paper: the authors' settings, one env per update.
# cpu wsrl deviates from the paper in two measured ways (lift, 4k-step Cal-QL start at 0.52).
# A short Cal-QL run stops with its temperature far above equilibrium (0.75, still falling
# at lr 1e-4); from there the actor's entropy rose from -1 to +0.7 within 300 updates and
# success fell to 0.16 (to 0.10 with a 5k warmup). Starting at temperature 0.1 held entropy
# near the -|A| target (min 0.46 / 0.34 on seeds 0 / 1); adding 250 critic-only updates after
# the warmup, so the critics fit online data before the actor follows them, gave 0.52 / 0.52
# / 0.34 on seeds 0-2 (critic-only phase alone: 0.42 / 0.34; discount 0.95 collapsed to 0).
# cpu rlpd makes 4 update calls per collect (2 critic steps per env step; the paper: 20): with
# 1, lift stayed at 0.00 for 20k env steps on every seed; with 4 it reached 1.00 by 28k / 20k
# env steps on seeds 0 / 1 (from scratch, 50/50 with 200 mixed demos).
_COMMON = {"num_envs": 8, "updates_per_collect": 1, "batch_size": 256}
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {
        "sac": {**_COMMON, "utd": 4, "num_critics": 2, "critic_hidden_dims": [128, 128],
                "random_steps": 1000},
        "rlpd": {**_COMMON, "updates_per_collect": 4, "utd": 4, "num_critics": 10,
                 "critic_hidden_dims": [128, 128], "random_steps": 1000},
        "wsrl": {**_COMMON, "utd": 4, "warmup_steps": 2000, "init_temperature": 0.1,
                 "actor_delay_updates": 250},
    },
    "paper": {
        "sac": {"num_envs": 1, "updates_per_collect": 1, "batch_size": 256, "utd": 1,
                "num_critics": 2, "critic_hidden_dims": [256, 256], "random_steps": 5000},
        "rlpd": {"num_envs": 1, "updates_per_collect": 1, "batch_size": 256, "utd": 20,
                 "num_critics": 10, "critic_hidden_dims": [256, 256], "random_steps": 5000},
        "wsrl": {"num_envs": 1, "updates_per_collect": 1, "batch_size": 256, "utd": 4,
                 "warmup_steps": 5000},
    },
}  # fmt: skip


@dataclass
class FinetuneConfig:
    """Fine-tune a policy online in a simulated task with SAC, RLPD or WSRL."""

    algo: Literal["sac", "rlpd", "wsrl"]
    """sac (plain SAC), rlpd (SAC + 50/50 offline data), wsrl (warm start from Cal-QL)."""
    task: str
    """Task to fine-tune in (must be the task the start policy was trained for)."""
    out: Path
    """Run directory."""
    init: Path | None = None
    """Start policy directory (Cal-QL with critics for wsrl; sac/rlpd take its normalizer)."""
    dataset: Path | None = None
    """Offline data for rlpd (default: the dataset ``init`` was trained on)."""
    scale: Literal["cpu", "paper"] = "cpu"
    """Preset for the fields left unset: cpu (small, <= 10 min here) or paper (authors')."""
    env_steps: int = 20_000
    """Env-step budget (transitions collected, warmup included)."""
    num_envs: int | None = None
    """Parallel envs collecting (default: per scale)."""
    updates_per_collect: int | None = None
    """SAC update calls per vector step of all envs (default: per scale)."""
    utd: int | None = None
    """Critic minibatches per update call (default: per algo and scale)."""
    batch_size: int | None = None
    """Transitions per critic minibatch (default: per scale)."""
    warmup_steps: int | None = None
    """wsrl: env steps of the frozen start policy before updates (default: per scale)."""
    random_steps: int | None = None
    """sac/rlpd: env steps of uniform random actions before updates (default: per scale)."""
    actor_delay_updates: int | None = None
    """Update calls that train only the critics before the actor and temperature follow
    (default: cpu wsrl 250; 0, as published, otherwise)."""
    offline_ratio: float | None = None
    """Share of each batch from the offline data (default: rlpd 0.5, others 0)."""
    from_scratch: bool | None = None
    """Re-initialize the actor (default: sac and rlpd yes, wsrl no)."""
    fresh_critic: bool = False
    """wsrl: allow a start policy without critics (new critics; not the WSRL recipe)."""
    compile_critic: bool = False
    """torch.compile the critic ensemble's forward (and backward): ~10 s to compile; a UTD-4
    update with 10 critics of 2x256 then took 95 ms instead of 116 here (65 ms adding
    --matmul-precision medium; 1 thread)."""
    num_critics: int | None = None
    """Size of newly built critic ensembles (default: per algo and scale)."""
    critic_hidden_dims: list[int] | None = None
    """Widths of newly built critics (default: per scale)."""
    target_entropy_per_dim: float | None = None
    """Target entropy per action dim (default: rlpd -0.5, others -1)."""
    entropy_backup: bool | None = None
    """Entropy term in the TD target (default: wsrl no, others yes)."""
    actor_reduce: Literal["mean", "min"] | None = None
    """Ensemble reduction the actor maximizes (default: rlpd mean, others min)."""
    init_temperature: float | None = None
    """SAC temperature at the start (default: cpu wsrl 0.1; else the start policy's for
    wsrl, 1 for sac/rlpd)."""
    temperature_lr: float | None = None
    """Temperature Adam learning rate (default: wsrl 1e-4 as published, sac/rlpd 3e-4)."""
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
    GPUs, ~2e-3 relative error), high (TF32 on GPUs)."""
    overwrite: bool = False
    """Delete an existing ``out`` and start over."""


def resolve(cfg: FinetuneConfig) -> FinetuneConfig:
    """Fill unset fields from the presets and check the values."""
    if cfg.algo not in ALGOS:
        raise ConfigError(f"unknown algo {cfg.algo!r}; choose from {list(ALGOS)}")
    if cfg.scale not in PRESETS:
        raise ConfigError(f"unknown scale {cfg.scale!r}; choose from {sorted(PRESETS)}")
    defaults: dict[str, Any] = {
        "warmup_steps": 0,
        "random_steps": 0,
        "actor_delay_updates": 0,
        "temperature_lr": 1e-4 if cfg.algo == "wsrl" else 3e-4,
        "offline_ratio": 0.5 if cfg.algo == "rlpd" else 0.0,
        "from_scratch": cfg.algo != "wsrl",
        "num_critics": 10,
        "critic_hidden_dims": [256, 256],
        "target_entropy_per_dim": -0.5 if cfg.algo == "rlpd" else -1.0,
        "entropy_backup": cfg.algo != "wsrl",
        "actor_reduce": "mean" if cfg.algo == "rlpd" else "min",
        **PRESETS[cfg.scale][cfg.algo],
    }
    cfg = replace(cfg, **{k: v for k, v in defaults.items() if getattr(cfg, k) is None})
    counts = (cfg.env_steps, cfg.num_envs, cfg.utd, cfg.batch_size, cfg.eval_episodes)
    if min(counts) < 1 or min(cfg.eval_every, cfg.checkpoint_every, cfg.log_every) < 1:
        raise ConfigError("env_steps, num_envs, utd, batch_size and intervals must be >= 1")
    if min(cfg.warmup_steps, cfg.random_steps, cfg.updates_per_collect,
           cfg.actor_delay_updates) < 0:  # fmt: skip
        raise ConfigError(
            "warmup_steps, random_steps, updates_per_collect, actor_delay_updates must be >= 0"
        )
    if cfg.init_temperature is not None and cfg.init_temperature <= 0:
        raise ConfigError(f"init_temperature must be > 0, got {cfg.init_temperature}")
    if cfg.algo == "wsrl" and cfg.init is None:
        raise ConfigError("wsrl needs --init, a Cal-QL policy directory with critics")
    if cfg.init is None and cfg.dataset is None:
        raise ConfigError(f"{cfg.algo} needs --init or --dataset (for the normalizer)")
    return cfg


@with_matmul_precision
def finetune(
    cfg: FinetuneConfig,
    env: VecEnv | None = None,
    eval_env: VecEnv | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or resume) fine-tuning on ``env``; returns the summary written to ``curve.json``.

    ``env`` collects (``cfg.num_envs`` wide) and ``eval_env`` evaluates; either one left out is
    built from the env spec the start policy records (``env_info``), through the env registry.
    The loop closes only the envs it built. ``out`` is locked against a second writer for the
    whole run, and an old run there is removed (``--overwrite``) only once every input loaded.
    """
    cfg = resolve(cfg)
    replaceable = cfg.overwrite or cfg.resume
    with (
        claim_output(cfg.out, "run", replaceable, [cfg.init, cfg.dataset]),
        DeferredInterrupt() as interrupt,  # Ctrl+C saves a checkpoint at the next step
    ):
        return _finetune(cfg, env, eval_env, progress, interrupt)


def _finetune(
    cfg: FinetuneConfig,
    env: VecEnv | None,
    eval_env: VecEnv | None,
    progress: bool,
    interrupt: DeferredInterrupt,
) -> dict[str, Any]:
    checkpoint = _prepare_out(cfg)
    generator = seed_everything(cfg.seed)
    learner = build_learner(cfg)
    policy = learner.policy
    owned: list[VecEnv] = []
    if env is None:
        env = policy_env(policy, cfg.num_envs, cfg.seed)
        owned.append(env)
    if eval_env is None:
        eval_env = policy_env(policy, min(cfg.eval_episodes, 25), cfg.eval_seed)
        owned.append(eval_env)
    check_vec_env(env)
    if env.num_envs != cfg.num_envs:
        raise ConfigError(f"env has {env.num_envs} envs but num_envs is {cfg.num_envs}")
    check_policy_fits_env(policy, env)
    if checkpoint is None and cfg.out.exists():
        shutil.rmtree(cfg.out)  # --overwrite, now that the inputs loaded and the env fits
    buffer = ReplayBuffer.for_space(
        cfg.env_steps + cfg.num_envs,
        env.observation_space,
        env.action_dim,
        keys=policy.obs_keys,
        device=cfg.device,
    )
    sampler = MixedSampler(buffer, learner.offline, cfg.offline_ratio)
    sac = SAC(
        policy,
        learner.critic,
        learner.target,
        sac_config(cfg, learner),
        learner.temperature,
        generator,
    )
    state: dict[str, Any] = {"env_steps": 0, "updates": 0, "curve": [], "wall_s": 0.0}
    if checkpoint is not None:
        state = _load_checkpoint(checkpoint, cfg, sac, buffer, generator)
    # A resumed run restarts its envs with fresh episodes from a seed of its own.
    collector = Collector(env, buffer, seed=cfg.seed + state["env_steps"])
    collector.env_steps = state["env_steps"]
    learn_start = cfg.warmup_steps + cfg.random_steps
    writer = make_writer(cfg.out / "tb", "finetune")
    start = time.perf_counter() - state["wall_s"]

    def run_eval() -> None:
        result = evaluate(policy, eval_env, cfg.eval_episodes, cfg.eval_seed)
        summary = result.summary()
        row = {
            "env_steps": collector.env_steps,
            "updates": state["updates"],
            "success_rate": summary["eval/success_rate"],
            "mean_return": summary["eval/mean_return"],
            "wall_s": time.perf_counter() - start,
        }
        state["curve"].append(row)
        for name, value in summary.items():
            writer.add_scalar(name, value, collector.env_steps)
        write_curve(cfg.out, state["curve"], _curve_meta(cfg), learn_start)
        if progress:
            print(f"[{cfg.algo}] steps {row['env_steps']:>6}  updates {row['updates']:>5}  "
                  f"success {row['success_rate']:.2f}  ({row['wall_s']:.0f} s)", flush=True)  # fmt: skip

    def save_checkpoint() -> None:
        state["env_steps"] = collector.env_steps
        state["wall_s"] = time.perf_counter() - start
        _save_checkpoint(cfg, sac, buffer, generator, state)

    try:
        if not state["curve"]:
            run_eval()
        explore = random_actions(cfg.num_envs, env.action_dim, generator)

        def act(obs: dict[str, torch.Tensor]) -> torch.Tensor:
            obs = {k: v.to(cfg.device) for k, v in obs.items()}
            return policy.act(obs).to(env.device)

        metrics: dict[str, torch.Tensor] = {}
        while collector.env_steps < cfg.env_steps:
            interrupt.check(save_checkpoint)  # Ctrl+C: checkpoint, then stop
            before = collector.env_steps
            random_phase = cfg.warmup_steps <= before < learn_start
            collector.collect(explore if random_phase else act)
            if collector.env_steps > learn_start:
                for _ in range(cfg.updates_per_collect):
                    batch = sampler.sample(cfg.utd * cfg.batch_size, generator)
                    update_actor = state["updates"] >= cfg.actor_delay_updates
                    metrics = sac.update(batch, update_actor=update_actor)
                    state["updates"] += 1
            now = collector.env_steps
            if now // cfg.log_every > before // cfg.log_every:
                for name, value in {**metrics, **collector.pop_stats()}.items():
                    writer.add_scalar(name, float(value), now)
                writer.add_scalar("train/updates", state["updates"], now)
            if now // cfg.eval_every > before // cfg.eval_every or now >= cfg.env_steps:
                run_eval()
            if now // cfg.checkpoint_every > before // cfg.checkpoint_every or now >= cfg.env_steps:
                save_checkpoint()
    finally:
        writer.close()
        for owned_env in owned:
            owned_env.close()
    extra_config, extra_files = critic_checkpoint(sac.critic, sac.target, sac.temperature)
    extra_config["finetune"] = config_json(cfg)
    policy.save(cfg.out / "policy", overwrite=True, extra_config=extra_config,
                extra_files=extra_files)  # fmt: skip
    return write_curve(cfg.out, state["curve"], _curve_meta(cfg), learn_start)


def _prepare_out(cfg: FinetuneConfig) -> Path | None:
    """The checkpoint to resume from, after applying --overwrite / --resume to ``out``."""
    ckpt = cfg.out / "checkpoint"
    for name in ("checkpoint", "policy", "curve.json", "curve.csv"):
        clean_leftovers(cfg.out / name)  # a killed save's .tmp-/.old- copies (or put back)
    if cfg.resume:
        if ckpt.is_dir():
            return ckpt
        if cfg.out.exists():
            raise CheckpointError(f"{cfg.out} has no checkpoint/ to resume from")
        return None
    if cfg.out.exists() and not cfg.overwrite:
        raise OutputExistsError(
            f"{cfg.out} exists; pass --resume to continue it or --overwrite to replace it"
        )
    return None  # an old run is removed only after the inputs load (see _finetune)


def _save_checkpoint(
    cfg: FinetuneConfig,
    sac: SAC,
    buffer: ReplayBuffer,
    generator: torch.Generator,
    state: dict[str, Any],
) -> None:
    tensors, optim_meta = sac.state_dict()
    extra_config, extra_files = critic_checkpoint(sac.critic, sac.target, sac.temperature)
    extra_config["finetune"] = {
        "config": config_json(cfg),
        "optimizers": optim_meta,
        **{k: state[k] for k in ("env_steps", "updates", "curve", "wall_s")},
    }
    rng = {"sampler": generator.get_state(), "torch": torch.get_rng_state()}
    extra_files.update(learner=tensors, replay=buffer.state_dict(), rng=rng)
    sac.policy.save(
        cfg.out / "checkpoint", overwrite=True, extra_config=extra_config, extra_files=extra_files
    )


def _load_checkpoint(
    ckpt: Path,
    cfg: FinetuneConfig,
    sac: SAC,
    buffer: ReplayBuffer,
    generator: torch.Generator,
) -> dict[str, Any]:
    saved = read_json(ckpt / "config.json").get("finetune")
    if saved is None:
        raise CheckpointError(f"{ckpt}: not a fine-tuning checkpoint (no 'finetune' entry)")
    for key in ("algo", "task", "num_envs", "utd", "batch_size"):
        if saved["config"].get(key) != getattr(cfg, key):
            raise CheckpointError(
                f"{ckpt}: checkpoint has {key}={saved['config'].get(key)!r}, "
                f"this run {getattr(cfg, key)!r}; resume with the same settings"
            )
    sac.load_state_dict(load_extra(ckpt, "learner"), saved["optimizers"])
    replay = load_extra(ckpt, "replay")
    if int(replay["pos"][2]) != buffer.capacity:
        # A larger budget on resume: keep the rows, in a bigger ring.
        replay["pos"][2] = buffer.capacity
    buffer.load_state_dict(replay)
    rng = load_extra(ckpt, "rng")
    generator.set_state(rng["sampler"])
    torch.set_rng_state(rng["torch"])
    return {k: saved[k] for k in ("env_steps", "updates", "curve", "wall_s")}


def _curve_meta(cfg: FinetuneConfig) -> dict[str, Any]:
    return {"algo": cfg.algo, "task": cfg.task, "scale": cfg.scale, "seed": cfg.seed,
            "init": str(cfg.init)}  # fmt: skip


@dataclass
class Learner:
    """What a run starts from: networks, temperature, offline data and reward convention."""

    policy: GaussianPolicy
    critic: CriticEnsemble
    target: CriticEnsemble
    temperature: float
    offline: OfflineDataset | None
    reward_scale: float
    reward_bias: float
    discount: float


def build_learner(cfg: FinetuneConfig) -> Learner:
    """Load or build the actor, critics and offline data for ``cfg`` (already resolved)."""
    init_cfg = read_json(cfg.init / CONFIG_FILE) if cfg.init is not None else {}
    train_cfg = init_cfg.get("train", {})
    data_path = cfg.dataset
    if data_path is None and cfg.offline_ratio > 0 and "dataset" in train_cfg:
        data_path = Path(train_cfg["dataset"])
    if cfg.offline_ratio > 0 and data_path is None:
        raise ConfigError(f"offline_ratio {cfg.offline_ratio} needs --dataset")

    if cfg.init is not None:
        policy = load_policy(cfg.init, device=cfg.device)
        if not isinstance(policy, GaussianPolicy):
            raise ConfigError(
                f"{cfg.init}: fine-tuning needs a gaussian policy, got {policy.policy_type!r}"
            )
        offline = None
        if data_path is not None:
            offline, _ = load_task_dataset(data_path, obs_keys=policy.obs_keys)
    else:
        assert data_path is not None
        offline, env_info = load_task_dataset(data_path)
        keys = [k for k, v in offline.obs.items() if v.is_floating_point()]
        dims = sum(offline.obs[k].shape[-1] for k in keys)
        policy_cfg = GaussianPolicyConfig(keys, dims, offline.action_dim, hidden_dims=[256, 256])
        policy = GaussianPolicy(policy_cfg, Normalizer.fit(offline, keys), env_info)
    if policy.env_info.get("env_name") != cfg.task:
        raise ConfigError(
            f"start policy was trained for task {policy.env_info.get('env_name')!r}, "
            f"not {cfg.task!r}"
        )
    if cfg.from_scratch:
        policy = GaussianPolicy(policy.config, policy.normalizer, policy.env_info)
    policy = policy.to(cfg.device).train()

    temperature = 1.0
    if cfg.algo == "wsrl" and not cfg.fresh_critic:
        assert cfg.init is not None
        try:
            critic, target = load_critic(cfg.init, device=cfg.device)
        except CheckpointError as e:
            raise ConfigError(
                f"wsrl starts from a Cal-QL policy with critics: {e} "
                "(pass --fresh-critic to start new critics instead)"
            ) from e
        temperature = load_temperature(cfg.init) or 1.0
        target.requires_grad_(False)
    else:
        critic = CriticEnsemble(
            CriticConfig(
                obs_dim=policy.config.obs_dim,
                action_dim=policy.config.action_dim,
                num_critics=cfg.num_critics,
                hidden_dims=list(cfg.critic_hidden_dims),
            )
        ).to(cfg.device)
        target = make_target(critic)
    if cfg.init_temperature is not None:
        temperature = cfg.init_temperature
    # WSRL keeps the reward convention its critics were pretrained with.
    same_reward = cfg.algo == "wsrl" and not cfg.fresh_critic
    defaults = SACConfig()
    return Learner(
        policy=policy,
        critic=critic,
        target=target,
        temperature=temperature,
        offline=None if offline is None else offline.to(cfg.device),
        reward_scale=train_cfg.get("reward_scale", defaults.reward_scale)
        if same_reward
        else defaults.reward_scale,
        reward_bias=train_cfg.get("reward_bias", defaults.reward_bias)
        if same_reward
        else defaults.reward_bias,
        discount=train_cfg.get("discount", defaults.discount) if same_reward else defaults.discount,
    )


def sac_config(cfg: FinetuneConfig, learner: Learner) -> SACConfig:
    """The SAC settings of ``cfg.algo`` (see the table in :mod:`robot_rl.algos.sac`)."""
    wsrl = cfg.algo == "wsrl"
    return SACConfig(
        utd=cfg.utd,
        batch_size=cfg.batch_size,
        actor_full_batch=wsrl,
        target_subset=min(2, learner.critic.num_critics),
        actor_reduce=cfg.actor_reduce,
        entropy_backup=cfg.entropy_backup,
        target_entropy_per_dim=cfg.target_entropy_per_dim,
        actor_lr=1e-4 if wsrl else 3e-4,
        temperature_lr=cfg.temperature_lr,
        discount=learner.discount,
        reward_scale=learner.reward_scale,
        reward_bias=learner.reward_bias,
        compile_critic=cfg.compile_critic,
    )


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or a CheckpointError naming it."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: cannot read JSON: {e}") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


__all__ = ["ALGOS", "PRESETS", "FinetuneConfig", "Learner", "finetune", "resolve"]
