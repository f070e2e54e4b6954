"""Env-steps/s of the ``mujoco`` backend per task at 1, 8 and 64 envs, against raw ``mj_step``.

The baseline steps the same compiled model with plain ``mujoco.mj_step(m, d, decimation)``
calls on one ``MjData`` per env (no torch, no controller, no task logic), so the ratio is the
cost the VecEnv adds per control step. Run: ``python bench/sim_throughput.py``.
"""

from __future__ import annotations

import argparse
import time

import mujoco
import torch
from rich.console import Console
from rich.table import Table

import sim


def measure(task: str, num_envs: int, steps: int, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` env-steps/s for the VecEnv and for raw mj_step, interleaved so
    that load from other processes hits both alike."""
    env = sim.make(task, num_envs=num_envs, seed=0)
    gen = torch.Generator().manual_seed(0)
    actions = [torch.rand(num_envs, env.action_dim, generator=gen) * 2 - 1 for _ in range(steps)]
    m = env.backend.model
    datas = [mujoco.MjData(m) for _ in range(num_envs)]
    for d, src in zip(datas, env.backend.datas, strict=True):
        d.qpos[:] = src.qpos
        d.ctrl[:] = src.ctrl
    env.step(actions[0])
    best_env = best_raw = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for a in actions:
            env.step(a)
        best_env = min(best_env, time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(steps):
            for d in datas:
                mujoco.mj_step(m, d, env.decimation)
        best_raw = min(best_raw, time.perf_counter() - start)
    return num_envs * steps / best_env, num_envs * steps / best_raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", nargs="+", default=sorted(sim.TASKS))
    parser.add_argument("--envs", nargs="+", type=int, default=[1, 8, 64])
    parser.add_argument("--env-steps", type=int, default=3000, help="env-steps per measurement")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="best-of repeats")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    table = Table(title="mujoco backend vs raw mj_step (same model, same decimation)")
    for col in ("task", "envs", "env-steps/s", "raw mj_step env-steps/s", "ratio raw/env"):
        table.add_column(col, justify="right")
    for task in args.tasks:
        for n in args.envs:
            steps = max(args.env_steps // n, 20)
            env_rate, base = measure(task, n, steps, args.repeats)
            table.add_row(
                task, str(n), f"{env_rate:,.0f}", f"{base:,.0f}", f"{base / env_rate:.2f}x"
            )
    Console().print(table)
    print("physics steps per env-step:", sim.make("reach").decimation, "| target ratio <= 1.5x")


if __name__ == "__main__":
    main()
