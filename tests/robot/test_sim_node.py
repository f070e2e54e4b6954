"""Sim robot node in lockstep, driven over real Cyclone DDS by a separate participant."""

from __future__ import annotations

import os
import threading
import time

import pytest

pytest.importorskip("cyclonedds")

from robot_rl.robot import dds  # noqa: E402
from robot_rl.robot import msgs as m  # noqa: E402
from robot_rl.robot.sim_node import SimRobot  # noqa: E402

DOMAIN = 40 + (os.getpid() + 7) % 150


def test_lockstep_joint_commands_move_the_sim_robot() -> None:
    robot = SimRobot("lift", seed=3, domain_id=DOMAIN)
    peer = dds.Node(DOMAIN)
    cmd_w = peer.writer("/commands", m.Float64MultiArray)
    js_r = peer.reader("/joint_states", m.JointState, dds.SENSOR)
    obj_r = peer.reader("/object_pose", m.PoseStamped, dds.SENSOR)
    assert dds.wait_matched(cmd_w)
    assert dds.wait_matched(robot.js_w)
    n = 40
    t = threading.Thread(target=robot.spin_lockstep, args=(n, 3.0), daemon=True)
    t.start()
    js = js_r.wait_take(time.monotonic() + 5.0)
    assert js is not None and js.name[0] == "robot0_joint1" and len(js.position) == 9
    target = list(js.position)
    target[0] += 0.3  # rotate the base joint by 0.3 rad
    target[7:] = [0.0, 0.0]  # close the fingers
    for _ in range(n):
        cmd_w.write(m.Float64MultiArray(data=target))
        got = js_r.wait_take(time.monotonic() + 3.0)
        assert got is not None
        js = got
    t.join(5.0)
    assert robot.steps == n
    assert abs(js.position[0] - target[0]) < 0.02
    assert js.position[7] < 0.01
    # the object pose on the wire is the simulator's cube pose
    pose = obj_r.take_latest()
    assert pose is not None
    cube = robot.env.cube_pos[0].tolist()
    assert [pose.pose.position.x, pose.pose.position.y, pose.pose.position.z] == pytest.approx(cube)


def test_robot_cli_rejects_unknown_verb_and_runs_sim_node() -> None:
    from robot_rl.cli import main

    assert main(["robot", "bogus"]) == 2
    assert main(["robot", "sim", "--domain-id", str(DOMAIN), "--idle-timeout-s", "0.2"]) == 0
