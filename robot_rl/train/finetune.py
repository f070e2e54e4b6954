"""Online fine-tuning loop: collect with the agent, update it, evaluate, checkpoint, resume.

The algorithms live one per file (:mod:`robot_rl.algos.sac`, ``rlpd``, ``wsrl``, ``expo``),
each with its presets, reward convention and ``build``; the loop drives any of them through
:class:`robot_rl.algos.agent.Agent`. Per vector step of ``num_envs`` envs: ``act``, step,
``observe``; while the agent is ``learning``, ``updates_per_collect`` update calls.

Outputs in ``out``: ``curve.json``, ``curve.csv``, ``curve.png`` (success vs env steps),
``tb/``, ``checkpoint/`` (a policy directory plus the agent's learner, optimizer and replay
state and every RNG; safetensors and JSON only) and the final ``policy/`` (with what the
next run starts from: critics and the reward convention they learned under).
"""

from __future__ import annotations

import importlib
import json
import random
import shutil
import sys
import time
from dataclasses import fields, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from robot_rl.algos.agent import Agent, OnlineConfig
from robot_rl.algos.common import config_json, make_writer, seed_everything, with_matmul_precision
from robot_rl.checkpoint import CONFIG_FILE, load_extra, load_policy_dir
from robot_rl.data import Normalizer
from robot_rl.envs import gpu_sim_kwargs, make_env_checked, parse_env_kwargs
from robot_rl.errors import CheckpointError, ConfigError
from robot_rl.evaluate import check_policy_fits_env, evaluate
from robot_rl.outputs import DeferredInterrupt, claim_output, clean_leftovers
from robot_rl.train.collector import Collector
from robot_rl.train.curves import write_curve
from sim.vec_env import VecEnv, check_vec_env

FinetuneConfig = OnlineConfig

ALGOS: dict[str, str] = {
    "sac": "robot_rl.algos.sac",
    "rlpd": "robot_rl.algos.rlpd",
    "wsrl": "robot_rl.algos.wsrl",
    "expo": "robot_rl.algos.expo",
}
"""Online algorithm name -> its module (``DESCRIPTION``, ``PRESETS``, ``REWARD``, ``build``)."""

RESUMABLE_CHANGES = frozenset({
    "env_steps", "resume", "overwrite", "eval_every", "eval_episodes", "checkpoint_every",
    "log_every", "device", "matmul_precision", "compile_critic",
})  # fmt: skip
"""Settings a resumed run may change; every other one must match the checkpoint's."""


def algorithm(name: str) -> ModuleType:
    """The module of online algorithm ``name``, or a one-line ConfigError."""
    if name not in ALGOS:
        raise ConfigError(f"unknown algo {name!r}; choose from {list(ALGOS)}")
    return importlib.import_module(ALGOS[name])


def resolve(cfg: FinetuneConfig) -> FinetuneConfig:
    """Fill the fields left unset (None) from the algorithm's preset, then check values."""
    module = algorithm(cfg.algo)
    if cfg.scale not in module.PRESETS:
        raise ConfigError(f"unknown scale {cfg.scale!r}; choose from {sorted(module.PRESETS)}")
    preset = module.PRESETS[cfg.scale]
    cfg = replace(cfg, **{k: v for k, v in preset.items() if getattr(cfg, k) is None})
    if cfg.compile_critic is None:
        cfg = replace(cfg, compile_critic=False)
    counts = {k: getattr(cfg, k) for k in ("env_steps", "num_envs", "utd", "batch_size",
              "eval_episodes", "eval_every", "checkpoint_every", "log_every", "num_critics",
              "replay_capacity")}  # fmt: skip
    bad = {k: v for k, v in counts.items() if v is not None and v < 1}
    if bad:
        raise ConfigError(f"must be >= 1: {', '.join(f'{k}={v}' for k, v in bad.items())}")
    nonneg = {k: getattr(cfg, k) for k in ("warmup_steps", "random_steps",
              "updates_per_collect", "actor_delay_updates")}  # fmt: skip
    bad = {k: v for k, v in nonneg.items() if v is not None and v < 0}
    if bad:
        raise ConfigError(f"must be >= 0: {', '.join(f'{k}={v}' for k, v in bad.items())}")
    if cfg.offline_ratio is not None and not 0.0 <= cfg.offline_ratio <= 1.0:
        raise ConfigError(f"offline_ratio must be in [0, 1], got {cfg.offline_ratio}")
    if cfg.init_temperature is not None and cfg.init_temperature <= 0:
        raise ConfigError(f"init_temperature must be > 0, got {cfg.init_temperature}")
    if cfg.discount is not None and not 0.0 < cfg.discount < 1.0:
        raise ConfigError(f"discount must be in (0, 1), got {cfg.discount}")
    if cfg.reward_scale == 0:
        raise ConfigError("reward_scale must not be 0")
    if cfg.critic_hidden_dims is not None and min(cfg.critic_hidden_dims, default=1) < 1:
        raise ConfigError(f"critic_hidden_dims must be >= 1, got {cfg.critic_hidden_dims}")
    if cfg.beta is not None and cfg.beta <= 0:
        raise ConfigError(f"beta must be > 0, got {cfg.beta}")
    if cfg.num_samples is not None and cfg.num_samples < 1:
        raise ConfigError(f"num_samples must be >= 1, got {cfg.num_samples}")
    if cfg.init is not None and not (cfg.init / CONFIG_FILE).is_file():
        raise ConfigError(f"--init {cfg.init}: not a policy directory (no {CONFIG_FILE})")
    if cfg.dataset is not None and not cfg.dataset.is_file():
        raise ConfigError(f"--dataset {cfg.dataset}: no such file")
    env_kwargs(cfg)
    return cfg


def env_kwargs(cfg: FinetuneConfig) -> dict[str, Any]:
    """``--env-kwargs`` as a dict, or a one-line ConfigError."""
    return parse_env_kwargs(cfg.env_kwargs)


def finetune(
    cfg: FinetuneConfig,
    env: VecEnv | None = None,
    eval_env: VecEnv | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or resume) fine-tuning on ``env`` (``cfg.num_envs`` wide), evaluating on
    ``eval_env``; returns the summary written to ``curve.json``. An env left out is built from
    ``cfg.task`` through the env registry (with the start policy's or dataset's env options
    under ``--env-kwargs``) and closed at the end; handed-in envs stay the caller's."""
    cfg = resolve(cfg)
    kwargs = {**_start_env_kwargs(cfg), **env_kwargs(cfg)}
    if cfg.scale == "gpu":
        kwargs = _gpu_env_kwargs(cfg, kwargs)
    owned: list[VecEnv] = []
    try:
        if env is None:
            env = make_env_checked(cfg.task, num_envs=cfg.num_envs, seed=cfg.seed, **kwargs)
            owned.append(env)
        if eval_env is None:
            eval_env = make_env_checked(
                cfg.task, num_envs=min(cfg.eval_episodes, 25), seed=cfg.eval_seed, **kwargs
            )
            owned.append(eval_env)
        replaceable = cfg.overwrite or cfg.resume
        with (
            claim_output(cfg.out, "run", replaceable, [cfg.init, cfg.dataset]),
            DeferredInterrupt() as interrupt,  # Ctrl+C saves a checkpoint at the next step
        ):
            return _finetune(cfg, env, eval_env, progress, interrupt)
    finally:
        for e in owned:
            e.close()


@with_matmul_precision
def _finetune(
    cfg: FinetuneConfig,
    env: VecEnv,
    eval_env: VecEnv,
    progress: bool,
    interrupt: DeferredInterrupt,
) -> dict[str, Any]:
    check_vec_env(env)
    check_vec_env(eval_env, step=False)
    if env.num_envs != cfg.num_envs:
        raise ConfigError(f"env has {env.num_envs} envs but num_envs is {cfg.num_envs}")
    checkpoint = _checkpoint_to_resume(cfg)
    saved = _saved_state(checkpoint, cfg) if checkpoint is not None else None
    generator = seed_everything(cfg.seed)
    agent: Agent = algorithm(cfg.algo).build(cfg, env, generator)
    check_policy_fits_env(agent.policy, env)
    state: dict[str, Any] = {"env_steps": 0, "updates": 0, "curve": [], "wall_s": 0.0}
    if checkpoint is not None:
        state = _load_checkpoint(checkpoint, saved, agent, generator)
    else:
        _clear_out(cfg)  # only now: every input has been read and checked
    cfg.out.mkdir(parents=True, exist_ok=True)
    policy = agent.policy
    # A resumed run restarts its envs with fresh episodes from a seed of its own.
    collector = Collector(env, agent.observe, seed=cfg.seed + state["env_steps"])
    collector.env_steps = state["env_steps"]
    learn_start = (cfg.warmup_steps or 0) + (cfg.random_steps or 0)
    meta = {"algo": cfg.algo, "task": cfg.task, "scale": cfg.scale, "seed": cfg.seed,
            "init": str(cfg.init)}  # fmt: skip
    writer = make_writer(cfg.out / "tb", "finetune")
    start = time.perf_counter() - state["wall_s"]

    def run_eval() -> None:
        was_training = policy.training
        summary = evaluate(policy.eval(), eval_env, cfg.eval_episodes, cfg.eval_seed).summary()
        policy.train(was_training)
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
        write_curve(cfg.out, state["curve"], meta, learn_start)
        if progress:
            print(f"[{cfg.algo}] steps {row['env_steps']:>6}  updates {row['updates']:>5}  "
                  f"success {row['success_rate']:.2f}  ({row['wall_s']:.0f} s)", flush=True)  # fmt: skip

    def save_checkpoint() -> None:
        state["env_steps"] = collector.env_steps
        state["wall_s"] = time.perf_counter() - start
        _save_checkpoint(cfg, agent, generator, state)

    try:
        if not state["curve"]:
            run_eval()
        metrics: dict[str, Any] = {}
        while collector.env_steps < cfg.env_steps:
            interrupt.check(save_checkpoint)  # Ctrl+C: checkpoint, then stop
            before = collector.env_steps
            collector.collect(lambda obs: agent.act(obs, before).to(env.device))  # noqa: B023
            now = collector.env_steps
            if agent.learning(now):
                for _ in range(cfg.updates_per_collect):
                    metrics = agent.update(state["updates"])
                    state["updates"] += 1
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
    extra_config, extra_files = agent.extras()
    extra_config["finetune"] = config_json(cfg)
    policy.save(cfg.out / "policy", overwrite=True, extra_config=extra_config,
                extra_files=extra_files)  # fmt: skip
    return write_curve(cfg.out, state["curve"], meta, learn_start)


def _gpu_env_kwargs(cfg: FinetuneConfig, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The gpu scale simulates where it learns: a built-in task defaults to the mujoco_warp
    backend on ``cfg.device`` (a user's env keeps its own options). Without CUDA it still runs,
    for smoke tests, after one warning line."""
    if torch.device(cfg.device).type != "cuda":
        print(f"warning: --scale gpu on device {cfg.device!r}: GPU-sized settings on the CPU "
              "(for smoke tests; pass --device cuda on a GPU machine)", file=sys.stderr)  # fmt: skip
        return kwargs
    return gpu_sim_kwargs(cfg.task, cfg.device, kwargs)


def run_finetune(cfg: FinetuneConfig, progress: bool = True) -> dict[str, Any]:
    """CLI entry: :func:`finetune` with envs built from ``cfg.task``."""
    return finetune(cfg, progress=progress)


def _start_env_kwargs(cfg: FinetuneConfig) -> dict[str, Any]:
    """Env options the start policy (or the dataset) records for ``cfg.task``."""
    if cfg.init is not None:
        env_info = read_json(cfg.init / CONFIG_FILE).get("env", {})
        if not isinstance(env_info, dict) or not isinstance(env_info.get("env_kwargs", {}), dict):
            raise CheckpointError(f"{cfg.init}: config.json 'env' must hold an env_kwargs object")
        if env_info.get("env_name") == cfg.task:
            return dict(env_info.get("env_kwargs", {}))
    if cfg.dataset is not None:
        from robot_rl.data import read_robomimic

        args = read_robomimic(cfg.dataset).env_args
        if args.get("env_name") == cfg.task:
            return dict(args.get("env_kwargs", {}))
    return {}


# ---- output directory, checkpoints and resuming -------------------------------------------


def _checkpoint_to_resume(cfg: FinetuneConfig) -> Path | None:
    """The checkpoint to resume from; checks (but does not yet touch) ``out``."""
    ckpt = cfg.out / "checkpoint"
    for name in ("checkpoint", "policy", "curve.json", "curve.csv"):
        clean_leftovers(cfg.out / name)  # a killed save's .tmp-/.old- copies (or put back)
    if cfg.resume:
        if ckpt.is_dir():
            return ckpt
        if cfg.out.exists():
            raise CheckpointError(f"{cfg.out} has no checkpoint/ to resume from")
        return None
    # An existing out without --overwrite / --resume, or one that is not a run directory, was
    # refused by claim_output before this.
    return None


def _clear_out(cfg: FinetuneConfig) -> None:
    if cfg.out.exists():
        shutil.rmtree(cfg.out)


def _saved_state(ckpt: Path, cfg: FinetuneConfig) -> dict[str, Any]:
    """The checkpoint's loop state, after checking it can continue under ``cfg``."""
    saved = read_json(ckpt / CONFIG_FILE).get("finetune")
    if not isinstance(saved, dict) or "config" not in saved:
        raise CheckpointError(f"{ckpt}: not a fine-tuning checkpoint (no 'finetune' entry)")
    now = config_json(cfg)
    for f in fields(cfg):
        if f.name in RESUMABLE_CHANGES:
            continue
        if saved["config"].get(f.name) != now.get(f.name):
            raise CheckpointError(
                f"{ckpt}: checkpoint has {f.name}={saved['config'].get(f.name)!r}, this run "
                f"{now.get(f.name)!r}; resume with the same settings"
            )
    if cfg.env_steps < saved["env_steps"]:
        raise ConfigError(
            f"--env-steps {cfg.env_steps} is below the {saved['env_steps']} env steps the "
            "checkpoint has already run; pass a budget >= that"
        )
    return saved


def _save_checkpoint(
    cfg: FinetuneConfig, agent: Agent, generator: torch.Generator, state: dict[str, Any]
) -> None:
    files, agent_meta = agent.state_dict()
    extra_config, extra_files = agent.extras()
    extra_config["finetune"] = {
        "config": config_json(cfg),
        "agent": agent_meta,
        **{k: state[k] for k in ("env_steps", "updates", "curve", "wall_s")},
    }
    extra_files.update(files)
    extra_files["rng"] = rng_state(generator)
    agent.policy.save(cfg.out / "checkpoint", overwrite=True, extra_config=extra_config,
                      extra_files=extra_files)  # fmt: skip


def _load_checkpoint(
    ckpt: Path, saved: dict[str, Any], agent: Agent, generator: torch.Generator
) -> dict[str, Any]:
    # The checkpoint's own normalizer, never one refit from whatever --dataset says now.
    _, tensors = load_policy_dir(ckpt)
    agent.policy.normalizer = Normalizer.from_state_dict(tensors, "normalizer.")
    names = [n for n in ("learner", "replay", "offline_rows", "episodes")
             if (ckpt / f"{n}.safetensors").exists()]  # fmt: skip
    agent.load_state_dict({n: load_extra(ckpt, n) for n in names}, saved["agent"])
    set_rng_state(load_extra(ckpt, "rng"), generator)
    return {k: saved[k] for k in ("env_steps", "updates", "curve", "wall_s")}


def rng_state(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Every RNG a run draws from, as tensors: the sampler's generator, torch's CPU (and
    CUDA) RNG, numpy's and Python's."""
    state = {"sampler": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    state["numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    state["numpy_rest"] = torch.tensor([pos, has_gauss], dtype=torch.int64)
    state["numpy_gauss"] = torch.tensor([gauss], dtype=torch.float64)
    version, internal, gauss_next = random.getstate()
    state["python"] = torch.tensor(internal, dtype=torch.int64)
    state["python_rest"] = torch.tensor(
        [version, 0 if gauss_next is None else 1], dtype=torch.int64
    )
    state["python_gauss"] = torch.tensor([gauss_next or 0.0], dtype=torch.float64)
    return state


def set_rng_state(state: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    """Inverse of :func:`rng_state`."""
    generator.set_state(state["sampler"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    if "numpy_keys" in state:
        pos, has_gauss = (int(x) for x in state["numpy_rest"])
        keys = state["numpy_keys"].numpy().astype(np.uint32)
        np.random.set_state(("MT19937", keys, pos, has_gauss, float(state["numpy_gauss"][0])))
    if "python" in state:
        version, has_gauss = (int(x) for x in state["python_rest"])
        gauss = float(state["python_gauss"][0]) if has_gauss else None
        random.setstate((version, tuple(int(x) for x in state["python"]), gauss))


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or a CheckpointError naming it."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: cannot read JSON: {e}") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


__all__ = [
    "ALGOS",
    "FinetuneConfig",
    "algorithm",
    "finetune",
    "resolve",
    "rng_state",
    "run_finetune",
    "set_rng_state",
]
