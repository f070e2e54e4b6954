"""Fault figures of an on-robot session on the sim robot, through the wire (Cyclone DDS).

Sim robot (realtime, 20 Hz) + actor (realtime) + learner, three processes. The learner is
SIGKILLed and restarted with --resume ``--kills`` times; then: transitions lost (journal ids
vs the actor's count), missed control periods, learner-death detection latency (kill ->
actor report; CLOCK_MONOTONIC is system-wide), weight swaps, publish -> use latency, and the
control-period error p99 in the periods around swaps vs the rest.

    ROBOT_RL_LINK_KEY=0123456789abcdef0123 PYTHONPATH=. python bench/session_faults.py \
        --policy POLICY --dataset DATA --out /tmp/faults
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def spawn(log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "robot_rl.cli", "--threads", "1", *args],
                            stdout=open(log, "a"), stderr=subprocess.STDOUT)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policy", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--horizon", type=int, default=40)
    ap.add_argument("--domain-id", default="91")
    a = ap.parse_args()
    if a.out.exists():
        shutil.rmtree(a.out)
    a.out.mkdir(parents=True)
    run = a.out / "run"
    dom = ["--domain-id", a.domain_id]

    def learner(*extra: str) -> subprocess.Popen:
        return spawn(a.out / "learner.log", "learner", "--algo", "rlpd", "--init", a.policy,
                     "--dataset", a.dataset, "--out", str(run), "--env-steps", "1000000",
                     "--batch-size", "64", "--utd", "1", "--num-critics", "2",
                     "--critic-hidden-dims", "64", "64", "--random-steps", "100",
                     "--updates-per-step", "0.5", "--publish-every", "10",
                     "--checkpoint-every", "100", "--log-every", "200", "--idle-exit-s", "6",
                     *dom, *extra)  # fmt: skip

    sim = spawn(
        a.out / "sim.log", "robot", "sim", "--mode", "realtime", "--idle-timeout-s", "30", *dom
    )
    lp = learner()
    stats = a.out / "actor.json"
    actor = spawn(a.out / "actor.log", "robot", "actor", "--policy", a.policy, "--mode", "realtime",
                  "--episodes", str(a.episodes), "--horizon", str(a.horizon),
                  "--stats", str(stats), *dom)  # fmt: skip
    kills = []
    try:
        while not (run / "learner_state.json").is_file():
            time.sleep(0.2)
        for _ in range(a.kills):
            time.sleep(6.0)
            lp.send_signal(signal.SIGKILL)
            kills.append(time.monotonic())
            lp.wait()
            time.sleep(2.5)  # the robot runs without a learner
            lp = learner("--resume")
        actor.wait(timeout=1200)
        lp.wait(timeout=300)
    finally:
        for p in (actor, lp, sim):
            p.kill()
            p.wait()
    got = json.loads(stats.read_text())
    s = got["runtime"]
    from robot_rl.robot.link import Journal

    seqs = Journal(run / "journal").read("robot")["seq"]
    deaths = got["learner_deaths_monotonic"]
    detect = [min((d - k for d in deaths if d >= k), default=float("nan")) for k in kills]
    lat = np.asarray(got["swap_latency_s"])
    report = {
        "kills": len(kills),
        "transitions_sent": s["transitions"],
        "transitions_stored": int(len(seqs)),
        "ids_lost": int(s["transitions"] - len(np.unique(seqs))),
        "ids_duplicated": int(len(seqs) - len(np.unique(seqs))),
        "ids_in_order": bool(np.all(np.diff(seqs) == 1)),
        "missed_periods": s["missed_periods"],
        "ticks": s["ticks"],
        "death_detect_s": detect,
        "learner_restarts_seen": s["learner_restarts"],
        "weight_swaps": len(got["swaps"]),
        "swap_load_ms_max": s["swap_load_ms_max"],
        "publish_to_use_s_p50": float(np.median(lat)) if len(lat) else None,
        "publish_to_use_s_max": float(lat.max()) if len(lat) else None,
        "period_err_ms_p99_swap": s.get("period_ms_p99_swap"),
        "period_err_ms_p99_noswap": s.get("period_ms_p99_noswap"),
        "period_err_ms_p99_all": s["period_error_ms_p99"],
        "weights_rejected": s["weights_rejected"],
        "success_rate": s["success_rate"],
    }
    (a.out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("ROBOT_RL_LINK_KEY", "")
    main()
