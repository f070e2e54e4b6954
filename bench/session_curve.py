"""A learning session through the wire vs the same run in process: steps to 90 % and curves.

Two runs from the same start policy and seed, one after the other (never at once):

1. in process: ``robot-rl finetune --algo ALGO --task T --init P --env-steps N --eval-every E``
   (success = deterministic eval on fixed episodes every E env steps);
2. through the wire: the sim robot (lockstep) + ``robot-rl robot actor --mode lockstep
   --max-learner-lag 0`` (samples from the policy, as ``finetune`` collects) + ``robot-rl
   learner`` over Cyclone DDS, three processes (success = the robot's own episodes, rolling
   last ``--window``).

Writes ``OUT/report.json`` (steps-to-90 of each, their ratio, updates, wall) and
``OUT/curves.png`` (success vs env steps and vs wall-clock seconds). The learner also saves
its policy every ``--eval-every`` env steps; those snapshots are then evaluated as in process
(50 deterministic episodes, seed 1000): "wire (eval)", the same measure as the in-process
curve, next to the robot's own (sampled) episodes.

    ROBOT_RL_LINK_KEY=0123456789abcdef0123 PYTHONPATH=. python bench/session_curve.py \
        --policy /work/runs14/calql_lift --out /work/runs14/curve_wsrl
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def spawn(log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "robot_rl.cli", "--threads", "1", *args],
                            stdout=open(log, "a"), stderr=subprocess.STDOUT)  # fmt: skip


def in_process(a: argparse.Namespace, task: str) -> dict:
    out = a.out / "inproc"
    args = ["finetune", "--algo", a.algo, "--task", task, "--init", str(a.policy),
            "--out", str(out), "--env-steps", str(a.env_steps), "--eval-every",
            str(a.eval_every), "--seed", str(a.seed)]  # fmt: skip
    if a.dataset:
        args += ["--dataset", str(a.dataset)]
    t0 = time.perf_counter()
    p = spawn(a.out / "inproc.log", *args)
    if p.wait() != 0:
        sys.exit(f"in-process finetune failed (see {a.out / 'inproc.log'})")
    return inproc_result(a, time.perf_counter() - t0)


def inproc_result(a: argparse.Namespace, wall_s: float) -> dict:
    curve = json.loads((a.out / "inproc" / "curve.json").read_text())
    return {"steps_to_90": curve.get("steps_to_90"), "wall_s": wall_s,
            "wall_s_to_90": next((r["wall_s"] for r in curve["rows"]
                                  if r["success_rate"] >= 0.9), None),
            "rows": curve["rows"]}  # fmt: skip


def through_wire(a: argparse.Namespace) -> dict:
    run = a.out / "wire"
    dom = ["--domain-id", str(a.domain_id)]
    t0 = time.perf_counter()
    sim = spawn(a.out / "sim.log", "robot", "sim", "--mode", "lockstep", "--seed",
                str(a.seed), "--idle-timeout-s", "120", *dom)  # fmt: skip
    largs = ["learner", "--algo", a.algo, "--init", str(a.policy), "--out", str(run),
             "--env-steps", str(a.env_steps), "--seed", str(a.seed), "--success-window",
             str(a.window), "--idle-exit-s", "60", "--snapshot-every", str(a.eval_every),
             *dom]  # fmt: skip
    if a.dataset:
        largs += ["--dataset", str(a.dataset)]
    learner = spawn(a.out / "learner.log", *largs)
    actor = spawn(a.out / "actor.log", "robot", "actor", "--policy", str(a.policy), "--mode",
                  "lockstep", "--max-learner-lag", "0", "--episodes", "100000", "--seed",
                  str(a.seed), "--stats", str(a.out / "actor.json"), "--drain-s", "2",
                  "--idle-timeout-s", "120", *dom)  # fmt: skip
    try:
        rc = learner.wait()
    finally:
        for p in (actor, sim, learner):
            p.terminate()
        for p in (actor, sim, learner):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    if rc != 0:
        sys.exit(f"learner failed (see {a.out / 'learner.log'})")
    return wire_result(a, time.perf_counter() - t0)


def wire_result(a: argparse.Namespace, wall_s: float) -> dict:
    run = a.out / "wire"
    curve = json.loads((run / "curve.json").read_text())
    summary = json.loads((run / "learner_summary.json").read_text())
    # a point counts once `window` robot episodes are behind it
    rows = [r for r in curve["rows"] if r["episodes"] >= a.window]
    reached = [r["env_steps"] for r in rows if r["success_rate"] >= 0.9]
    return {"steps_to_90": reached[0] if reached else None, "wall_s": wall_s,
            "wall_s_to_90": next((r["wall_s"] for r in rows if r["success_rate"] >= 0.9), None),
            "robot_s_to_90": next((r["robot_s"] for r in rows if r["success_rate"] >= 0.9), None),
            "updates": summary["updates"], "episodes": summary["episodes"],
            "rows": rows}  # fmt: skip


def eval_snapshots(a: argparse.Namespace) -> dict:
    """The learner's policy every ``eval_every`` env steps, evaluated as `robot-rl finetune`
    evaluates (50 deterministic episodes, 25 envs, seed 1000): the same measure as in process."""
    snaps = sorted((a.out / "wire" / "snapshots").glob("*"))
    rows = []
    for steps, path in [(0, a.policy), *((int(p.name), p) for p in snaps)]:
        res = a.out / "wire" / f"eval_{steps:07d}.json"
        p = spawn(a.out / "eval.log", "eval", "--policy", str(path), "--episodes", "50",
                  "--num-envs", "25", "--seed", "1000", "--out", str(res))  # fmt: skip
        if p.wait() != 0:
            sys.exit(f"eval of {path} failed (see {a.out / 'eval.log'})")
        got = json.loads(res.read_text())
        rate = got.get("eval/success_rate", got.get("success_rate"))
        rows.append({"env_steps": steps, "success_rate": float(rate), "wall_s": float("nan")})
    reached = [r["env_steps"] for r in rows if r["success_rate"] >= 0.9]
    return {"steps_to_90": reached[0] if reached else None, "rows": rows,
            "success": [r["success_rate"] for r in rows]}  # fmt: skip


def plot(a: argparse.Namespace, runs: dict[str, dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, r in runs.items():
        xs = [row["env_steps"] for row in r["rows"]]
        ys = [row["success_rate"] for row in r["rows"]]
        axes[0].plot(xs, ys, marker="." if name == "wire" else "o", label=name)
        if name != "wire (eval)":
            axes[1].plot([row["wall_s"] for row in r["rows"]], ys, label=name)
    axes[0].set(xlabel="env steps", ylabel="success rate")
    axes[1].set(xlabel="wall-clock s", ylabel="success rate")
    for ax in axes:
        ax.axhline(0.9, color="gray", linestyle=":")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.suptitle(f"{a.algo} from {a.policy.name}, seed {a.seed}: in process (eval) vs "
                 f"through the wire (robot episodes, last {a.window})")  # fmt: skip
    fig.tight_layout()
    fig.savefig(a.out / "curves.png", dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", type=Path, required=True, help="start policy directory")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--algo", default="wsrl", choices=["wsrl", "rlpd", "sac"])
    ap.add_argument("--dataset", type=Path, default=None, help="offline data (rlpd)")
    ap.add_argument("--env-steps", type=int, default=20_000)
    ap.add_argument("--eval-every", type=int, default=2000)
    ap.add_argument("--window", type=int, default=20, help="robot episodes per success point")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--domain-id", type=int, default=92)
    ap.add_argument("--skip-inproc", action="store_true", help="only the run through the wire")
    ap.add_argument(
        "--inproc-from",
        type=Path,
        default=None,
        help="reuse this in-process finetune run directory instead of running it",
    )
    ap.add_argument("--report-only", action="store_true",
                    help="rebuild report.json and curves.png from the runs already in --out")  # fmt: skip
    a = ap.parse_args()
    cfg = a.policy / "config.json"
    if not cfg.is_file():
        print(f"{a.policy}: not a policy directory (no config.json)", file=sys.stderr)
        sys.exit(2)
    if not os.environ.get("ROBOT_RL_LINK_KEY"):
        print("export ROBOT_RL_LINK_KEY (>= 16 bytes) first", file=sys.stderr)
        sys.exit(2)
    task = json.loads(cfg.read_text()).get("env", {}).get("env_name", "lift")
    runs = {}
    if a.report_only:
        old = json.loads((a.out / "report.json").read_text())
        if (a.out / "inproc" / "curve.json").is_file():
            runs["in process"] = inproc_result(a, old["in process"]["wall_s"])
        runs["wire"] = wire_result(a, old["wire"]["wall_s"])
        finish(a, runs, old.get("command"))
        return
    if a.out.exists():
        shutil.rmtree(a.out)
    a.out.mkdir(parents=True)
    if a.inproc_from is not None:  # an in-process run made before, with the same settings
        shutil.copytree(a.inproc_from, a.out / "inproc")
        runs["in process"] = inproc_result(a, float("nan"))
    elif not a.skip_inproc:
        runs["in process"] = in_process(a, task)
        print(f"in process: steps-to-90 {runs['in process']['steps_to_90']}, "
              f"{runs['in process']['wall_s']:.0f} s", flush=True)  # fmt: skip
    runs["wire"] = through_wire(a)
    runs["wire (eval)"] = eval_snapshots(a)
    finish(a, runs, " ".join(sys.argv))


def finish(a: argparse.Namespace, runs: dict[str, dict], command: str | None) -> None:
    plot(a, runs)
    report = {name: {k: v for k, v in r.items() if k != "rows"} for name, r in runs.items()}
    report["wire"]["final_success"] = runs["wire"]["rows"][-1]["success_rate"]
    s_in = report.get("in process", {}).get("steps_to_90")
    for name in ("wire", "wire (eval)"):
        s_w = report.get(name, {}).get("steps_to_90")
        report[f"ratio_{name}_over_inproc"] = s_w / s_in if s_in and s_w else None
    report["command"] = command
    (a.out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
