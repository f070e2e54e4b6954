"""Env-steps/s and physics-steps/s per backend, task and ``num_envs``, against raw physics.

    python bench/sim_throughput.py                                   # mujoco, 1 / 8 / 64 envs
    python bench/sim_throughput.py --backends mujoco mujoco_warp --tasks lift --envs 1 64 1024
    python bench/sim_throughput.py --backends mujoco_warp --device cuda --tasks lift \\
        --envs 1024 4096 8192 16384                                 # on a GPU

Each row times the full ``VecEnv.step`` (controller, physics, task logic, auto-reset) and, in
the same run, the backend's raw physics for the same model and decimation: plain
``mujoco.mj_step(m, d, decimation)`` per ``MjData`` for ``mujoco`` (no torch, no task logic),
and the backend's own ``nsteps`` physics call for ``mujoco_warp`` (a CUDA-graph replay on
GPU, kernel launches on Warp's CPU device). The ratio raw/env is the cost the VecEnv adds.
Physics-steps/s = env-steps/s × decimation. On Warp's CPU device the kernels run on one core
and serve tests; throughput figures that matter for Warp come from a GPU.
"""

from __future__ import annotations

import argparse
import time

import mujoco
import torch
from rich.console import Console
from rich.table import Table

import sim


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    task: str, backend: str, device: str, num_envs: int, steps: int, repeats: int
) -> tuple[float, float, int]:
    """Best-of-``repeats`` env-steps/s for the VecEnv and for raw physics, interleaved so
    that load from other processes hits both alike; and the decimation."""
    env = sim.make(task, num_envs=num_envs, seed=0, backend=backend, device=device)
    dev = env.device
    gen = torch.Generator().manual_seed(0)
    actions = [
        (torch.rand(num_envs, env.action_dim, generator=gen) * 2 - 1).to(dev) for _ in range(steps)
    ]
    if backend == "mujoco":
        m = env.backend.model
        datas = [mujoco.MjData(m) for _ in range(num_envs)]
        for d, src in zip(datas, env.backend.datas, strict=True):
            d.qpos[:] = src.qpos
            d.ctrl[:] = src.ctrl

        def raw() -> None:
            for d in datas:
                mujoco.mj_step(m, d, env.decimation)

    else:

        def raw() -> None:
            env.backend._run_steps(env.decimation)

    env.step(actions[0])  # warm up (compiles and captures on first use)
    raw()
    _sync(dev)
    best_env = best_raw = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for a in actions:
            env.step(a)
        _sync(dev)
        best_env = min(best_env, time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(steps):
            raw()
        _sync(dev)
        best_raw = min(best_raw, time.perf_counter() - start)
    env.close()
    return num_envs * steps / best_env, num_envs * steps / best_raw, env.decimation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=sorted(sim.TASKS))
    parser.add_argument("--backends", nargs="+", default=["mujoco"], choices=sim.BACKENDS)
    parser.add_argument("--device", default="cpu", help="torch device (cuda for Warp on GPU)")
    parser.add_argument("--envs", nargs="+", type=int, default=[1, 8, 64])
    parser.add_argument("--env-steps", type=int, default=3000, help="env-steps per measurement")
    parser.add_argument("--min-steps", type=int, default=20, help="vector steps at least")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="best-of repeats")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") else "none"
    table = Table(title=f"VecEnv vs raw physics (same model, same decimation); GPU: {gpu}")
    cols = ("backend", "task", "envs", "env-steps/s", "physics-steps/s", "raw env-steps/s")
    for col in (*cols, "ratio raw/env"):
        table.add_column(col, justify="right")
    for backend in args.backends:
        device = args.device if backend == "mujoco_warp" else "cpu"
        for task in args.tasks:
            for n in args.envs:
                steps = max(args.env_steps // n, args.min_steps)
                env_rate, base, dec = measure(task, backend, device, n, steps, args.repeats)
                table.add_row(
                    backend,
                    task,
                    str(n),
                    f"{env_rate:,.0f}",
                    f"{env_rate * dec:,.0f}",
                    f"{base:,.0f}",
                    f"{base / env_rate:.2f}x",
                )
                Console().print(f"{backend} {task} {n}: {env_rate:,.0f} env-steps/s", style="dim")
    Console(width=150).print(table)
    print("target: mujoco ratio <= 1.5x; mujoco_warp on one H100/H200 >= 1M env-steps/s on lift")


if __name__ == "__main__":
    main()
