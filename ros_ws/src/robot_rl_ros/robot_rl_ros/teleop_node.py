"""rclpy teleop node: an operator's tool velocity drives the arm through the policies' own action
space, for collecting demonstrations.

A shell around :class:`robot_rl.robot.teleop.TeleopCore`: ``twist`` (geometry_msgs/Twist, e.g.
``spacenav_node``'s ``spacenav/twist`` or ``teleop_twist_keyboard``'s ``cmd_vel``) and
``gripper`` (std_msgs/Bool: true closes) become an ``ee_delta`` action, published on ``action``
(std_msgs/Float64MultiArray, what a demonstration records) and, through the simulator's
controller and the safety envelope, joint targets on ``commands`` (forward_command_controller
layout). ``intervention`` (std_msgs/Bool) is true on every tick. ``estop``/``estop_reset`` as on
the policy node.
"""

from __future__ import annotations

from typing import Any

from robot_rl_ros._ros import declare, envelope_config, qos, require_rclpy, spin
from robot_rl_ros.params import TELEOP_NODE

rclpy = require_rclpy()

from geometry_msgs.msg import Twist  # noqa: E402
from rclpy.node import Node  # noqa: E402

from robot_rl.errors import RobotRLError  # noqa: E402
from robot_rl.robot import convert  # noqa: E402


class TeleopNode(Node):
    def __init__(self) -> None:
        super().__init__("teleop_node")
        p = declare(self, TELEOP_NODE)
        from robot_rl.robot.teleop import TeleopCore

        rate = float(p["rate_hz"])
        if rate <= 0:
            raise RobotRLError("teleop_node: rate_hz must be positive")
        self.core = TeleopCore(
            rate, envelope_config(p, rate), p["joint_names"], float(p["linear_scale"])
        )
        self.types = t = convert.rclpy_types()
        sensor, reliable = qos()
        c = self.core
        self.create_subscription(t.JointState, "joint_states", c.on_joint_state, sensor)
        self.create_subscription(Twist, "twist", self.on_twist, sensor)
        self.create_subscription(t.Bool, "gripper", c.on_gripper, reliable)
        self.create_subscription(t.Bool, "estop", c.on_estop, reliable)
        self.create_subscription(t.Bool, "estop_reset", c.on_estop_reset, reliable)
        self.cmd_pub = self.create_publisher(t.Float64MultiArray, "commands", reliable)
        self.action_pub = self.create_publisher(t.Float64MultiArray, "action", reliable)
        self.intervention_pub = self.create_publisher(t.Bool, "intervention", reliable)
        self.create_timer(1.0 / rate, self.tick)

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_twist(self, msg: Any) -> None:
        self.core.on_twist(msg, self.now())

    def tick(self) -> None:
        out = self.core.tick(self.now())
        if out is None:
            return
        self.action_pub.publish(convert.command_msg(self.types, out.action))
        self.cmd_pub.publish(convert.command_msg(self.types, out.command))
        self.intervention_pub.publish(convert.bool_msg(self.types, True))


def main(args: list[str] | None = None) -> None:
    spin(TeleopNode, args)


if __name__ == "__main__":
    main()
