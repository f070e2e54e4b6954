"""Learner throughput of online fine-tuning at the cpu and gpu scales: update calls/s, critic
steps/s, and the env steps/s the learner keeps up with (vector steps/s x num_envs).

One timed "vector step" is the learner's share of the fine-tuning loop for that preset: store
``num_envs`` transitions in the replay ring, act on ``num_envs`` observations with the actor,
then ``updates_per_collect`` update calls (each ``utd`` critic steps on ``batch_size`` replayed
rows, one actor and temperature step). The env is left out (``bench/sim_throughput.py``
times it), so env-steps/s here is the most a simulator could feed this learner.

Configurations, built with the algorithm's own presets through ``robot_rl.algos.sac``:
``cpu`` (the baseline, measured in the same run), ``gpu`` eager and ``gpu`` compiled
(``compile_critic``: the critic ensemble under ``torch.compile``, as the gpu preset runs). On a
CPU the gpu preset runs cut down by ``--shrink`` (num_envs and batch_size divided; default 32
on a CPU, 1 on CUDA) and compiled only with ``--compile on`` (compiling takes about a minute
here); on CUDA it runs at full size and compiled, unchanged.
``--check-syncs`` (CUDA) makes every device-to-host sync inside the timed loop an error
(``torch.cuda.set_sync_debug_mode``). Rounds are interleaved and the median is reported.

    python bench/learner_throughput.py [--algo rlpd] [--device cuda] [--rounds 5]
        [--steps 5] [--shrink 32] [--compile auto|on|off] [--check-syncs]
        [--matmul-precision high] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from robot_rl.algos import rlpd, sac, wsrl
from robot_rl.algos.sac import SACAgent, build_agent
from robot_rl.perf import matmul_precision
from robot_rl.train.finetune import FinetuneConfig, resolve

OBS_DIM, ACTION_DIM = 29, 4  # lift's flat observation and action sizes
MODULES = {"sac": sac, "rlpd": rlpd, "wsrl": wsrl}


class StandInSpaces:
    """What ``build_agent`` reads from an env: its spaces (lift's sizes) and device."""

    def __init__(self, device: str) -> None:
        box = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        self.observation_space = gym.spaces.Dict({"state": box})
        self.action_dim = ACTION_DIM
        self.device = torch.device(device)
        self.env_kwargs: dict[str, Any] = {}


def make_agent(algo: str, scale: str, device: str, shrink: int, compile_: bool) -> SACAgent:
    """The algorithm's agent at ``scale`` (offline rows replaced by online ones: the same
    arithmetic without a dataset file), its replay ring filled with random transitions."""
    preset = dict(MODULES[algo].PRESETS[scale])
    preset["offline_ratio"] = 0.0
    if shrink > 1:
        preset["num_envs"] = max(1, preset["num_envs"] // shrink)
        preset["batch_size"] = max(1, preset["batch_size"] // shrink)
    fields = {k: v for k, v in preset.items() if k in FinetuneConfig.__dataclass_fields__}
    out = Path(tempfile.gettempdir()) / "learner-throughput"
    cfg = resolve(FinetuneConfig(algo="sac", task="bench", out=out, device=device, **fields))
    cfg = replace(cfg, compile_critic=compile_, env_steps=200_000)
    env = StandInSpaces(device)
    generator = torch.Generator().manual_seed(0)  # the run's; the agent derives a device one
    agent = build_agent(
        cfg, env, generator, keep_critics=False, actor_full_batch=algo == "wsrl",
        actor_lr=wsrl.ACTOR_LR if algo == "wsrl" else 3e-4, default_reward=sac.REWARD,
    )  # fmt: skip
    agent.bench_cfg = cfg  # type: ignore[attr-defined]
    rows = max(cfg.batch_size * cfg.utd, 4 * cfg.num_envs)
    fill = torch.Generator(device=device).manual_seed(1)
    for _ in range(0, rows, cfg.num_envs):
        agent.observe(*transitions(cfg.num_envs, device, fill))
    return agent


def transitions(n: int, device: str, generator: torch.Generator) -> tuple[Any, ...]:
    """One vector step of random transitions on ``device``."""
    obs = {"state": torch.randn(n, OBS_DIM, device=device, generator=generator)}
    nxt = {"state": torch.randn(n, OBS_DIM, device=device, generator=generator)}
    action = torch.rand(n, ACTION_DIM, device=device, generator=generator) * 2 - 1
    reward = (torch.rand(n, device=device, generator=generator) < 0.1).float()
    terminated = torch.zeros(n, dtype=torch.bool, device=device)
    return obs, action, reward, terminated, terminated, nxt, nxt


def vector_step(agent: SACAgent) -> Callable[[], None]:
    """The learner's work for one vector step (store, act, update calls)."""
    cfg = agent.bench_cfg  # type: ignore[attr-defined]
    step = transitions(cfg.num_envs, str(cfg.device), torch.Generator(cfg.device).manual_seed(2))
    learn_at = cfg.warmup_steps + cfg.random_steps + 1
    counter = [10**6]  # past any actor delay

    def run() -> None:
        agent.observe(*step)
        agent.act(step[0], learn_at)
        for _ in range(cfg.updates_per_collect):
            agent.update(counter[0])
            counter[0] += 1

    return run


def timed(run: Callable[[], None], steps: int, device: str) -> float:
    """Seconds per call over ``steps`` calls (the device drained at both ends only)."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        run()
    sync()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=list(MODULES), default="rlpd")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--steps", type=int, default=5, help="vector steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shrink", type=int, default=None, help="gpu preset sizes / this")
    parser.add_argument("--compile", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--check-syncs", action="store_true", help="CUDA: a sync is an error")
    parser.add_argument(
        "--matmul-precision", choices=["highest", "high", "medium"], default="highest"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cuda = args.device.startswith("cuda")
    shrink = args.shrink if args.shrink is not None else (1 if cuda else 32)
    compiled = args.compile == "on" or (args.compile == "auto" and cuda)
    with matmul_precision(args.matmul_precision):
        agents = {
            "cpu preset": make_agent(args.algo, "cpu", args.device, 1, False),
            "gpu preset eager": make_agent(args.algo, "gpu", args.device, shrink, False),
        }
        if compiled:
            agents["gpu preset compiled"] = make_agent(args.algo, "gpu", args.device, shrink, True)
        runs = {name: vector_step(agent) for name, agent in agents.items()}
        for run in runs.values():  # warm-up (and compilation, CUDA-graph recording)
            timed(run, 3, args.device)
        rounds: dict[str, list[float]] = {name: [] for name in runs}
        if cuda and args.check_syncs:
            torch.cuda.set_sync_debug_mode("error")
        try:
            for _ in range(args.rounds):
                for name, run in runs.items():
                    rounds[name].append(timed(run, args.steps, args.device))
        finally:
            if cuda and args.check_syncs:
                torch.cuda.set_sync_debug_mode("default")
    sec = {name: statistics.median(r) for name, r in rounds.items()}
    name_dev = torch.cuda.get_device_name(args.device) if cuda else f"{args.threads} CPU thread(s)"
    print(f"learner throughput, {args.algo}, {name_dev}, matmul precision "
          f"{args.matmul_precision}, gpu preset / {shrink}, median of {args.rounds} rounds x "
          f"{args.steps} vector steps{', no host sync (checked)' if cuda and args.check_syncs else ''}")  # fmt: skip
    env_rate = {}
    for name, s in sec.items():
        cfg = agents[name].bench_cfg  # type: ignore[attr-defined]
        env_rate[name] = cfg.num_envs / s
        print(f"  {name:<20} envs {cfg.num_envs:>5} batch {cfg.batch_size:>6} x utd {cfg.utd} x "
              f"{cfg.updates_per_collect} calls: {cfg.updates_per_collect / s:8.1f} updates/s  "
              f"{cfg.updates_per_collect * cfg.utd / s:8.1f} critic steps/s  "
              f"{env_rate[name]:10.0f} env steps/s")  # fmt: skip
    base = env_rate["cpu preset"]
    for name in list(sec)[1:]:
        print(f"env steps/s {name} / cpu preset: {env_rate[name] / base:.2f}x")
    if "gpu preset compiled" in sec:
        ratio = sec["gpu preset eager"] / sec["gpu preset compiled"]
        print(f"compiled / eager (gpu preset): {ratio:.2f}x")


if __name__ == "__main__":
    main()
