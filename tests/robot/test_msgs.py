"""Every message type is byte-identical to rosbags' CDR (ROS 2 Humble), both directions."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

pytest.importorskip("cyclonedds")
rosbags_typesys = pytest.importorskip("rosbags.typesys")

from robot_rl.robot import msgs as m  # noqa: E402

TS = rosbags_typesys.get_typestore(rosbags_typesys.Stores.ROS2_HUMBLE)


def ros_name(struct: object) -> str:
    """``pkg::msg::dds_::T_`` -> ``pkg/msg/T`` (independent of the module's own table)."""
    pkg, _, _, t = type(struct).__idl_typename__.split("::")
    return f"{pkg}/msg/{t[:-1]}"


def to_rosbags(struct: object) -> object:
    """The same message built from rosbags' own classes."""
    cls = TS.types[ros_name(struct)]
    kwargs = {}
    for f in dataclasses.fields(struct):
        v = getattr(struct, f.name)
        if dataclasses.is_dataclass(v):
            v = to_rosbags(v)
        elif isinstance(v, list) and v and dataclasses.is_dataclass(v[0]):
            v = [to_rosbags(x) for x in v]
        elif isinstance(v, list) and (not v or isinstance(v[0], float)) and "name" not in f.name:
            v = np.asarray(v, dtype=np.float64)
        kwargs[f.name] = v
    return cls(**kwargs)


def hdr(sec: int, ns: int, frame: str) -> m.Header:
    return m.Header(stamp=m.Time(sec=sec, nanosec=ns), frame_id=frame)


CASES = [
    m.Time(sec=0, nanosec=0),
    m.Time(sec=-5, nanosec=999_999_999),
    m.Duration(sec=2, nanosec=500_000_000),
    hdr(1, 2, ""),
    hdr(1_700_000_000, 123, "panda_link0"),
    m.Bool(data=True),
    m.Bool(data=False),
    m.MultiArrayDimension(label="joints", size=8, stride=8),
    m.MultiArrayLayout(),
    m.MultiArrayLayout(dim=[m.MultiArrayDimension("a", 2, 6), m.MultiArrayDimension("bb", 3, 3)]),
    m.Float64MultiArray(),
    m.Float64MultiArray(data=[0.1, -2.5, math.pi, 1e300, -0.0, 7.0, 8.0, 0.04]),
    m.Float64MultiArray(
        layout=m.MultiArrayLayout(dim=[m.MultiArrayDimension("x", 1, 1)], data_offset=3),
        data=[1.0],
    ),
    m.JointState(),
    m.JointState(
        header=hdr(3, 5, "a"),
        name=[f"panda_joint{i}" for i in range(1, 8)],
        position=[0.1 * i for i in range(7)],
        velocity=[-0.01 * i for i in range(7)],
        effort=[],
    ),
    m.JointState(header=hdr(0, 1, "odd"), name=["j"], position=[1.5], velocity=[2.5], effort=[3.5]),
    m.JointTrajectoryPoint(),
    m.JointTrajectoryPoint(
        positions=[1.0, 2.0], velocities=[0.5], time_from_start=m.Duration(0, 50_000_000)
    ),
    m.JointTrajectory(),
    m.JointTrajectory(
        header=hdr(9, 9, "base"),
        joint_names=["a", "bcd", "efgh"],
        points=[
            m.JointTrajectoryPoint(
                positions=[0.0, 1.0, 2.0], time_from_start=m.Duration(0, k * 50_000_000)
            )
            for k in range(1, 4)
        ],
    ),
    m.Point(1.0, -2.0, 3.5),
    m.Quaternion(0.0, 0.0, math.sin(0.3), math.cos(0.3)),
    m.Pose(),
    m.PoseStamped(),
    m.PoseStamped(
        header=hdr(4, 4, "world"),
        pose=m.Pose(m.Point(0.5, 0.1, 0.02), m.Quaternion(0.1, 0.2, 0.3, 0.9)),
    ),
]


def test_every_type_is_covered() -> None:
    covered = {ros_name(c) for c in CASES}
    assert covered == set(m.ROS_TYPES)
    for name, cls in m.ROS_TYPES.items():
        assert name in TS.types, name
        assert ros_name(cls()) == name


@pytest.mark.parametrize("msg", CASES, ids=lambda c: type(c).__name__)
def test_bytes_match_rosbags(msg: object) -> None:
    ref = bytes(TS.serialize_cdr(to_rosbags(msg), ros_name(msg)))
    ours = msg.serialize()
    assert ours == ref
    # rosbags' bytes read back by cyclonedds give the original message
    assert type(msg).deserialize(ref) == msg
    # and ours read back by rosbags give rosbags' message
    back = TS.deserialize_cdr(ours, ros_name(msg))
    assert bytes(TS.serialize_cdr(back, ros_name(msg))) == ref


def test_stamp_roundtrip() -> None:
    t = m.stamp(12.25)
    assert (t.sec, t.nanosec) == (12, 250_000_000)
    assert m.seconds(t) == 12.25
