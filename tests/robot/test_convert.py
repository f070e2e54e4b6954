"""The shared message builders: the same call gives byte-identical CDR whether it builds rosbags'
classes (serialized by rosbags) or this package's Cyclone DDS structs (serialized by cyclonedds),
and the readers get the values back from either flavour."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("cyclonedds")
rosbags_typesys = pytest.importorskip("rosbags.typesys")

from robot_rl.errors import RobotRLError  # noqa: E402
from robot_rl.robot import convert as c  # noqa: E402
from robot_rl.robot.policy_node import PolicyNodeCore  # noqa: E402

TS = rosbags_typesys.get_typestore(rosbags_typesys.Stores.ROS2_HUMBLE)
RB = c.rosbags_types()
DDS = c.cyclonedds_types()
NAMES = [f"robot0_joint{i}" for i in range(1, 8)] + ["robot0_finger_left", "robot0_finger_right"]
Q = [0.1, -0.5, 0.0, -2.2, 0.05, 1.9, 0.8, 0.04, 0.04]


def rosbags_cdr(msg: object) -> bytes:
    return bytes(TS.serialize_cdr(msg, type(msg).__msgtype__))


def dds_cdr(msg: object) -> bytes:
    return bytes(msg.serialize())


BUILDERS = {
    "bool": lambda t: c.bool_msg(t, True),
    "time": lambda t: c.time_msg(t, 1_700_000_000.123456789),
    "time_carry": lambda t: c.time_msg(t, 5.9999999999),
    "duration": lambda t: c.duration_msg(t, 0.05),
    "command": lambda t: c.command_msg(t, Q),
    "command_empty": lambda t: c.command_msg(t, []),
    "trajectory": lambda t: c.trajectory_msg(
        t, NAMES, Q, np.array([Q, [v + 0.01 for v in Q]]), 0.02, 12.5
    ),
    "trajectory_single": lambda t: c.trajectory_msg(t, NAMES, Q, None, 0.05, 3.0),
    "joint_state": lambda t: c.joint_state_msg(t, 100.25, NAMES, Q, [0.0] * 9),
    "object_pose": lambda t: c.pose_stamped_msg(t, 7.5, [0.5, 0.1, 0.02, 0.9, 0.0, 0.1, 0.4]),
    "goal": lambda t: c.pose_stamped_msg(t, 7.5, [0.6, -0.1, 0.2], frame_id="panda_link0"),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_builders_are_byte_identical_across_flavours(name: str) -> None:
    build = BUILDERS[name]
    rb, dds = build(RB), build(DDS)
    assert type(rb).__msgtype__ == c.ROS_TYPE_NAMES[type(dds).__name__]
    assert rosbags_cdr(rb) == dds_cdr(dds)


def test_trajectory_points_are_timed_from_the_control_period() -> None:
    pts = np.array([[float(i)] * 9 for i in range(3)])
    msg = c.trajectory_msg(RB, NAMES, Q, pts, 0.02, 12.5)
    times = [c.stamp_seconds(p.time_from_start) for p in msg.points]
    assert times == pytest.approx([0.02, 0.04, 0.06, 0.08])
    assert list(msg.points[0].positions) == Q
    assert [list(p.positions) for p in msg.points[1:]] == pts.tolist()
    assert list(msg.joint_names) == NAMES and c.stamp_seconds(msg.header.stamp) == 12.5
    # the sim robot (and a joint_trajectory_controller) executes the first point next
    back = TS.deserialize_cdr(rosbags_cdr(msg), msg.__msgtype__)
    assert c.targets_from_trajectory(back) == Q


def test_time_rounding_never_overflows_nanoseconds() -> None:
    for s in (0.0, 1.5, 5.9999999999, 1_700_000_000.999999999, -0.25):
        t = c.time_msg(RB, s)
        assert 0 <= t.nanosec < 1_000_000_000
        assert c.stamp_seconds(t) == pytest.approx(s, abs=1e-9)
    with pytest.raises(RobotRLError, match="duration"):
        c.duration_msg(RB, -0.1)
    with pytest.raises(RobotRLError, match="duration"):
        c.duration_msg(RB, math.nan)


def test_readers_take_any_flavour() -> None:
    for t in (RB, DDS):
        assert c.targets_from_command(c.command_msg(t, Q)) == Q
        pose = c.pose_stamped_msg(t, 1.0, [0.5, 0.1, 0.02, 0.9, 0.0, 0.1, 0.4])
        assert c.pose_array(pose).tolist() == [0.5, 0.1, 0.02, 0.9, 0.0, 0.1, 0.4]
        goal = c.pose_stamped_msg(t, 1.0, [0.6, -0.1, 0.2])
        assert c.pose_array(goal).tolist() == [0.6, -0.1, 0.2, 1.0, 0.0, 0.0, 0.0]
        empty = c.trajectory_msg(t, NAMES, Q, None, 0.05, 0.0)
        empty.points = []
        assert c.targets_from_trajectory(empty) is None
    offset = RB.Float64MultiArray(
        layout=RB.MultiArrayLayout(dim=[], data_offset=2), data=RB.floats([9.0, 9.0, 1.0, 2.0])
    )
    assert c.targets_from_command(offset) == [1.0, 2.0]
    with pytest.raises(RobotRLError, match="3 or 7"):
        c.pose_stamped_msg(RB, 0.0, [1.0, 2.0])


def test_policy_core_reads_rosbags_joint_states_by_name(bc_policy) -> None:
    """A JointState from a real driver (rosbags' class, joints in another order, extra joints)
    feeds the policy node's core exactly as the DDS one does."""
    from robot_rl.robot.runtime import PolicyRuntime

    with PolicyRuntime(bc_policy, async_inference=False) as rt:
        core = PolicyNodeCore(rt)
        order = [8, 0, 3, 1, 2, 4, 5, 6, 7]
        names = [NAMES[i] for i in order] + ["extra_joint"]
        pos = [Q[i] for i in order] + [9.0]
        msg = c.joint_state_msg(RB, 5.0, names, pos, [0.1 * i for i in range(10)])
        back = TS.deserialize_cdr(rosbags_cdr(msg), msg.__msgtype__)
        assert core.on_joint_state(back)
        assert core.q.tolist() == Q
        assert core.qd.tolist() == pytest.approx([0.1 * order.index(i) for i in range(9)])
        assert not core.on_joint_state(back), "an old joint state is taken again"
        core.on_object_pose(c.pose_stamped_msg(RB, 5.0, [0.5, 0.1, 0.02, 1.0, 0.0, 0.0, 0.0]))
        obs = core.observation()
        assert obs["object"][:3].tolist() == pytest.approx([0.5, 0.1, 0.02])
        # warm-up runs the policy once, commands nothing, and leaves the episode to the next tick
        assert core.warmup() and core.q is None and rt.stats.steps == 0
        assert core.tick(5.01) is None, "a command from the warm-up's joint state"
        core.on_object_pose(c.pose_stamped_msg(RB, 5.05, [0.5, 0.1, 0.02, 1.0, 0.0, 0.0, 0.0]))
        assert core.on_joint_state(c.joint_state_msg(RB, 5.05, names, pos, [0.0] * 10))
        out = core.tick(5.06)
        assert out is not None and out.command.shape == (9,) and rt.stats.steps == 1
        np.testing.assert_allclose(out.command, Q, atol=0.2)  # one rate-limited step from Q
        assert not core.warmup(), "warm-up in the middle of an episode"


def test_policy_core_reports_the_episode_success_it_ended_on(bc_policy) -> None:
    """The success report that ends an episode is the outcome the transport sees (and counts)."""
    from robot_rl.robot.runtime import PolicyRuntime

    with PolicyRuntime(bc_policy, async_inference=False) as rt:
        core = PolicyNodeCore(rt, horizon=5)
        pose = [0.5, 0.1, 0.02, 1.0, 0.0, 0.0, 0.0]
        outcomes = []
        t = 1.0
        for episode_succeeds in (True, False):
            steps = 0
            while True:
                t += 0.05
                core.on_object_pose(c.pose_stamped_msg(RB, t, pose))
                core.on_joint_state(c.joint_state_msg(RB, t, NAMES, Q, [0.0] * 9))
                if episode_succeeds and steps == 2:
                    core.on_success(RB.Bool(data=True))
                out = core.tick(t + 0.001)
                if out.episode_end:
                    outcomes.append((out.success, steps))
                    break
                steps += 1
        # success reported after the 2nd command ends the episode there; the other runs on to
        # the horizon
        assert outcomes == [(True, 2), (False, 5)]


def test_policy_core_pairs_the_object_pose_with_the_joint_state_by_stamp(bc_policy) -> None:
    """Poses and joint states come on separate topics in either order: the observation uses
    the pose stamped with the joint state, not whichever arrived last."""
    from robot_rl.robot.runtime import PolicyRuntime

    names, pos = NAMES, Q
    p1, p2, p3 = ([x, 0.1, 0.02, 1.0, 0.0, 0.0, 0.0] for x in (0.41, 0.42, 0.43))
    with PolicyRuntime(bc_policy, async_inference=False) as rt:
        core = PolicyNodeCore(rt)
        core.on_object_pose(c.pose_stamped_msg(RB, 1.0, p1))
        core.on_object_pose(c.pose_stamped_msg(RB, 2.0, p2))
        assert core.on_joint_state(c.joint_state_msg(RB, 1.0, names, pos, [0.0] * 9))
        assert core.observation()["object"][0] == pytest.approx(0.41)  # not the newer 0.42
        assert core.on_joint_state(c.joint_state_msg(RB, 2.0, names, pos, [0.0] * 9))
        assert core.observation()["object"][0] == pytest.approx(0.42)
        # the joint state first, its pose just after
        assert core.on_joint_state(c.joint_state_msg(RB, 3.0, names, pos, [0.0] * 9))
        core.on_object_pose(c.pose_stamped_msg(RB, 3.0, p3))
        assert core.observation()["object"][0] == pytest.approx(0.43)
