"""EXPO ablations on one task from one command: chunked vs Ta = 1, the beta table, adaptive beta,
and the cost of EXPO vs RLPD at the same UTD.

    python bench/expo_ablations.py --task push_obstacle --dataset po_demos.hdf5 \\
        --init dp_po --out /work/runs13

``--init`` is the chunked diffusion start (``robot-rl train diffusion``, Ta from its scale); the
Ta = 1 start is trained here from the same data into ``out/dp_ta1`` (``--ta1-init`` to reuse
one). Runs, each a ``robot-rl finetune`` run directory resumed if it exists (the names match
the queue that produced the published table):

- ``po/expo/seed{s}``: chunked EXPO, beta 0.05, ``--env-steps`` (the reference; also the
  beta = 0.05 row, read at ``--beta-env-steps``);
- ``expo_ta1``: the same from the Ta = 1 start;
- ``beta_{b}``: chunked EXPO with fixed beta b, ``--beta-env-steps``;
- ``beta_adaptive``: adaptive beta started at 0.05, ``--beta-env-steps``.

Then ``--cost`` times act + env step and one update of EXPO vs RLPD (same UTD and batch) on
the same env. Writes ``expo_ablations.md`` and ``expo_ablations.json`` in ``out``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import tyro

from robot_rl.train.finetune import FinetuneConfig, algorithm, finetune, resolve


@dataclass
class AblationConfig:
    """EXPO ablations (resumable)."""

    task: str = "push_obstacle"
    """Task."""
    dataset: Path = Path("po_demos.hdf5")
    """Offline data (the diffusion starts' training data)."""
    init: Path = Path("dp_po")
    """Chunked diffusion start policy."""
    out: Path = Path("runs/expo_ablations")
    """Directory of every run and the tables."""
    ta1_init: Path | None = None
    """Ta = 1 diffusion start (default: trained here into ``out/dp_ta1``)."""
    seed: int = 0
    """Seed of every run."""
    env_steps: int = 30_000
    """Budget of the chunked reference and the Ta = 1 run."""
    beta_env_steps: int = 20_000
    """Budget of the beta runs."""
    betas: list[float] = field(default_factory=lambda: [0.02, 0.1, 0.3])
    """Fixed betas besides 0.05 (the reference)."""
    adaptive: bool = True
    """Also run adaptive beta."""
    eval_every: int = 5000
    """Env steps between evaluations."""
    eval_episodes: int = 50
    """Episodes per evaluation."""
    gaussian_init: Path | None = None
    """RLPD's start for --cost: a Gaussian policy on the task, its normalizer only (default
    ``out/po/calql``, the Cal-QL start bench/finetune_curves.py makes)."""
    cost: bool = True
    """Time EXPO vs RLPD (act + step, update) at the same UTD."""
    cost_steps: int = 50
    """Vector steps and update calls timed per method."""
    plot_only: bool = False
    """Start no learning run: tabulate the runs already in ``out`` (and time, with --cost)."""
    threads: int = 1
    """torch threads (the machine is shared)."""
    report: Path | None = None
    """Directory for the tables (default ``out``)."""


def _runs(cfg: AblationConfig, ta1: Path) -> dict[str, tuple[FinetuneConfig, int]]:
    """Row name -> (run settings, env step at which the row is read)."""
    base = FinetuneConfig(
        algo="expo", task=cfg.task, out=cfg.out, init=cfg.init, dataset=cfg.dataset,
        env_steps=cfg.env_steps, eval_every=cfg.eval_every, eval_episodes=cfg.eval_episodes,
        seed=cfg.seed, resume=True,
    )  # fmt: skip
    ref = replace(base, out=cfg.out / "po" / "expo" / f"seed{cfg.seed}")
    runs = {
        "chunked, beta 0.05": (ref, cfg.env_steps),
        "Ta = 1, beta 0.05": (replace(base, out=cfg.out / "expo_ta1", init=ta1), cfg.env_steps),
        "beta 0.05": (ref, cfg.beta_env_steps),
    }
    short = replace(base, env_steps=cfg.beta_env_steps)
    for b in cfg.betas:
        runs[f"beta {b}"] = (replace(short, beta=b, out=cfg.out / f"beta_{b}"), cfg.beta_env_steps)
    if cfg.adaptive:
        runs["beta adaptive (start 0.05)"] = (
            replace(short, beta_mode="adaptive", out=cfg.out / "beta_adaptive"),
            cfg.beta_env_steps,
        )
    return runs


def _done(run: FinetuneConfig) -> bool:
    curve = run.out / "curve.json"
    return curve.exists() and json.loads(curve.read_text())["rows"][-1]["env_steps"] >= (
        run.env_steps
    )


def train_ta1(cfg: AblationConfig) -> Path:
    """The Ta = 1 diffusion start on the same data (as ``train diffusion --n-action-steps 1``)."""
    if cfg.ta1_init is not None:
        return cfg.ta1_init
    out = cfg.out / "dp_ta1"
    if not (out / "config.json").exists():
        from robot_rl.algos.diffusion import DiffusionConfig, train_diffusion

        train_diffusion(DiffusionConfig(dataset=cfg.dataset, out=out, n_action_steps=1),
                        progress=False)  # fmt: skip
    return out


def tabulate(cfg: AblationConfig, runs: dict[str, tuple[FinetuneConfig, int]]) -> list[dict]:
    rows = []
    for name, (run, at) in runs.items():
        path = run.out / "curve.json"
        if not path.exists():
            continue
        curve = json.loads(path.read_text())
        pts = [r for r in curve["rows"] if r["env_steps"] <= at]
        to90 = next((r["env_steps"] for r in pts if r["success_rate"] >= 0.9), None)
        rows.append({
            "run": name, "dir": str(run.out), "budget": at,
            "curve": [(r["env_steps"], r["success_rate"]) for r in pts],
            "final": pts[-1]["success_rate"], "complete": pts[-1]["env_steps"] >= at,
            "steps_to_90": to90, "wall_s": pts[-1]["wall_s"],
        })  # fmt: skip
    return rows


def measure_cost(cfg: AblationConfig) -> dict[str, dict[str, float]]:
    """Seconds per vector step (act + env step + observe) and per update call, EXPO vs RLPD,
    both at EXPO's cpu UTD and batch, selection on (EXPO) from the first step."""
    from robot_rl.algos.common import seed_everything
    from robot_rl.envs import make_env_checked
    from robot_rl.train.collector import Collector
    from robot_rl.train.finetune import _start_env_kwargs

    out = {}
    for algo in ("expo", "rlpd"):
        run = resolve(FinetuneConfig(
            algo=algo, task=cfg.task, out=cfg.out / "cost" / algo,
            init=cfg.init if algo == "expo" else cfg.gaussian_init or cfg.out / "po" / "calql",
            dataset=cfg.dataset, env_steps=10_000, utd=4, batch_size=256, warmup_steps=0,
            random_steps=0, seed=cfg.seed,
        ))  # fmt: skip
        env = make_env_checked(cfg.task, num_envs=run.num_envs, seed=cfg.seed,
                               **_start_env_kwargs(run))  # fmt: skip
        try:
            agent = algorithm(algo).build(run, env, seed_everything(cfg.seed))
            collector = Collector(env, agent.observe, seed=cfg.seed)

            def act(obs: dict, agent=agent, env=env) -> torch.Tensor:  # noqa: ANN001
                return agent.act(obs, 10**9).to(env.device)

            for _ in range(20):  # fill the replay with finished chunks
                collector.collect(act)
            t0 = time.perf_counter()
            for _ in range(cfg.cost_steps):
                collector.collect(act)
            step_s = (time.perf_counter() - t0) / cfg.cost_steps
            agent.update(0)
            t0 = time.perf_counter()
            for i in range(cfg.cost_steps):
                agent.update(i)
            update_s = (time.perf_counter() - t0) / cfg.cost_steps
        finally:
            env.close()
        out[algo] = {"num_envs": run.num_envs, "utd": run.utd, "vector_step_s": step_s,
                     "env_steps_per_s": run.num_envs / step_s, "update_s": update_s}  # fmt: skip
        print(algo, out[algo], flush=True)
    return out


def write(cfg: AblationConfig, rows: list[dict], cost: dict | None) -> None:
    def fmt(v: int | None, budget: int) -> str:
        return f">{budget}" if v is None else str(v)

    lines = [f"EXPO ablations on {cfg.task}, seed {cfg.seed} (deterministic eval, "
             f"{cfg.eval_episodes} episodes)", "",
             "| run | success by env steps | final | steps to 90% | wall s | dir |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        curve = ", ".join(f"{s // 1000}k {v:.2f}" for s, v in r["curve"])
        mark = "" if r["complete"] else " (running)"
        lines.append(f"| {r['run']}{mark} | {curve} | {r['final']:.2f} | "
                     f"{fmt(r['steps_to_90'], r['budget'])} | {r['wall_s']:.0f} | {r['dir']} |")  # fmt: skip
    if cost:
        lines += ["", "| method | envs | UTD | env steps/s (act+step) | update s |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for algo, c in cost.items():
            lines.append(f"| {algo} | {c['num_envs']} | {c['utd']} | "
                         f"{c['env_steps_per_s']:.0f} | {c['update_s']:.3f} |")  # fmt: skip
    text = "\n".join(lines) + "\n"
    report = cfg.report or cfg.out
    report.mkdir(parents=True, exist_ok=True)
    (report / "expo_ablations.md").write_text(text)
    (report / "expo_ablations.json").write_text(
        json.dumps({"rows": rows, "cost": cost}, indent=2) + "\n"
    )
    print(text)


def main() -> None:
    cfg = tyro.cli(AblationConfig)
    torch.set_num_threads(cfg.threads)
    cfg.out.mkdir(parents=True, exist_ok=True)
    ta1 = cfg.ta1_init or cfg.out / "dp_ta1"
    runs = _runs(cfg, ta1)
    cost = None
    if not cfg.plot_only:
        train_ta1(cfg)
        for name, (run, _) in runs.items():
            if not _done(run):
                start = time.perf_counter()
                finetune(run)
                print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    if cfg.cost:
        cost = measure_cost(cfg)
    write(cfg, tabulate(cfg, runs), cost)


if __name__ == "__main__":
    main()
