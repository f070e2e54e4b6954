"""``robot-rl`` command line: one verb per stage of the pipeline.

Each verb parses its own typed dataclass config with tyro (``robot-rl <verb> --help`` lists
every field). User errors (bad files, unknown names, existing outputs) print one line and exit
with status 2.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import tyro
from rich.console import Console
from rich.table import Table

from robot_rl.errors import RobotRLError
from robot_rl.perf import tune_allocator
from sim.errors import SimError

console = Console(stderr=True)


def _trainers() -> dict[str, tuple[type, Callable[..., Any]]]:
    """Offline trainers by name: (config class, train function)."""
    import importlib

    # name -> (module, config class, train function); modules import lazily so one verb's
    # dependencies never slow down another's start.
    spec = {
        "bc": ("robot_rl.algos.bc", "BCConfig", "train_bc"),
        "diffusion": ("robot_rl.algos.diffusion", "DiffusionConfig", "train_diffusion"),
        "iql": ("robot_rl.algos.iql", "IQLConfig", "train_iql"),
        "calql": ("robot_rl.algos.calql", "CalQLConfig", "train_calql"),
    }
    trainers: dict[str, tuple[type, Callable[..., Any]]] = {}
    for name, (module_name, config_name, fn_name) in spec.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            continue
        trainers[name] = (getattr(module, config_name), getattr(module, fn_name))
    return trainers


def _results_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in rows.items():
        table.add_row(k, f"{v:.3f}" if isinstance(v, float) else str(v))
    return table


def cmd_demos(argv: list[str]) -> None:
    from robot_rl.demos import DemosConfig, generate_demos

    cfg = tyro.cli(DemosConfig, args=argv, prog="robot-rl demos")
    start = time.perf_counter()
    report = generate_demos(cfg)
    rows: dict[str, Any] = {
        "episodes written": report.episodes,
        "demonstrator success rate": report.success_rate,
        "mean episode length": report.mean_length,
    }
    for name, q in report.by_quality.items():
        rows[f"{name}: episodes / success"] = f"{q['episodes']} / {q['success_rate']:.2f}"
    rows["wall time (s)"] = time.perf_counter() - start
    console.print(_results_table(f"demos → {cfg.out}", rows))


def cmd_train(argv: list[str]) -> None:
    trainers = _trainers()
    if not argv or argv[0] not in trainers:
        given = argv[0] if argv else "nothing"
        raise RobotRLError(
            f"robot-rl train needs an algorithm, got {given!r}; choose from {sorted(trainers)}"
        )
    config_cls, train = trainers[argv[0]]
    cfg = tyro.cli(config_cls, args=argv[1:], prog=f"robot-rl train {argv[0]}")
    start = time.perf_counter()
    train(cfg)
    console.print(f"[green]saved[/green] {cfg.out}  ({time.perf_counter() - start:.1f} s)")


def cmd_eval(argv: list[str]) -> None:
    from robot_rl.evaluate import EvalConfig, run_eval

    cfg = tyro.cli(EvalConfig, args=argv, prog="robot-rl eval")
    report = run_eval(cfg)
    console.print(_results_table(f"eval {report['task']}: {cfg.policy}", report))


@dataclass
class QuickstartConfig:
    """Demonstrations → Gaussian BC → evaluation, end to end on one task."""

    task: str = "push"
    """Task to learn."""
    demos: int = 100
    """Expert demonstrations to generate."""
    bc_steps: int = 20_000
    """BC gradient steps."""
    eval_episodes: int = 50
    """Evaluation episodes."""
    num_envs: int = 8
    """Parallel envs for demos and evaluation."""
    workdir: Path = Path("runs/quickstart")
    """Where the dataset, policy and report go."""
    seed: int = 0
    """Seed for demos and training."""
    overwrite: bool = False
    """Replace the outputs of an earlier quickstart in ``workdir``."""


def cmd_quickstart(argv: list[str]) -> None:
    from robot_rl.algos.bc import BCConfig, train_bc
    from robot_rl.demos import DemosConfig, generate_demos
    from robot_rl.evaluate import evaluate, write_json
    from robot_rl.train.common import check_output

    cfg = tyro.cli(QuickstartConfig, args=argv, prog="robot-rl quickstart")
    data = cfg.workdir / f"{cfg.task}_expert.hdf5"
    policy_dir = cfg.workdir / f"bc_{cfg.task}"
    report_path = cfg.workdir / "report.json"
    for path in (data, policy_dir, report_path):
        check_output(path, cfg.overwrite)
    times: dict[str, float] = {}
    start = time.perf_counter()

    console.rule(f"1/3 scripted demonstrations: {cfg.task}")
    demos = generate_demos(
        DemosConfig(
            task=cfg.task,
            episodes=cfg.demos,
            out=data,
            num_envs=cfg.num_envs,
            seed=cfg.seed,
            overwrite=cfg.overwrite,
        )
    )
    times["demos"] = time.perf_counter() - start
    console.print(f"{demos.episodes} episodes, expert success {demos.success_rate:.2f}")

    console.rule("2/3 Gaussian behaviour cloning")
    t0 = time.perf_counter()
    policy = train_bc(
        BCConfig(
            dataset=data,
            out=policy_dir,
            steps=cfg.bc_steps,
            seed=cfg.seed,
            log_dir=cfg.workdir / "tb" / "bc",
            overwrite=cfg.overwrite,
        )
    )
    times["bc"] = time.perf_counter() - t0

    console.rule("3/3 evaluation")
    t0 = time.perf_counter()
    result = evaluate(policy, cfg.eval_episodes, cfg.num_envs, seed=1000, progress=True)
    times["eval"] = time.perf_counter() - t0
    times["total"] = time.perf_counter() - start
    report = {
        "task": cfg.task,
        "demo_success_rate": demos.success_rate,
        **result.summary(),
        **{f"time/{k}_s": v for k, v in times.items()},
        "torch_threads": torch.get_num_threads(),
    }
    write_json(report_path, report)
    console.print(_results_table(f"quickstart {cfg.task} → {cfg.workdir}", report))


def cmd_finetune(argv: list[str]) -> None:
    from robot_rl.train.finetune import FinetuneConfig, finetune

    cfg = tyro.cli(FinetuneConfig, args=argv, prog="robot-rl finetune")
    summary = finetune(cfg)
    console.print(_results_table(f"finetune {cfg.algo} {cfg.task} → {cfg.out}", summary))


def cmd_robot(argv: list[str]) -> None:
    from robot_rl.robot.cli import main as robot_main

    robot_main(argv)


COMMANDS: dict[str, Callable[[list[str]], None]] = {
    "demos": cmd_demos,
    "train": cmd_train,
    "eval": cmd_eval,
    "quickstart": cmd_quickstart,
    "finetune": cmd_finetune,
    "robot": cmd_robot,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``robot-rl`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        if argv and argv[0] not in ("-h", "--help"):
            console.print(f"[red]error:[/red] unknown command {argv[0]!r}")
        console.print(f"usage: robot-rl {{{','.join(COMMANDS)}}} [--help]")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    tune_allocator()
    try:
        COMMANDS[argv[0]](argv[1:])
    except (RobotRLError, SimError) as e:
        console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
