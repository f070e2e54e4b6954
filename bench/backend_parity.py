"""Success-rate parity between the ``mujoco`` and ``mujoco_warp`` backends.

    python bench/backend_parity.py --tasks push lift --episodes 64 --noise 0.3
    python bench/backend_parity.py --tasks push --policy policies/bc_push --episodes 64

For each task, runs the scripted expert with Gaussian action noise (``--noise``, so the rate
is not pinned at 1.0) and, with ``--policy``, a trained policy, for the same episodes (same
seed, same reset states) on both backends, and prints the two success rates, their difference
and the binomial standard error of that difference, sqrt(p1(1-p1)/n + p2(1-p2)/n). Parity
holds when the difference is within about two standard errors. Warp runs on its CPU device
here (``--device cuda`` on a GPU).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

import sim
from robot_rl.policies import load_policy
from robot_rl.rollout import run_episodes
from sim.expert_registry import make_expert


def success_rate(env, act, episodes: int, seed: int, reset=None) -> float:
    return run_episodes(env, act, episodes, seed=seed, reset_policy=reset).success_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["push", "lift"])
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--noise", type=float, default=0.3, help="expert action noise std")
    parser.add_argument("--policy", type=Path, help="also evaluate this policy (its own task)")
    parser.add_argument("--device", default="cpu", help="torch device of the warp backend")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    table = Table(title="success rate, mujoco vs mujoco_warp (same seeds and reset states)")
    for col in ("task", "actor", "mujoco", "mujoco_warp", "diff", "2 s.e."):
        table.add_column(col, justify="right")
    runs: list[tuple[str, str, object]] = [
        (t, f"expert noise {args.noise}", None) for t in args.tasks
    ]
    if args.policy is not None:
        policy = load_policy(args.policy, device="cpu")
        runs.append((policy.env_info["env_name"], f"policy {args.policy.name}", policy))
    n = args.episodes
    for task, label, policy in runs:
        rates = []
        for backend in ("mujoco", "mujoco_warp"):
            device = args.device if backend == "mujoco_warp" else "cpu"
            env = sim.make(
                task, num_envs=args.num_envs, seed=args.seed, backend=backend, device=device
            )
            if policy is None:
                expert = make_expert(env, noise_std=args.noise, seed=0)
                act = expert.act
            else:

                def act(obs, env=env, policy=policy):
                    obs = {k: v.cpu() for k, v in obs.items()}
                    return policy.act(obs, deterministic=True).to(env.device)

            reset = policy.reset if policy is not None else None
            rates.append(success_rate(env, act, n, args.seed, reset))
            Console().print(f"{task} {label} {backend}: {rates[-1]:.3f}", style="dim")
        p1, p2 = rates
        se = math.sqrt(max(p1 * (1 - p1) / n + p2 * (1 - p2) / n, 1e-12))
        table.add_row(task, label, f"{p1:.3f}", f"{p2:.3f}", f"{p2 - p1:+.3f}", f"{2 * se:.3f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
