"""Robot control loop over Cyclone DDS on loopback, as ratios to the same loop without DDS.

For a BC (Gaussian) and a diffusion policy, at each control rate (default 50 and 100 Hz): the
sim robot node (``robot-rl robot sim --mode realtime``) and the policy node (``robot-rl robot
policy --mode realtime``, asynchronous chunk inference for diffusion) run in two separate
processes talking ROS 2 topics over Cyclone DDS (domain ``--domain-id``), for ``--seconds``. The
policy node's ``--stats`` JSON gives, per control period:

- period error: how late the tick started after its deadline (p50/p99, ms) and missed periods
  (ticks later than a whole period);
- obs->command: from the joint state's stamp (taken when the sim published it) to the command's
  publication (p50/p99, ms). The two nodes' timers are not synchronised, so this includes the
  phase between them (uniform in [0, period)) on top of transport and compute;
  The bench also prints the phase (the smallest joint-state age at a tick: phase + fastest
  delivery) and obs->command without it; a p99 near one period there means some joint states
  arrived just after the tick that wanted them (the command then used the previous one);
- compute: the policy node's work per tick (p99, ms);
- starved: ticks with no planned action (async inference too slow).

Baseline, measured in the same run: the same policy runtime in this process, no DDS and no sim,
on the same wall-clock timer (period error, and compute as its obs->command). Ratios are DDS /
baseline. The load average (1 min) is printed before and after: the machine is shared.

Without ``--bc``/``--diffusion``, tiny policies are trained in a temporary directory (a few
steps on scripted ``lift`` demos: they act, they need not succeed; latency does not depend on
the weights, and the diffusion one has the cpu preset's architecture: MLP 256, DDIM-10).

    PYTHONPATH=$PWD python bench/robot_loop.py [--seconds 10] [--rates 50 100]
        [--bc DIR] [--diffusion DIR] [--domain-id 77] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def train_tiny(root: Path) -> dict[str, Path]:
    """A BC and a diffusion policy on ``lift``, a few training steps each."""
    from robot_rl.algos.bc import BCConfig, train_bc
    from robot_rl.algos.diffusion import DiffusionConfig, train_diffusion
    from robot_rl.demos import DemosConfig, generate_demos

    data = root / "lift.hdf5"
    generate_demos(DemosConfig(task="lift", episodes=4, out=data, num_envs=4, seed=0))
    out = {"bc": root / "bc", "diffusion": root / "diffusion"}
    common = {"dataset": data, "batch_size": 64, "log_dir": root / "runs"}
    train_bc(BCConfig(out=out["bc"], steps=30, **common), progress=False)
    train_diffusion(
        DiffusionConfig(out=out["diffusion"], steps=30, warmup_steps=5, **common), progress=False
    )
    return out


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.abs(xs), q)) * 1e3 if xs else float("nan")


def baseline(policy: Path, rate_hz: float, seconds: float) -> dict[str, float]:
    """The policy runtime on a wall-clock timer in this process: no DDS, no sim."""
    import torch

    from robot_rl.robot.runtime import PolicyRuntime, robot_obs

    torch.set_num_threads(1)
    sys.setswitchinterval(0.0005)  # as the policy node does
    rt = PolicyRuntime(policy, control_hz=rate_hz, async_inference=True)
    q = np.r_[rt.kin.home.numpy().astype(np.float64), 0.04, 0.04]
    obs = robot_obs(rt.kin, q, np.zeros(9), np.r_[0.5, 0.0, 0.02, 1.0, 0.0, 0.0, 0.0])
    rt.start(q, obs)
    period = 1.0 / rate_hz
    err, compute, missed = [], [], 0
    start = time.monotonic()
    n = int(seconds * rate_hz)
    k = 0
    first = True
    while k < n:
        k += 1
        deadline = start + k * period
        while (now := time.monotonic()) < deadline:
            time.sleep(min(0.0005, deadline - now))
        late = now - deadline
        if late > period:
            missed += int(late / period)
            k += int(late / period)
        err.append(late)
        t0 = time.perf_counter()
        rt.step(q, obs, obs_age=0.0, first=first)
        first = False
        compute.append(time.perf_counter() - t0)
    rt.close()
    return {
        "period_error_ms_p50": pct(err, 50),
        "period_error_ms_p99": pct(err, 99),
        "compute_ms_p50": pct(compute, 50),
        "compute_ms_p99": pct(compute, 99),
        "missed_periods": missed,
        "starved": rt.stats.starved,
        "ticks": len(err),
    }


def cli(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return subprocess.Popen(
        [sys.executable, "-m", "robot_rl.cli", "--threads", "1", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def over_dds(policy: Path, rate_hz: float, seconds: float, domain: int, tmp: Path) -> dict:
    """Sim robot and policy node in two processes over Cyclone DDS; the policy node's stats."""
    stats = tmp / f"stats_{policy.name}_{rate_hz:g}.json"
    rate = f"{rate_hz:g}"
    sim = cli(
        "robot", "sim", "--mode", "realtime", "--rate-hz", rate, "--domain-id", str(domain),
        "--idle-timeout-s", "120",
    )  # fmt: skip
    pol = cli(
        "robot", "policy", "--policy", str(policy), "--mode", "realtime", "--rate-hz", rate,
        "--domain-id", str(domain), "--horizon", "1000000", "--max-ticks",
        str(int(seconds * rate_hz)), "--stats", str(stats),
    )  # fmt: skip
    try:
        out, _ = pol.communicate(timeout=seconds + 180)
    finally:
        pol.kill()
        sim.kill()
        sim.communicate(timeout=30)
    if pol.returncode != 0:
        raise SystemExit(f"policy node failed ({pol.returncode}):\n{out}")
    got = json.loads(stats.read_text())
    s = got["summary"]
    # obs->cmd = (age of the joint state when the tick starts) + compute; the smallest age is the
    # phase between the two timers plus the fastest delivery. Without that phase:
    o2c, comp = np.asarray(got["obs_to_command_s"]), np.asarray(got["compute_s"])
    age = o2c - comp if len(o2c) == len(comp) else o2c
    phase = float(age.min()) if len(age) else float("nan")
    return {
        "timer_phase_ms": phase * 1e3,
        "obs_to_command_minus_phase_ms_p50": pct(list(o2c - phase), 50),
        "obs_to_command_minus_phase_ms_p99": pct(list(o2c - phase), 99),
        "period_error_ms_p50": s["period_error_ms_p50"],
        "period_error_ms_p99": s["period_error_ms_p99"],
        "obs_to_command_ms_p50": s["obs_to_command_ms_p50"],
        "obs_to_command_ms_p99": s["obs_to_command_ms_p99"],
        "compute_ms_p99": s["compute_ms_p99"],
        "missed_periods": s["missed_periods"],
        "starved": got["runtime"]["runtime_starved"],
        "ticks": s["ticks"],
        "commands": len(got["obs_to_command_s"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rates", type=float, nargs="+", default=[50.0, 100.0])
    ap.add_argument("--bc", type=Path, help="BC policy directory (default: train a tiny one)")
    ap.add_argument("--diffusion", type=Path, help="diffusion policy directory (default: tiny)")
    ap.add_argument("--domain-id", type=int, default=77)
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args()
    if args.seconds <= 0 or any(r <= 0 for r in args.rates):
        raise SystemExit("--seconds and --rates must be positive")
    for p in (args.bc, args.diffusion):
        if p is not None and not (p / "config.json").is_file():
            raise SystemExit(f"{p}: not a policy directory (no config.json)")

    import torch

    torch.set_num_threads(1)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        policies = {"bc": args.bc, "diffusion": args.diffusion}
        if None in policies.values():
            trained = train_tiny(tmp / "train")
            policies = {k: v or trained[k] for k, v in policies.items()}
        rows = []
        for name, path in policies.items():
            for rate in args.rates:
                base = baseline(path, rate, args.seconds)
                dds = over_dds(path, rate, args.seconds, args.domain_id, tmp)
                rows.append({"policy": name, "rate_hz": rate, "baseline": base, "dds": dds})
                print_row(rows[-1])
    load_after = os.getloadavg()
    print(f"load average (1/5/15 min) before {fmt(load_before)}, after {fmt(load_after)}")
    goal = [r for r in rows if r["policy"] == "diffusion" and r["rate_hz"] == 50.0]
    for r in goal:
        d = r["dds"]
        ok = d["period_error_ms_p99"] <= 1.0 and d["missed_periods"] == 0
        print(
            f"goal (diffusion, 50 Hz, DDS): p99 period error {d['period_error_ms_p99']:.3f} ms "
            f"<= 1 ms and 0 missed periods (got {d['missed_periods']}): {'met' if ok else 'NOT met'}"
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "load": [load_before, load_after]}))


def fmt(load: tuple[float, ...]) -> str:
    return "/".join(f"{x:.2f}" for x in load)


def print_row(r: dict) -> None:
    b, d = r["baseline"], r["dds"]
    ratio_err = d["period_error_ms_p99"] / max(b["period_error_ms_p99"], 1e-6)
    ratio_lat = d["obs_to_command_ms_p99"] / max(b["compute_ms_p99"], 1e-6)
    print(
        f"{r['policy']:>9} {r['rate_hz']:5.0f} Hz | DDS: period err p50/p99 "
        f"{d['period_error_ms_p50']:.3f}/{d['period_error_ms_p99']:.3f} ms, obs->cmd p50/p99 "
        f"{d['obs_to_command_ms_p50']:.2f}/{d['obs_to_command_ms_p99']:.2f} ms (timer phase "
        f"{d['timer_phase_ms']:.2f} ms; without it p50/p99 "
        f"{d['obs_to_command_minus_phase_ms_p50']:.2f}/"
        f"{d['obs_to_command_minus_phase_ms_p99']:.2f} ms), compute p99 "
        f"{d['compute_ms_p99']:.2f} ms, missed {d['missed_periods']}, starved {d['starved']}, "
        f"ticks {d['ticks']} | in-process: period err p50/p99 "
        f"{b['period_error_ms_p50']:.3f}/{b['period_error_ms_p99']:.3f} ms, compute p99 "
        f"{b['compute_ms_p99']:.2f} ms, missed {b['missed_periods']}, starved {b['starved']} | "
        f"ratio p99 period err {ratio_err:.2f}x, p99 obs->cmd / in-process compute "
        f"{ratio_lat:.1f}x",
        flush=True,
    )


if __name__ == "__main__":
    main()
