"""Success classifier on episodes recorded from the sim robot, held out by episode.

The sim robot (lockstep, over Cyclone DDS) runs a start policy whose episodes succeed part
of the time (e.g. a Cal-QL ``lift`` start, ~0.5); the policy node records them (``--record``)
with the task's own success flag (the sim robot's ``/success`` topic) as the per-step reward.
``robot-rl robot success`` then trains the classifier on the states and reports precision /
recall on held-out episodes, per step and per episode (fires anywhere vs succeeded).

    PYTHONPATH=. python bench/success_sim.py --policy /work/runs14/calql_lift \\
        --out /work/runs14/success_sim --episodes 120
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path


def cli(log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "robot_rl.cli", "--threads", "1", *args],
                            stdout=open(log, "a"), stderr=subprocess.STDOUT)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--episodes", type=int, default=120)
    ap.add_argument("--seed", type=int, default=3, help="sim robot reset seed")
    ap.add_argument("--holdout", type=float, default=0.25)
    ap.add_argument("--domain-id", default="93")
    a = ap.parse_args()
    if not (a.policy / "config.json").is_file():
        print(f"{a.policy}: not a policy directory (no config.json)", file=sys.stderr)
        sys.exit(2)
    if a.out.exists():
        shutil.rmtree(a.out)
    a.out.mkdir(parents=True)
    rec, dom = a.out / "sim_episodes.hdf5", ["--domain-id", a.domain_id]
    sim = cli(a.out / "sim.log", "robot", "sim", "--mode", "lockstep", "--seed", str(a.seed),
              "--idle-timeout-s", "30", *dom)  # fmt: skip
    try:
        pol = cli(a.out / "policy.log", "robot", "policy", "--policy", str(a.policy), "--mode",
                  "lockstep", "--episodes", str(a.episodes), "--record", str(rec), "--stats",
                  str(a.out / "policy_stats.json"), *dom)  # fmt: skip
        if pol.wait() != 0:
            sys.exit(f"policy node failed (see {a.out / 'policy.log'})")
    finally:
        sim.terminate()
        sim.wait()
    train = ["robot", "success", "--dataset", str(rec), "--out", str(a.out / "clf"),
             "--holdout", str(a.holdout)]  # fmt: skip
    if cli(a.out / "success.log", *train).wait() != 0:
        sys.exit(f"robot-rl robot success failed (see {a.out / 'success.log'})")
    report = json.loads((a.out / "clf" / "config.json").read_text())["report"]
    stats = json.loads((a.out / "policy_stats.json").read_text())
    report["recorded_success_rate"] = stats.get("runtime", stats).get("success_rate")
    report["command"] = " ".join(sys.argv)
    (a.out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
