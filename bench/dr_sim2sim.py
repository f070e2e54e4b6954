"""Sim-to-sim check of domain randomization: does a policy trained with it lose less success
when the dynamics change?

    python bench/dr_sim2sim.py --task lift --out runs/dr_sim2sim

Two BC policies from scripted-expert demonstrations (only successful episodes kept): one
recorded in the nominal sim, one with per-env domain randomization (``--train-dr``, resampled
at every reset). Both are evaluated on the nominal sim and on shifted dynamics (``--test``: a
fixed perturbation at the edge of the training ranges), same episodes and seeds, and the table
gives the success lost. Everything goes through the ``robot-rl`` CLI, so each step is a command
a user could run; finished steps are reused when the bench is run again.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

TRAIN_DR = {
    "friction": [0.6, 1.4],
    "object_mass": [0.5, 2.0],
    "damping": [0.7, 1.5],
    "actuator_gain": [0.7, 1.3],
    "obs_noise": 0.003,
    "action_latency": [0, 1],
}
TEST_SHIFT = {
    "friction": [0.6, 0.6],
    "object_mass": [2.0, 2.0],
    "damping": [1.5, 1.5],
    "actuator_gain": [0.7, 0.7],
    "obs_noise": 0.003,
    "action_latency": [1, 1],
}


def cli(*args: str) -> None:
    cmd = [sys.executable, "-m", "robot_rl.cli", "--threads", "1", *args]
    print("$", " ".join(a if " " not in a else f"'{a}'" for a in cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="lift")
    parser.add_argument("--out", type=Path, default=Path("runs/dr_sim2sim"))
    parser.add_argument("--demos", type=int, default=100)
    parser.add_argument("--bc-steps", type=int, default=10000)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--train-dr", type=json.loads, default=TRAIN_DR)
    parser.add_argument("--test", type=json.loads, default=TEST_SHIFT)
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = {}
    for name, dr in (("nominal", None), ("randomized", args.train_dr)):
        data, policy = out / f"{name}.hdf5", out / f"bc_{name}"
        if not data.exists():
            extra = ["--env-kwargs", json.dumps({"randomize": dr})] if dr else []
            cli("demos", "--task", args.task, "--episodes", str(args.demos), "--only-success",
                "--out", str(data), *extra)  # fmt: skip
        if not (policy / "model.safetensors").exists():
            cli("train", "bc", "--dataset", str(data), "--out", str(policy),
                "--steps", str(args.bc_steps))  # fmt: skip
        rates = {}
        for env_name, env_dr in (("nominal", None), ("shifted", args.test)):
            result = out / f"eval_{name}_on_{env_name}.json"
            if not result.exists():
                cli("eval", "--policy", str(policy), "--episodes", str(args.episodes),
                    "--env-kwargs", json.dumps({"randomize": env_dr}), "--out", str(result))  # fmt: skip
            rates[env_name] = json.loads(result.read_text())["eval/success_rate"]
        rows[name] = rates
    lines = [
        f"Task `{args.task}`, BC from {args.demos} successful expert demos each, "
        f"{args.episodes} evaluation episodes per cell ({time.perf_counter() - start:.0f} s).",
        f"Training randomization: `{json.dumps(args.train_dr)}`",
        f"Shifted dynamics: `{json.dumps(args.test)}`",
        "",
        "| policy trained on | nominal sim | shifted dynamics | success lost |",
        "|---|---|---|---|",
    ]
    for name, r in rows.items():
        lost = r["nominal"] - r["shifted"]
        lines.append(f"| {name} | {r['nominal']:.2f} | {r['shifted']:.2f} | {lost:+.2f} |")
    table = "\n".join(lines)
    (out / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
