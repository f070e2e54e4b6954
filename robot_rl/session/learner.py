"""``robot-rl learner``: the learner half of an on-robot fine-tuning session.

Runs the project's SAC / RLPD / WSRL update unchanged (:mod:`robot_rl.algos.sac`, built the
way ``robot-rl finetune`` builds it; see :func:`algo_parts`, the one place that knows
``finetune``'s internals) on transitions streamed from a robot actor over the link
(:mod:`robot_rl.robot.link`), and broadcasts signed weights back every ``publish_every``
updates. The robot swaps them in between episodes.

Data. Every received row is journaled (``out/journal``, fsync) before it is acknowledged, so
a learner killed at any moment loses nothing: on ``--resume`` it loads its checkpoint (SAC
state, optimizers, replay, RNG, as ``robot-rl finetune``), re-adds the journaled rows newer
than the checkpoint, and tells the actor where to resume (the actor still holds the rest).
Interventions (rows a human drove) go to the online buffer and to a demonstration buffer,
and each batch draws ``intervention_ratio`` of its rows from the latter once it is non-empty
(HIL-SERL's two buffers).

Schedule. The robot runs the start policy for ``warmup_steps`` (WSRL) or ``random_steps``
(SAC/RLPD: on a robot these are steps of the start policy too, never random actions) before
updates begin; then each received transition earns ``updates_per_step`` update calls (the
preset's ``updates_per_collect / num_envs``). The learner never blocks the robot: when it
falls behind, data waits in the buffer.

Outputs in ``out``: ``curve.json/csv/png`` (success of the robot's episodes vs env steps,
with wall-clock and robot-time columns), ``tb/`` (same metrics; ``robot/*_vs_robot_s`` use
seconds of robot time as the x-axis), ``checkpoint/``, ``journal/``, ``learner_state.json``,
the final ``policy/`` and, with ``--snapshot-every``, ``snapshots/<env_steps>/`` policies.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from robot_rl.errors import ConfigError, OutputExistsError, RobotRLError


@dataclass
class LearnerConfig:
    """Learn from a robot actor's transitions and send it signed weights."""

    algo: Literal["sac", "rlpd", "wsrl"]
    """sac, rlpd (with offline demos) or wsrl (from a Cal-QL start), as `robot-rl finetune`."""
    out: Path
    """Run directory."""
    init: Path | None = None
    """Start policy directory (the one the robot actor runs)."""
    dataset: Path | None = None
    """Offline data for rlpd (default: the dataset ``init`` was trained on)."""
    task: str | None = None
    """Task name (default: the start policy's)."""
    scale: Literal["cpu", "paper"] = "cpu"
    """Preset for the update settings, as `robot-rl finetune`."""
    env_steps: int = 20_000
    """Stop after this many transitions received."""
    max_wall_s: float = 1e9
    """Stop after this long (seconds)."""
    warmup_steps: int | None = None
    random_steps: int | None = None
    utd: int | None = None
    batch_size: int | None = None
    num_critics: int | None = None
    critic_hidden_dims: list[int] | None = None
    updates_per_step: float | None = None
    """Update calls per received transition (default: the preset's per-env-step rate)."""
    intervention_ratio: float = 0.5
    """Share of each batch from the intervention buffer once it has rows (HIL-SERL)."""
    publish_every: int = 50
    """Updates between weight broadcasts."""
    checkpoint_every: int = 2000
    """Transitions between checkpoints."""
    snapshot_every: int = 0
    """Also save the policy every this many transitions as ``out/snapshots/<env_steps>`` (0:
    never), e.g. to evaluate it the way ``robot-rl finetune`` does."""
    log_every: int = 200
    """Transitions between curve points / TensorBoard logs."""
    success_window: int = 20
    """Episodes the curve's success rate averages over."""
    key_file: Path | None = None
    """Shared weights key file (default: $ROBOT_RL_LINK_KEY)."""
    domain_id: int = 0
    """DDS domain."""
    name: str = "learner"
    dead_after_s: float = 1.0
    """Report an actor dead after this long without a heartbeat."""
    idle_exit_s: float = 1e9
    """Exit (after a checkpoint) when no transition arrives for this long (counted from the
    first transition: before it the learner waits for a robot indefinitely)."""
    resume: bool = False
    """Continue the run in ``out``."""
    overwrite: bool = False
    """Delete an existing ``out`` and start over."""
    seed: int = 0
    device: str = "cpu"
    threads: int = 1
    """Torch CPU threads."""


# ---- the one adapter onto finetune's internals ------------------------------------------------


@dataclass
class AlgoParts:
    fcfg: Any
    """The resolved FinetuneConfig."""
    sac: Any
    offline: Any
    learn_start: int
    updates_per_step: float
    actor_delay_updates: int
    save: Callable[[Any, dict[str, Any]], None]
    load: Callable[[Any], dict[str, Any]]


def algo_parts(cfg: LearnerConfig, generator: torch.Generator) -> AlgoParts:
    """SAC/RLPD/WSRL exactly as ``robot-rl finetune`` builds it for ``cfg``.

    The only code that reaches into :mod:`robot_rl.train.finetune` (re-point it when the
    online algorithms move behind an ``Agent`` interface).
    """
    from robot_rl.train import finetune as ft

    task = cfg.task
    if task is None:
        if cfg.init is None:
            raise ConfigError("pass --task or --init (whose task is used)")
        task = ft.read_json(cfg.init / "config.json").get("env", {}).get("env_name")
    if cfg.algo not in ("sac", "rlpd", "wsrl"):
        raise ConfigError(f"the learner runs sac, rlpd or wsrl, not {cfg.algo!r}")
    over = {k: getattr(cfg, k) for k in ("warmup_steps", "random_steps", "utd", "batch_size",
                                         "num_critics", "critic_hidden_dims")}  # fmt: skip
    fcfg = ft.resolve(ft.FinetuneConfig(
        algo=cfg.algo, task=task, out=cfg.out, init=cfg.init, dataset=cfg.dataset,
        scale=cfg.scale, env_steps=cfg.env_steps, seed=cfg.seed, device=cfg.device,
        **{k: v for k, v in over.items() if v is not None},
    ))  # fmt: skip
    agent = ft.algorithm(fcfg.algo).build(fcfg, _spaces(fcfg), generator)
    ups = cfg.updates_per_step
    if ups is None:
        ups = fcfg.updates_per_collect / fcfg.num_envs

    def save(buffer: Any, state: dict[str, Any]) -> None:
        agent.buffer = buffer  # the learner's own ring is what the checkpoint holds
        ft._save_checkpoint(fcfg, agent, generator, state)

    def load(buffer: Any) -> dict[str, Any]:
        agent.buffer = buffer
        ckpt = cfg.out / "checkpoint"
        return ft._load_checkpoint(ckpt, ft._saved_state(ckpt, fcfg), agent, generator)

    return AlgoParts(
        fcfg=fcfg,
        sac=agent.sac,
        offline=agent.sampler.offline,
        learn_start=fcfg.warmup_steps + fcfg.random_steps,
        updates_per_step=ups,
        actor_delay_updates=fcfg.actor_delay_updates,
        save=save,
        load=load,
    )


def _spaces(fcfg: Any) -> Any:
    """Observation and action spaces of the start policy, standing in for an env (the learner
    has none: the robot's actor streams transitions of that policy's shape)."""
    from types import SimpleNamespace

    import gymnasium as gym

    from robot_rl.policies import load_policy

    if fcfg.init is None:
        raise ConfigError("the learner needs --init (the policy the robot's actor runs)")
    policy = load_policy(fcfg.init)
    spaces = {
        k: gym.spaces.Box(-np.inf, np.inf, tuple(policy.normalizer.params[f"obs.{k}"][0].shape),
                          np.float32)
        for k in policy.obs_keys
    }  # fmt: skip
    return SimpleNamespace(observation_space=gym.spaces.Dict(spaces),
                           action_dim=policy.config.action_dim)  # fmt: skip


# ---- buffers ------------------------------------------------------------------------------------


def _shapes(rows: dict[str, np.ndarray], keys: list[str]) -> dict[str, list[int]]:
    missing = [k for k in keys if f"obs.{k}" not in rows]
    if missing:
        raise RobotRLError(f"the actor's transitions lack observation keys {missing}")
    return {k: list(rows[f"obs.{k}"].shape[1:]) for k in keys}


def _buffer(capacity: int, shapes: dict[str, list[int]], action_dim: int, device: str) -> Any:
    from robot_rl.data.replay import ReplayBuffer

    return ReplayBuffer(capacity, {k: (tuple(s), torch.float32) for k, s in shapes.items()},
                        action_dim, device)  # fmt: skip


def _add(buffer: Any, rows: dict[str, np.ndarray], keys: list[str]) -> None:
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in rows.items()}
    buffer.add(
        {k: t[f"obs.{k}"] for k in keys},
        t["action"],
        t["reward"],
        {k: t[f"next_obs.{k}"] for k in keys},
        t["terminal"],
    )


def _cat(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {
        k: ({kk: torch.cat([v[kk], b[k][kk]]) for kk in v} if isinstance(v, dict)
            else torch.cat([v, b[k]]))
        for k, v in a.items()
    }  # fmt: skip


@dataclass
class EpisodeTracker:
    """Robot episodes from the stream: success when a terminal row arrives."""

    window: int = 20
    current: dict[str, tuple[int, float]] = field(default_factory=dict)
    """actor -> (episode id, return so far)."""
    done: list[tuple[bool, float]] = field(default_factory=list)
    t0: float | None = None
    t_last: float = 0.0

    def add(self, actor: str, rows: dict[str, np.ndarray]) -> None:
        for ep, r, term, t in zip(rows["episode"], rows["reward"], rows["terminal"], rows["t"],
                                  strict=True):  # fmt: skip
            if self.t0 is None:
                self.t0 = float(t)
            self.t_last = max(self.t_last, float(t))
            cur = self.current.get(actor)
            if cur is not None and cur[0] != int(ep) and cur[0] >= 0:
                self.done.append((False, cur[1]))  # ended at the horizon
                cur = None
            ret = (cur[1] if cur else 0.0) + float(r)
            if term:
                self.done.append((True, ret))
                self.current[actor] = (-1, 0.0)  # closed; the next id opens a new one
            else:
                self.current[actor] = (int(ep), ret)

    def robot_s(self) -> float:
        return 0.0 if self.t0 is None else self.t_last - self.t0

    def rate(self) -> tuple[float, float]:
        recent = self.done[-self.window :]
        if not recent:
            return float("nan"), float("nan")
        return float(np.mean([s for s, _ in recent])), float(np.mean([r for _, r in recent]))


def _trained(env_steps: int, credit: float, updates_per_step: float) -> int:
    """Transitions whose update calls are done (the actor's ``--max-learner-lag`` reads it)."""
    if credit < 1.0 or updates_per_step <= 0:
        return env_steps
    return max(0, int(env_steps - credit / updates_per_step))


# ---- the loop -----------------------------------------------------------------------------------


def run_learner(cfg: LearnerConfig) -> dict[str, Any]:
    from robot_rl.algos.common import config_json, make_writer, seed_everything
    from robot_rl.data.replay import MixedSampler
    from robot_rl.policies.critic import critic_checkpoint
    from robot_rl.robot.link import Journal, LearnerLink, load_key
    from robot_rl.train.curves import write_curve

    key = load_key(cfg.key_file)
    if not 0.0 <= cfg.intervention_ratio <= 1.0 or cfg.publish_every < 1 or cfg.env_steps < 1:
        raise ConfigError("intervention_ratio in [0, 1], publish_every >= 1, env_steps >= 1")
    ckpt = cfg.out / "checkpoint"
    if cfg.out.exists() and not cfg.resume:
        if not cfg.overwrite:
            raise OutputExistsError(f"{cfg.out} exists; pass --resume or --overwrite")
        shutil.rmtree(cfg.out)
    # --resume without learner_state.json (killed before its first checkpoint): fresh networks,
    # every journaled row re-added
    torch.set_num_threads(cfg.threads)
    generator = seed_everything(cfg.seed)
    parts = algo_parts(cfg, generator)
    sac, policy = parts.sac, parts.sac.policy
    keys = policy.obs_keys
    action_dim = policy.config.action_dim
    cfg.out.mkdir(parents=True, exist_ok=True)
    journal = Journal(cfg.out / "journal")
    meta_path = cfg.out / "learner_state.json"
    meta: dict[str, Any] = {"through": {}, "shapes": None, "version": 0}
    state: dict[str, Any] = {"env_steps": 0, "updates": 0, "curve": [], "wall_s": 0.0}
    capacity = cfg.env_steps + 10_000
    buffer = demos = None
    if cfg.resume and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
    if meta["shapes"] is not None:
        buffer = _buffer(capacity, meta["shapes"], action_dim, cfg.device)
        demos = _buffer(capacity, meta["shapes"], action_dim, cfg.device)
        if ckpt.is_dir():
            state = parts.load(buffer)
        else:
            meta["through"] = {}
    tracker = EpisodeTracker(cfg.success_window)
    inbox: deque[tuple[str, dict[str, np.ndarray]]] = deque()
    # rows already journaled: the demo buffer gets every intervention; the online buffer the
    # rows past the checkpoint
    for actor in journal.actors():
        rows = journal.read(actor)
        if rows is None:
            continue
        after = int(meta["through"].get(actor, -1))
        tracker.add(actor, {k: v[rows["seq"] <= after] for k, v in rows.items()})
        inbox.append((actor, {k: v[rows["seq"] > after] for k, v in rows.items()}))
        if demos is not None:
            hum = (rows["intervention"] > 0) & (rows["seq"] <= after)
            if hum.any():
                _add(demos, {k: v[hum] for k, v in rows.items()}, keys)
    lock = threading.Lock()

    def store(actor: str, rows: dict[str, np.ndarray]) -> None:
        journal.write(actor, rows)  # durable before the ack
        with lock:
            inbox.append((actor, rows))

    info = {"updates": 0, "version": meta["version"]}
    link = LearnerLink(key, store, domain_id=cfg.domain_id, name=cfg.name,
                       expected=journal.expected(), dead_after_s=cfg.dead_after_s,
                       info=lambda: dict(info))  # fmt: skip
    writer = make_writer(cfg.out / "tb", "learner")
    start = time.perf_counter() - state["wall_s"]
    through: dict[str, int] = {k: int(v) for k, v in meta["through"].items()}
    credit = 0.0
    sampler = None
    metrics: dict[str, Any] = {}
    last_data: float | None = None
    curve_meta = {"algo": cfg.algo, "task": parts.fcfg.task, "scale": cfg.scale,
                  "seed": cfg.seed, "init": str(cfg.init), "source": "robot"}  # fmt: skip

    def publish() -> None:
        meta["version"] = max(meta["version"] + 1, int(time.time() * 1e3))
        info["version"] = meta["version"]
        link.publish_weights(meta["version"], policy.state_dict())

    def save() -> None:
        if buffer is None:
            return
        state["wall_s"] = time.perf_counter() - start
        parts.save(buffer, state)
        meta["through"] = dict(through)
        tmp = meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta))
        tmp.replace(meta_path)

    def log_point() -> None:
        rate, ret = tracker.rate()
        row = {"env_steps": state["env_steps"], "updates": state["updates"],
               "success_rate": rate, "mean_return": ret,
               "wall_s": time.perf_counter() - start, "robot_s": tracker.robot_s(),
               "episodes": len(tracker.done)}  # fmt: skip
        state["curve"].append(row)
        n = state["env_steps"]
        for name, value in metrics.items():
            writer.add_scalar(name, float(value), n)
        writer.add_scalar("train/updates", state["updates"], n)
        if rate == rate:  # not NaN
            writer.add_scalar("robot/success_rate", rate, n)
            writer.add_scalar("robot/success_rate_vs_robot_s", rate, int(row["robot_s"]))
            writer.add_scalar("robot/success_rate_vs_wall_s", rate, int(row["wall_s"]))
        writer.add_scalar("robot/env_steps_vs_robot_s", n, int(row["robot_s"]))
        rows = [r for r in state["curve"] if r["success_rate"] == r["success_rate"]]
        # a rate over fewer than `success_window` episodes (the first few) is not one: keep
        # those points out once full windows exist (steps-to-90 % read 200 from 4 episodes)
        rows = [r for r in rows if r["episodes"] >= cfg.success_window] or rows
        if rows:
            write_curve(cfg.out, rows, curve_meta, parts.learn_start)
        print(f"[learner {cfg.algo}] steps {n:>6}  updates {state['updates']:>5}  "
              f"success(last {cfg.success_window}) {rate:.2f}  v{meta['version']}  "
              f"robot {row['robot_s']:.0f} s  wall {row['wall_s']:.0f} s", flush=True)  # fmt: skip

    if cfg.algo != "wsrl" and not cfg.resume:
        publish()  # sac/rlpd start from a fresh actor: the robot runs it from the first episode
    try:
        while state["env_steps"] < cfg.env_steps:
            if time.perf_counter() - start > cfg.max_wall_s:
                break
            with lock:
                got = list(inbox)
                inbox.clear()
            for actor, rows in got:
                n = len(rows["seq"])
                if n == 0:
                    continue
                if buffer is None:
                    meta["shapes"] = _shapes(rows, keys)
                    buffer = _buffer(capacity, meta["shapes"], action_dim, cfg.device)
                    demos = _buffer(capacity, meta["shapes"], action_dim, cfg.device)
                _add(buffer, rows, keys)
                hum = rows["intervention"] > 0
                if hum.any():
                    _add(demos, {k: v[hum] for k, v in rows.items()}, keys)
                tracker.add(actor, rows)
                through[actor] = int(rows["seq"][-1])
                before = state["env_steps"]
                state["env_steps"] += n
                if state["env_steps"] > parts.learn_start:
                    credit += parts.updates_per_step * min(
                        n, state["env_steps"] - parts.learn_start
                    )
                info["trained"] = _trained(state["env_steps"], credit, parts.updates_per_step)
                now = state["env_steps"]
                if now // cfg.log_every > before // cfg.log_every:
                    log_point()
                if now // cfg.checkpoint_every > before // cfg.checkpoint_every:
                    save()
                se = cfg.snapshot_every
                if se > 0 and now // se > before // se:
                    policy.save(cfg.out / "snapshots" / f"{now // se * se:07d}", overwrite=True)
                last_data = time.monotonic()
            did = 0
            while credit >= 1.0 and buffer is not None and did < 8:
                if sampler is None:
                    sampler = MixedSampler(buffer, parts.offline, parts.fcfg.offline_ratio)
                b = parts.fcfg.utd * parts.fcfg.batch_size
                n_demo = round(cfg.intervention_ratio * b) if len(demos) else 0
                batch = sampler.sample(b - n_demo, generator)
                if n_demo:
                    batch = _cat(batch, demos.sample(n_demo, generator))
                metrics = sac.update(
                    batch, update_actor=state["updates"] >= parts.actor_delay_updates
                )
                state["updates"] += 1
                info["updates"] = state["updates"]
                credit -= 1.0
                info["trained"] = _trained(state["env_steps"], credit, parts.updates_per_step)
                did += 1
                if state["updates"] % cfg.publish_every == 0:
                    publish()
            if not got and not did:
                if last_data is not None and time.monotonic() - last_data > cfg.idle_exit_s:
                    print(f"[learner] no transitions for {cfg.idle_exit_s:.0f} s: stopping",
                          flush=True)  # fmt: skip
                    break
                time.sleep(0.005)
        log_point()
        save()
        if state["updates"]:
            publish()
            time.sleep(0.5)  # let the last broadcast out
    finally:
        writer.close()
        link.close()
    extra_config, extra_files = critic_checkpoint(sac.critic, sac.target, sac.temperature)
    extra_config["finetune"] = config_json(parts.fcfg)
    policy.save(cfg.out / "policy", overwrite=True, extra_config=extra_config,
                extra_files=extra_files)  # fmt: skip
    summary = {"env_steps": state["env_steps"], "updates": state["updates"],
               "episodes": len(tracker.done), "version": meta["version"],
               "intervention_rows": 0 if demos is None else len(demos),
               "gaps": link.inbox.gaps, "link_errors": link.errors[-3:]}  # fmt: skip
    (cfg.out / "learner_summary.json").write_text(json.dumps(summary))
    return summary
