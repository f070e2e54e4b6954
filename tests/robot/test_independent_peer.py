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

from robot_rl.robot.sim_node import SimRobot  # noqa: E402 - the robot under test, not the peer

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


@final
@dataclass
class Pt(IdlStruct, typename="geometry_msgs::msg::dds_::Point_"):
    x: float64
    y: float64
    z: float64


@final
@dataclass
class Quat(IdlStruct, typename="geometry_msgs::msg::dds_::Quaternion_"):
    x: float64
    y: float64
    z: float64
    w: float64


@final
@dataclass
class PoseMsg(IdlStruct, typename="geometry_msgs::msg::dds_::Pose_"):
    position: Pt
    orientation: Quat


@final
@dataclass
class PoseSt(IdlStruct, typename="geometry_msgs::msg::dds_::PoseStamped_"):
    header: Hdr
    pose: PoseMsg


@final
@dataclass
class BoolMsg(IdlStruct, typename="std_msgs::msg::dds_::Bool_"):
    data: bool


HOME = [0.0, 0.035, 0.0, -2.42, 0.0, 2.455, 0.785, 0.04, 0.04]
NAMES = [f"robot0_joint{i}" for i in range(1, 8)] + ["robot0_finger_left", "robot0_finger_right"]


def test_peer_drives_and_reads_the_policy_node(bc_policy, spawn) -> None:
    """The peer plays the robot: it publishes joint states (names shuffled, as a driver may)
    and a cube pose, and reads the policy node's joint commands off the wire."""
    dom = DOMAIN + 2
    dp = DomainParticipant(dom)
    be = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(5))
    rel = Qos(Policy.Reliability.Reliable(0), Policy.History.KeepLast(10))
    js_w = DataWriter(dp, Topic(dp, "rt/joint_states", JS), qos=be)
    obj_w = DataWriter(dp, Topic(dp, "rt/object_pose", PoseSt), qos=be)
    cmd_r = DataReader(dp, Topic(dp, "rt/commands", F64Array), qos=rel)
    reset_r = DataReader(dp, Topic(dp, "rt/reset", BoolMsg), qos=rel)  # node asks for a reset
    pol = spawn(
        "robot", "policy", "--policy", str(bc_policy), "--mode", "realtime",
        "--domain-id", str(dom), "--horizon", "100000", "--max-ticks", "200",
    )  # fmt: skip
    order = [8, 3, 0, 1, 2, 4, 5, 6, 7]  # shuffled joint order on the wire
    q = list(HOME)
    received: list[list[float]] = []
    try:
        end = time.monotonic() + 60
        k = 0
        while time.monotonic() < end and len(received) < 60:
            now = time.time()
            hdr = Hdr(Stamp(int(now), int((now % 1) * 1e9)), "world")
            if len(received) == 30:
                q[0] = HOME[0] + 0.3  # someone moved the base joint: commands must follow
            obj_w.write(PoseSt(hdr, PoseMsg(Pt(0.5, 0.02, 0.02), Quat(0.0, 0.0, 0.0, 1.0))))
            js_w.write(JS(hdr, [NAMES[i] for i in order], [q[i] for i in order], [0.0] * 9, []))
            k += 1
            time.sleep(0.02)
            for c in cmd_r.take(N=16):
                if isinstance(c, F64Array):
                    ref = TS.deserialize_cdr(c.serialize(), "std_msgs/msg/Float64MultiArray")
                    assert list(ref.data) == list(c.data)
                    received.append(list(c.data))
    finally:
        pol.kill()
        log, _ = pol.communicate(timeout=30)
    assert len(received) >= 40, f"{len(received)} commands after {k} joint states: {log}"
    assert any(isinstance(r, BoolMsg) and r.data for r in reset_r.take(N=8))
    cmds = np.asarray(received)
    assert cmds.shape[1] == 9 and np.isfinite(cmds).all()
    # commands sit next to the measured posture (controller step + rate limit), in our order
    assert np.abs(cmds[5:25, :7] - np.asarray(HOME[:7])).max() < 0.2
    assert abs(cmds[-1, 0] - (HOME[0] + 0.3)) < 0.15
