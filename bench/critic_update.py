"""Critic update steps/s of the batched CriticEnsemble for 2 and 10 members.

One update = target forward on s' with a random-subset-2 min (the batched ensemble evaluates
only the two drawn members; the loop baseline evaluates all, as naive code does), TD loss on (s, a), backward,
Adam step and Polyak update: the inner step of SAC/RLPD/WSRL. Baseline, measured in the same
run: the same 10 members as separate ``nn.Sequential`` MLPs called in a Python loop.
Configurations are timed in interleaved rounds and the median round is reported, so load
from other processes on a shared machine hits every configuration alike.

Settings (all default on, as the trainers run): the tuned allocator
(``robot_rl.perf.tune_allocator``) and fused Adam; ``--matmul-precision medium`` runs float32
matmuls on bfloat16 inputs (AMX), ``--compile`` compiles the ensemble's forward.

    python bench/critic_update.py [--threads 2] [--hidden 256 256] [--rounds 7]
        [--matmul-precision medium] [--compile] [--no-tune-allocator]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from robot_rl.perf import adam, matmul_precision, tune_allocator
from robot_rl.policies.critic import CriticConfig, CriticEnsemble, make_target, polyak_update
from robot_rl.policies.modules import mlp

OBS_DIM, ACTION_DIM = 29, 4  # lift's flat observation and action sizes


class LoopEnsemble(nn.Module):
    """The naive baseline: E independent MLPs evaluated one after another."""

    def __init__(self, num: int, hidden: list[int]) -> None:
        super().__init__()
        self.members = nn.ModuleList(
            mlp(OBS_DIM + ACTION_DIM, hidden, 1, layer_norm=True) for _ in range(num)
        )

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, action], -1)
        return torch.stack([m(x).squeeze(-1) for m in self.members])


def make_update(critic: nn.Module, target: nn.Module, batch: int) -> Callable[[], None]:
    """A closure running one critic update on fixed random data."""
    opt = adam(critic.parameters(), lr=3e-4)
    gen = torch.Generator().manual_seed(0)
    obs, next_obs = torch.randn(batch, OBS_DIM), torch.randn(batch, OBS_DIM)
    action, next_action = torch.rand(batch, ACTION_DIM), torch.rand(batch, ACTION_DIM)
    reward = torch.rand(batch)

    def update() -> None:
        with torch.no_grad():
            if isinstance(target, CriticEnsemble):  # evaluates only the 2 drawn members
                q_next = target.random_subset_min(next_obs, next_action, 2, generator=gen)
            else:
                q_next = CriticEnsemble.subset_min(target(next_obs, next_action), 2, generator=gen)
            y = reward + 0.99 * q_next
        loss = (critic(obs, action) - y).pow(2).mean(dim=1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        polyak_update(target, critic, 0.005)

    return update


def time_steps(update: Callable[[], None], steps: int) -> float:
    """Seconds per update over ``steps`` updates."""
    start = time.perf_counter()
    for _ in range(steps):
        update()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50, help="updates per timed round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--matmul-precision", choices=["highest", "high", "medium"], default="highest"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the ensembles")
    parser.add_argument("--no-tune-allocator", action="store_true", help="glibc defaults")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tuned = not args.no_tune_allocator and tune_allocator()
    with matmul_precision(args.matmul_precision):
        sec = run(args)
    print(
        f"critic update, batch {args.batch}, hidden {args.hidden}, LayerNorm, "
        f"{args.threads} thread(s), matmul precision {args.matmul_precision}, "
        f"{'compiled' if args.compile else 'eager'}, allocator {'tuned' if tuned else 'default'}, "
        f"median of {args.rounds} rounds x {args.steps} updates"
    )
    for name, s in sec.items():
        print(f"  {name:<18} {1.0 / s:8.1f} updates/s  {1e3 * s:7.2f} ms/update")
    ratio = sec["ensemble E=10"] / sec["ensemble E=2"]
    speedup = sec["python loop E=10"] / sec["ensemble E=10"]
    print(f"cost ratio E=10 / E=2 (batched):            {ratio:.2f}x  (target <= 2.5x)")
    print(f"speedup of batched E=10 over the Python loop: {speedup:.2f}x")


def run(args: argparse.Namespace) -> dict[str, float]:
    """Seconds per update of each configuration (median over interleaved rounds)."""
    updates = {}
    for e in (2, 10):
        critic = CriticEnsemble(CriticConfig(OBS_DIM, ACTION_DIM, e, list(args.hidden)))
        if args.compile:
            critic.compile()
        updates[f"ensemble E={e}"] = make_update(critic, make_target(critic), args.batch)
    loop = LoopEnsemble(10, list(args.hidden))
    loop_target = LoopEnsemble(10, list(args.hidden)).requires_grad_(False)
    loop_target.load_state_dict(loop.state_dict())
    if args.compile:
        loop.compile()
    updates["python loop E=10"] = make_update(loop, loop_target, args.batch)

    for update in updates.values():  # warm-up
        time_steps(update, 5)
    rounds: dict[str, list[float]] = {name: [] for name in updates}
    for _ in range(args.rounds):
        for name, update in updates.items():
            rounds[name].append(time_steps(update, args.steps))
    return {name: statistics.median(r) for name, r in rounds.items()}


if __name__ == "__main__":
    main()
