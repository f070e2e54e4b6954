"""The policy node end to end over real Cyclone DDS on loopback: sim robot node and policy node
in separate processes; e-stop over the wire; JointTrajectory output."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cyclonedds")

from robot_rl.robot import dds  # noqa: E402
from robot_rl.robot import msgs as m  # noqa: E402
from robot_rl.robot.envelope import panda_envelope_config  # noqa: E402
from robot_rl.robot.kinematics import ArmKinematics  # noqa: E402
from robot_rl.robot.sim_node import SimRobot  # noqa: E402

DOMAIN = 40 + (os.getpid() + 23) % 150


def test_sim_node_and_policy_node_processes_run_episodes(
    bc_policy: Path, tmp_path: Path, spawn
) -> None:
    dom = str(DOMAIN)
    sim_p = spawn("robot", "sim", "--mode", "lockstep", "--domain-id", dom, "--idle-timeout-s", "3")
    stats = tmp_path / "stats.json"
    pol_p = spawn(
        "robot", "policy", "--policy", str(bc_policy), "--mode", "lockstep", "--domain-id", dom,
        "--episodes", "3", "--horizon", "12", "--stats", str(stats),
    )  # fmt: skip
    try:
        out, _ = pol_p.communicate(timeout=120)
        assert pol_p.returncode == 0, out
    finally:
        pol_p.kill()
        sim_out, _ = sim_p.communicate(timeout=30)
    assert sim_p.returncode == 0, sim_out
    got = json.loads(stats.read_text())
    s = got["summary"]
    assert s["episodes"] == 3
    # 12 steps per episode unless it succeeded earlier
    assert 3 <= s["ticks"] <= 36 and len(got["obs_to_command_s"]) == s["ticks"]
    assert got["runtime"]["runtime_starved"] == 0


def test_policy_node_realtime_trajectory_output_and_estop(bc_policy: Path, spawn) -> None:
    """Policy node (separate process, real-time timer, JointTrajectory out) against the sim robot
    in real time here; then e-stop over the wire holds the command until reset."""
    dom = DOMAIN + 1
    robot = SimRobot("lift", seed=2, domain_id=dom)
    peer = dds.Node(dom)
    estop_w = peer.writer("/estop", m.Bool)
    reset_w = peer.writer("/estop_reset", m.Bool)
    traj_r = peer.reader("/joint_trajectory", m.JointTrajectory)
    pol_p = spawn(
        "robot", "policy", "--policy", str(bc_policy), "--mode", "realtime", "--domain-id", str(dom),
        "--output", "trajectory", "--horizon", "1000", "--max-ticks", "150",
    )  # fmt: skip
    t = threading.Thread(target=robot.spin_realtime, args=(20.0, 400, 3.0), daemon=True)
    t.start()
    try:
        first = traj_r.wait_take(time.monotonic() + 60)
        assert first is not None, "no trajectory from the policy node"
        assert list(first.joint_names)[0] == "robot0_joint1"
        assert len(first.points) >= 1 and len(first.points[0].positions) == 9
        times = [m.seconds(p.time_from_start) for p in first.points]
        assert times[0] == pytest.approx(0.05) and times == sorted(times)
        cfg = panda_envelope_config(0.05)
        for p in first.points:
            assert np.all(np.asarray(p.positions) >= np.asarray(cfg.q_low) - 1e-12)
            assert np.all(np.asarray(p.positions) <= np.asarray(cfg.q_high) + 1e-12)
        assert dds.wait_matched(estop_w)
        estop_w.write(m.Bool(True))
        time.sleep(0.3)
        traj_r.take_all()
        held = [traj_r.wait_take(time.monotonic() + 2) for _ in range(5)]
        pts = [tuple(h.points[0].positions) for h in held if h is not None]
        assert len(pts) >= 4 and len(set(pts)) == 1, "commands move under e-stop"
        estop_w.write(m.Bool(False))
        time.sleep(0.3)
        traj_r.take_all()
        still = traj_r.wait_take(time.monotonic() + 2)
        assert still is not None and tuple(still.points[0].positions) == pts[0]
        reset_w.write(m.Bool(True))
        time.sleep(0.5)
        moved = [traj_r.wait_take(time.monotonic() + 2) for _ in range(5)]
        assert any(x is not None and tuple(x.points[0].positions) != pts[0] for x in moved)
    finally:
        pol_p.kill()
        pol_p.communicate(timeout=30)
        t.join(10)
    # the robot followed the first points: its joints stay within the envelope's box
    kin = ArmKinematics()
    p = kin.tool_pos(robot.env.joint_pos.double().numpy())[0]
    assert np.all(p > np.array([0.2, -0.4, -0.03]))
