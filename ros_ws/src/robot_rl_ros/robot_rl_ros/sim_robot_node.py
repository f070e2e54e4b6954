"""rclpy sim robot node: a built-in task exposed as a robot on standard topics.

A shell around :class:`robot_rl.robot.sim_node.SimRobotCore` (the same core as the
``robot-rl robot sim`` verb over Cyclone DDS); this file declares parameters, sets QoS, runs the
timer and converts messages with :mod:`robot_rl.robot.convert`.

Topics (relative; remap in the launch file):
  out: joint_states (sensor_msgs/JointState, best effort), object_pose, goal_pose
       (geometry_msgs/PoseStamped, best effort, when the task has them), success (std_msgs/Bool)
  in:  commands (std_msgs/Float64MultiArray: 9 joint position targets, forward_command_controller
       layout), joint_trajectory (trajectory_msgs/JointTrajectory: its first point is the next
       target), reset (std_msgs/Bool)
"""

from __future__ import annotations

from typing import Any

from robot_rl_ros._ros import declare, qos, require_rclpy, spin
from robot_rl_ros.params import SIM_ROBOT_NODE

rclpy = require_rclpy()

from rclpy.node import Node  # noqa: E402

from robot_rl.errors import RobotRLError  # noqa: E402
from robot_rl.robot import convert  # noqa: E402


class SimRobotNode(Node):
    def __init__(self) -> None:
        super().__init__("sim_robot_node")
        p = declare(self, SIM_ROBOT_NODE)
        from robot_rl.robot.sim_node import SimRobotCore

        if p["mode"] not in ("realtime", "lockstep") or float(p["rate_hz"]) <= 0:
            raise RobotRLError("sim_robot_node: mode is realtime|lockstep and rate_hz > 0")
        self.core = SimRobotCore(p["task"], int(p["seed"]))
        self.types = t = convert.rclpy_types()
        self.frame = p["frame_id"]
        self.lockstep = p["mode"] == "lockstep"
        period = 1.0 / float(p["rate_hz"])
        self.nsteps = None if self.lockstep else max(1, round(period / self.core.timestep))
        self.hold: list[float] | None = None
        sensor, reliable = qos()
        self.js_pub = self.create_publisher(t.JointState, "joint_states", sensor)
        self.obj_pub = self.create_publisher(t.PoseStamped, "object_pose", sensor)
        self.goal_pub = self.create_publisher(t.PoseStamped, "goal_pose", sensor)
        self.succ_pub = self.create_publisher(t.Bool, "success", reliable)
        self.create_subscription(t.Float64MultiArray, "commands", self.on_command, reliable)
        self.create_subscription(
            t.JointTrajectory, "joint_trajectory", self.on_trajectory, reliable
        )
        self.create_subscription(t.Bool, "reset", self.on_reset, reliable)
        # lockstep: state is re-published slowly in case it was lost (best effort)
        self.timer = self.create_timer(0.5 if self.lockstep else period, self.tick)
        self.publish_state()

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def publish_state(self) -> None:
        s, now, t = self.core.state(), self.now(), self.types
        if s.object_pose is not None:
            self.obj_pub.publish(convert.pose_stamped_msg(t, now, s.object_pose, self.frame))
        if s.goal is not None:
            self.goal_pub.publish(convert.pose_stamped_msg(t, now, s.goal, self.frame))
        self.js_pub.publish(
            convert.joint_state_msg(t, now, s.names, s.position, s.velocity, self.frame)
        )

    def step(self, targets: list[float]) -> None:
        ok = self.core.apply(targets, self.nsteps)
        if ok is None:
            self.get_logger().warn("rejected a command (needs 9 finite targets)")
            return
        self.succ_pub.publish(convert.bool_msg(self.types, ok))

    def on_command(self, msg: Any) -> None:
        self.take(convert.targets_from_command(msg))

    def on_trajectory(self, msg: Any) -> None:
        self.take(convert.targets_from_trajectory(msg))

    def take(self, targets: list[float] | None) -> None:
        if targets is None:
            return
        if self.lockstep:
            self.step(targets)
            self.publish_state()
        else:
            self.hold = targets

    def on_reset(self, msg: Any) -> None:
        if msg.data:
            self.core.reset()
            self.hold = None
            self.publish_state()

    def tick(self) -> None:
        if not self.lockstep and self.hold is not None:
            self.step(self.hold)
        self.publish_state()


def main(args: list[str] | None = None) -> None:
    spin(SimRobotNode, args)


if __name__ == "__main__":
    main()
