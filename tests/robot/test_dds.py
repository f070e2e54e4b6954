"""The DDS transport over real Cyclone DDS on loopback, separate participants."""

from __future__ import annotations

import os
import time

import pytest

pytest.importorskip("cyclonedds")

from robot_rl.errors import RobotRLError  # noqa: E402
from robot_rl.robot import dds  # noqa: E402
from robot_rl.robot import msgs as m  # noqa: E402

DOMAIN = 40 + os.getpid() % 150


def test_ros_naming() -> None:
    assert dds.dds_topic_name("/joint_states") == "rt/joint_states"
    assert dds.dds_topic_name("/ctrl/commands") == "rt/ctrl/commands"
    for bad in ("joint_states", "/a/", "/a//b"):
        with pytest.raises(RobotRLError):
            dds.dds_topic_name(bad)
    with pytest.raises(RobotRLError, match="profile"):
        dds.make_qos("fast")


def test_two_participants_exchange_reliably() -> None:
    a, b = dds.Node(DOMAIN), dds.Node(DOMAIN)
    w = a.writer("/cmd", m.Float64MultiArray)
    r = b.reader("/cmd", m.Float64MultiArray)
    assert dds.wait_matched(w)
    got: list[list[float]] = []
    for i in range(30):
        w.write(m.Float64MultiArray(data=[float(i), 0.5]))
        s = r.wait_take(time.monotonic() + 1.0)
        assert s is not None
        got.append(s.data)
    assert got == [[float(i), 0.5] for i in range(30)]
    # nothing waiting: the deadline is honoured
    t0 = time.monotonic()
    assert r.wait_take(t0 + 0.05) is None
    assert 0.04 <= time.monotonic() - t0 < 0.5
