"""An independent peer (own cyclonedds structs, rosbags as the byte reference, none of the
project's msgs) drives the sim robot node and reads its joint states.

No ``from __future__ import annotations``: this module defines cyclonedds IDL structs.
"""

import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

pytest.importorskip("cyclonedds")
typesys = pytest.importorskip("rosbags.typesys")

from cyclonedds.core import Policy, Qos  # noqa: E402
from cyclonedds.domain import DomainParticipant  # noqa: E402
from cyclonedds.idl import IdlStruct  # noqa: E402
from cyclonedds.idl.annotations import final  # noqa: E402
from cyclonedds.idl.types import float64, int32, sequence, uint32  # noqa: E402
from cyclonedds.pub import DataWriter  # noqa: E402
from cyclonedds.sub import DataReader  # noqa: E402
from cyclonedds.topic import Topic  # noqa: E402

from robot_rl.robot.sim_node import SimRobot  # noqa: E402

TS = typesys.get_typestore(typesys.Stores.ROS2_HUMBLE)
DOMAIN = 40 + (os.getpid() + 13) % 150


@final
@dataclass
class Dim(IdlStruct, typename="std_msgs::msg::dds_::MultiArrayDimension_"):
    label: str
    size: uint32
    stride: uint32


@final
@dataclass
class Layout(IdlStruct, typename="std_msgs::msg::dds_::MultiArrayLayout_"):
    dim: sequence[Dim]
    data_offset: uint32


@final
@dataclass
class F64Array(IdlStruct, typename="std_msgs::msg::dds_::Float64MultiArray_"):
    layout: Layout
    data: sequence[float64]


@final
@dataclass
class Stamp(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: int32
    nanosec: uint32


@final
@dataclass
class Hdr(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Stamp
    frame_id: str


@final
@dataclass
class JS(IdlStruct, typename="sensor_msgs::msg::dds_::JointState_"):
    header: Hdr
    name: sequence[str] = field(default_factory=list)
    position: sequence[float64] = field(default_factory=list)
    velocity: sequence[float64] = field(default_factory=list)
    effort: sequence[float64] = field(default_factory=list)


def test_peer_drives_sim_robot() -> None:
    robot = SimRobot("lift", seed=1, domain_id=DOMAIN)
    dp = DomainParticipant(DOMAIN)
    rel = Qos(Policy.Reliability.Reliable(0), Policy.History.KeepLast(10))
    be = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(5))
    w = DataWriter(dp, Topic(dp, "rt/commands", F64Array), qos=rel)
    r = DataReader(dp, Topic(dp, "rt/joint_states", JS), qos=be)
    end = time.monotonic() + 5
    while not w.get_matched_subscriptions() and time.monotonic() < end:
        time.sleep(0.01)
    t = threading.Thread(target=robot.spin_lockstep, args=(30, 3.0), daemon=True)
    t.start()

    def latest() -> JS:
        end = time.monotonic() + 3
        while time.monotonic() < end:
            got = [s for s in r.take(N=16) if isinstance(s, JS)]
            if got:
                return got[-1]
            time.sleep(0.001)
        raise AssertionError("no joint state")

    js = latest()
    target = list(js.position)
    target[1] -= 0.2
    for _ in range(30):
        cmd = F64Array(Layout([], 0), target)
        ref = TS.types["std_msgs/msg/Float64MultiArray"](
            layout=TS.types["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0),
            data=np.asarray(target),
        )
        assert cmd.serialize() == bytes(TS.serialize_cdr(ref, "std_msgs/msg/Float64MultiArray"))
        w.write(cmd)
        js = latest()
    t.join(5)
    assert robot.steps == 30
    assert abs(js.position[1] - target[1]) < 0.02
