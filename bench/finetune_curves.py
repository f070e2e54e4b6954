"""Fine-tuning curves: WSRL vs RLPD vs SAC from scratch, several seeds, one env-step budget.

    python bench/finetune_curves.py --task lift --env-steps 20000 --out runs/bench_finetune

Without ``--init`` it first makes the start point: mixed-quality scripted demonstrations and a
Cal-QL policy with critics (``--calql-steps``). WSRL starts from that policy and its critics;
RLPD learns from scratch with the same demonstrations as offline data (50/50 batches); SAC
learns from scratch online only (both take only the observation normalizer from the start
policy). Each run is a ``robot-rl finetune`` run directory, resumed if it exists, so an
interrupted bench continues. Writes ``finetune_curves.png`` (mean and min-max over seeds per
method), ``steps_to_90.md`` and ``summary.json``; the baseline named in the table is WSRL.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import tyro

from robot_rl.demos import DemosConfig, generate_demos
from robot_rl.train.finetune import FinetuneConfig, finetune


@dataclass
class BenchConfig:
    """Fine-tuning benchmark over methods and seeds."""

    task: str = "lift"
    """Task."""
    out: Path = Path("runs/bench_finetune")
    """Directory for the start policy, every run and the figures."""
    init: Path | None = None
    """Cal-QL start policy (default: trained here into ``out/calql``)."""
    dataset: Path | None = None
    """Offline data for RLPD and Cal-QL (default: generated into ``out/demos.hdf5``)."""
    algos: list[str] = field(default_factory=lambda: ["wsrl", "rlpd", "sac"])
    """Methods to run (wsrl, rlpd, sac, expo)."""
    expo_init: Path | None = None
    """Diffusion start policy for expo (default: trained here into ``out/diffusion``)."""
    expo_beta: float | None = None
    """expo's edit scale (default: the preset's; the cpu preset's was 0.05 before 2026-12-04)."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """Seeds per method."""
    env_steps: int = 20_000
    """Env-step budget of every run (WSRL's warmup included)."""
    eval_every: int = 2000
    """Env steps between evaluations."""
    eval_episodes: int = 50
    """Episodes per evaluation."""
    demos: int = 200
    """Mixed-quality demonstrations to generate when no dataset is given."""
    calql_steps: int = 4000
    """Cal-QL gradient steps when no start policy is given."""
    threads: int = 1
    """torch threads (the machine is shared)."""
    plot_only: bool = False
    """Only aggregate the runs already in ``out``."""


def prepare_start(cfg: BenchConfig) -> tuple[Path, Path]:
    """The dataset and Cal-QL start policy, made if not given."""
    from robot_rl.algos.calql import CalQLConfig, train_calql

    data = cfg.dataset or cfg.out / "demos.hdf5"
    if not data.exists():
        generate_demos(
            DemosConfig(task=cfg.task, episodes=cfg.demos, out=data, quality="mixed"),
            progress=False,
        )
    init = cfg.init or cfg.out / "calql"
    if not init.exists():
        train_calql(
            CalQLConfig(dataset=data, out=init, steps=cfg.calql_steps, log_dir=cfg.out / "tb"),
            progress=False,
        )
    if "expo" in cfg.algos and cfg.expo_init is None and not (cfg.out / "diffusion").exists():
        from robot_rl.algos.diffusion import DiffusionConfig, train_diffusion

        train_diffusion(
            DiffusionConfig(dataset=data, out=cfg.out / "diffusion", log_dir=cfg.out / "tb"),
            progress=False,
        )
    return data, init


def run_all(cfg: BenchConfig, data: Path, init: Path) -> None:
    for seed in cfg.seeds:
        for algo in cfg.algos:
            out = cfg.out / algo / f"seed{seed}"
            curve = out / "curve.json"
            if curve.exists() and json.loads(curve.read_text())["rows"][-1]["env_steps"] >= (
                cfg.env_steps
            ):
                continue
            start = time.perf_counter()
            finetune(
                FinetuneConfig(
                    algo=algo,  # type: ignore[arg-type]
                    task=cfg.task,
                    init=(cfg.expo_init or cfg.out / "diffusion") if algo == "expo" else init,
                    dataset=data,
                    out=out,
                    env_steps=cfg.env_steps,
                    eval_every=cfg.eval_every,
                    eval_episodes=cfg.eval_episodes,
                    seed=seed,
                    resume=True,
                    beta=cfg.expo_beta if algo == "expo" else None,
                )
            )
            print(f"{algo} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)


def aggregate(cfg: BenchConfig) -> dict:
    """Plot mean and spread per method; write the steps-to-90% table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    summary: dict[str, dict] = {}
    for algo in cfg.algos:
        curves = []
        for seed in cfg.seeds:
            path = cfg.out / algo / f"seed{seed}" / "curve.json"
            if path.exists():
                curves.append(json.loads(path.read_text()))
        if not curves:
            continue
        steps = np.array([r["env_steps"] for r in curves[0]["rows"]])
        n = min(len(c["rows"]) for c in curves)
        succ = np.array([[r["success_rate"] for r in c["rows"][:n]] for c in curves])
        mean = succ.mean(0)
        ax.plot(steps[:n], mean, marker="o", label=f"{algo} ({len(curves)} seeds)")
        ax.fill_between(steps[:n], succ.min(0), succ.max(0), alpha=0.2)
        summary[algo] = {
            "seeds": [c["seed"] for c in curves],
            "start_success": [c["start_success"] for c in curves],
            "min_success_after_updates": [c["min_success_after_updates"] for c in curves],
            "final_success": [c["final_success"] for c in curves],
            "steps_to_90": [c["steps_to_90"] for c in curves],
            "wall_s": [c["rows"][-1]["wall_s"] for c in curves],
        }
    ax.axhline(0.9, color="gray", linestyle=":", linewidth=1)
    ax.set(xlabel="env steps", ylabel="eval success rate (deterministic)", ylim=(-0.02, 1.02),
           title=f"fine-tuning on {cfg.task}: mean and min-max over seeds")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(cfg.out / "finetune_curves.png", dpi=110)
    plt.close(fig)

    def fmt(v: int | None) -> str:
        return f">{cfg.env_steps}" if v is None else str(v)

    lines = [
        f"| method | steps to 90% per seed (budget {cfg.env_steps}) | reached | start | "
        "min after updates | final | wall s per run |",
        "|---|---|---|---|---|---|---|",
    ]
    for algo, s in summary.items():
        reached = [v for v in s["steps_to_90"] if v is not None]
        mins = [v for v in s["min_success_after_updates"] if v is not None]
        lines.append(
            f"| {algo} | {', '.join(fmt(v) for v in s['steps_to_90'])} | "
            f"{len(reached)}/{len(s['steps_to_90'])} | "
            f"{np.mean(s['start_success']):.2f} | {min(mins) if mins else float('nan'):.2f} | "
            f"{np.mean(s['final_success']):.2f} | {np.mean(s['wall_s']):.0f} |"
        )
    table = "\n".join(lines) + "\n"
    (cfg.out / "steps_to_90.md").write_text(table)
    (cfg.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(table)
    return summary


def main() -> None:
    cfg = tyro.cli(BenchConfig)
    torch.set_num_threads(cfg.threads)
    cfg.out.mkdir(parents=True, exist_ok=True)
    if not cfg.plot_only:
        data, init = prepare_start(cfg)
        run_all(cfg, data, init)
    aggregate(cfg)


if __name__ == "__main__":
    main()
