"""The rclpy shells' wiring, run against a stand-in for rclpy (``rclpy_standin``: one in-process
bus, a simulated clock, rosbags' message classes). Not a ROS test: it shows that the shells
declare and read their parameters, subscribe and publish the topics their launch files remap,
and drive the same robot_rl cores as the DDS verbs (episodes, resets, e-stop, trajectory output,
teleop), so a node that cannot work fails here before it reaches a ROS machine."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rosbags")

import rclpy_standin as ros  # noqa: E402 - beside this file (pytest puts tests/robot on the path)
from waiting import wait_until  # noqa: E402 - beside this file

PKG = Path(__file__).resolve().parents[2] / "ros_ws" / "src" / "robot_rl_ros"


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - yields the stand-in's bus
    try:
        import rclpy  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - a machine with ROS 2 runs the real thing
        pytest.skip("real rclpy installed")
    b = ros.install(monkeypatch)
    monkeypatch.syspath_prepend(str(PKG))
    for name in [n for n in sys.modules if n.startswith("robot_rl_ros")]:
        monkeypatch.delitem(sys.modules, name)
    yield b
    # the node modules imported here are bound to the stand-in: drop them
    for name in [n for n in sys.modules if n.startswith("robot_rl_ros")]:
        del sys.modules[name]


def test_policy_node_runs_episodes_on_the_sim_robot_node(bus: ros.Bus, bc_policy: Path) -> None:
    from robot_rl_ros.policy_node import PolicyNode
    from robot_rl_ros.sim_robot_node import SimRobotNode

    from robot_rl.robot.envelope import panda_envelope_config

    ros.Node.overrides = {
        "sim_robot_node": {"task": "lift", "seed": 1},
        "policy_node": {"policy": str(bc_policy), "horizon": 8, "episodes": 2},
    }
    sim = SimRobotNode()
    node = PolicyNode()
    with pytest.raises(SystemExit) as done:
        bus.run(10.0)
    assert done.value.code == 0
    node.close()
    cmds = bus.published["/commands"]
    assert len(cmds) == 16, "8 commands per episode, none from the warm-up"
    assert sim.core.resets == 1 and len(bus.published["/reset"]) == 1
    # the sim applied them (one control period each) and reported each outcome
    assert sim.core.steps >= 15 and len(bus.published["/success"]) == sim.core.steps
    cfg = panda_envelope_config(0.05)
    for c in cmds:
        q = np.asarray(c.data)
        assert q.shape == (9,)
        assert np.all(q >= np.asarray(cfg.q_low)) and np.all(q <= np.asarray(cfg.q_high))
    states = bus.published["/joint_states"]
    assert list(states[-1].name)[:2] == ["robot0_joint1", "robot0_joint2"]
    assert any("episode 2" in line for line in node.get_logger().lines)


def test_policy_node_trajectory_output_and_estop(bus: ros.Bus, bc_policy: Path) -> None:
    from robot_rl_ros.policy_node import PolicyNode
    from robot_rl_ros.sim_robot_node import SimRobotNode

    ros.Node.overrides = {
        "sim_robot_node": {"rate_hz": 50.0},
        "policy_node": {"policy": str(bc_policy), "rate_hz": 50.0, "output": "trajectory"},
    }
    sim = SimRobotNode()
    node = PolicyNode()
    bus.run(0.5)
    trajs = bus.published["/joint_trajectory"]
    assert trajs and "/commands" not in bus.published
    first = trajs[0]
    assert [p.time_from_start.nanosec for p in first.points][:1] == [20_000_000]
    assert sim.core.steps > 10, "the sim robot follows the trajectory's first point"
    estop = ros.Publisher("/estop")
    estop.publish(ros_bool(True))
    bus.run(0.3)
    held = [tuple(t.points[0].positions) for t in bus.published["/joint_trajectory"][-5:]]
    assert len(set(held)) == 1, "commands move under e-stop"
    ros.Publisher("/estop").publish(ros_bool(False))
    ros.Publisher("/estop_reset").publish(ros_bool(True))
    bus.run(0.3)
    after = [tuple(t.points[0].positions) for t in bus.published["/joint_trajectory"][-5:]]
    assert len(set(after)) > 1, "still held after the reset"
    node.close()


def ros_bool(value: bool) -> object:
    from robot_rl.robot.convert import bool_msg, rclpy_types

    return bool_msg(rclpy_types(), value)


def test_bad_parameters_exit_2_with_one_line(bus: ros.Bus, capsys: pytest.CaptureFixture) -> None:
    from robot_rl_ros._ros import spin
    from robot_rl_ros.policy_node import PolicyNode
    from robot_rl_ros.sim_robot_node import SimRobotNode

    with pytest.raises(SystemExit) as e:
        spin(PolicyNode)  # no policy parameter
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "policy" in err
    ros.Node.overrides = {"sim_robot_node": {"mode": "fast"}}
    with pytest.raises(SystemExit) as e:
        spin(SimRobotNode)
    assert e.value.code == 2


def test_teleop_node_moves_the_sim_robot_along_the_twist(bus: ros.Bus) -> None:
    from robot_rl_ros.sim_robot_node import SimRobotNode
    from robot_rl_ros.teleop_node import TeleopNode

    from robot_rl.robot.kinematics import ArmKinematics

    ros.Node.remaps = {"teleop_node": {"twist": "/spacenav/twist"}}
    ros.Node.overrides = {"teleop_node": {"linear_scale": 0.5}}
    sim = SimRobotNode()
    TeleopNode()
    kin = ArmKinematics()
    start = kin.tool_pos(sim.core.env.joint_pos.double().numpy())[0]
    twist_cls = sys.modules["geometry_msgs.msg"].Twist
    vec = sys.modules["geometry_msgs.msg"].Vector3
    operator = ros.Node("operator")
    pub = operator.create_publisher(twist_cls, "/spacenav/twist", None)
    operator.create_timer(
        0.02,
        lambda: pub.publish(
            twist_cls(linear=vec(x=0.2, y=0.0, z=0.0), angular=vec(x=0.0, y=0.0, z=0.0))
        ),
    )
    bus.run(1.0)
    moved = kin.tool_pos(sim.core.env.joint_pos.double().numpy())[0] - start
    # 0.5 * 0.2 m/s for about a second, less the damped IK's lag and the start-up periods
    assert 0.05 < moved[0] < 0.11 and abs(moved[1]) < 0.01 and abs(moved[2]) < 0.01
    actions = bus.published["/action"]
    assert np.asarray(actions[-1].data).tolist() == pytest.approx([0.1 * 0.05 / 0.03, 0, 0, -1])
    assert all(m.data for m in bus.published["/intervention"])


def test_actor_node_streams_flagged_transitions_and_swaps_weights_between_episodes(
    bus: ros.Bus, bc_policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rclpy actor shell over the stand-in bus, its learner link over real Cyclone DDS
    (loopback) to a real :class:`LearnerLink` in this process: every closed step arrives with
    consecutive ids, the steps a human drove are flagged, and signed weights published
    mid-episode are swapped in only at the episode's end."""
    import os

    import torch

    from robot_rl.robot import link

    key = b"actor-node-test-key-0123"
    domain = 40 + (os.getpid() + 131) % 150
    monkeypatch.setenv(link.KEY_ENV, key.decode())
    from robot_rl_ros.actor_node import ActorNode
    from robot_rl_ros.sim_robot_node import SimRobotNode

    stored: list = []
    learner = link.LearnerLink(key, lambda a, r: stored.append((a, r)), domain_id=domain)
    ros.Node.overrides = {
        "sim_robot_node": {"task": "lift", "seed": 1},
        "actor_node": {"policy": str(bc_policy), "horizon": 8, "episodes": 3,
                       "link_domain_id": domain, "actor_name": "arm1", "drain_s": 5.0},
    }  # fmt: skip
    node = None
    try:
        SimRobotNode()
        node = ActorNode()
        actor = node.actor
        assert wait_until(lambda: actor.link.learner.alive and learner.actors, 10)
        # a human drives from the start of episode 2 (the stand-in bus is simulated time;
        # the teleop action's freshness is checked in real time, so it is re-sent each period)
        teleop = ros.Node("teleop")
        act_cls = sys.modules["std_msgs.msg"].Float64MultiArray
        act_pub = teleop.create_publisher(act_cls, "/teleop_action", None)
        flag_pub = teleop.create_publisher(sys.modules["std_msgs.msg"].Bool, "/intervention", None)
        human = np.array([0.3, 0.0, 0.0, -1.0])
        bus.run(0.45)  # warm-up and part of episode 1
        assert node.done == 0 and actor.stream.pushed > 0
        new = {k: v + 0.01 for k, v in actor.core.rt.policy.state_dict().items()}
        learner.publish_weights(7, new)
        assert wait_until(lambda: actor.link._pending is not None, 10), actor.link.rejected
        assert actor.core.weights_version == -1, "swapped mid-episode"
        while node.done < 1:
            bus.run(0.05)
        assert actor.core.weights_version == 7, "not swapped at the episode end"
        got = actor.core.rt.policy.state_dict()
        assert all(torch.equal(got[k], new[k]) for k in new)
        flag_pub.publish(ros_bool(True))
        teleop.create_timer(0.05, lambda: act_pub.publish(act_cls(layout=_layout(), data=human)))
        with pytest.raises(SystemExit):
            while True:
                bus.run(0.05)
        sent = actor.stream.pushed
        node.close()  # drains: the learner has every row before close returns
        rows = {k: np.concatenate([r[k] for a, r in stored]) for k in stored[0][1]}
        assert {a for a, _ in stored} == {"arm1"}
        assert sent == 24 and rows["seq"].tolist() == list(range(sent))
        ep = rows["episode"]
        assert rows["intervention"][ep == 0].sum() == 0
        assert rows["intervention"][ep == 2].all(), "human steps not flagged"
        np.testing.assert_allclose(rows["action"][ep == 2], np.tile(human, (8, 1)), atol=1e-6)
        node = None
    finally:
        if node is not None:
            node.close()
        learner.close()


def _layout() -> object:
    return sys.modules["std_msgs.msg"].MultiArrayLayout(dim=[], data_offset=0)
