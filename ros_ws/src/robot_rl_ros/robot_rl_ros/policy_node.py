"""rclpy policy node: ``joint_states`` (+ ``object_pose``, ``goal_pose``, ``success``) in, safe
joint commands out, behind the always-on safety envelope; ``estop`` latches a hold until
``estop_reset``.

A shell around :class:`robot_rl.robot.policy_node.PolicyNodeCore`, built by the same function
the ``robot-rl robot policy`` verb uses; this file only declares parameters, sets QoS, runs a
wall-clock timer at ``rate_hz`` (the ``realtime`` pacing of the DDS verb) and converts messages
with :mod:`robot_rl.robot.convert`.

Topics (relative; remap in the launch file):
  in:  joint_states (sensor_msgs/JointState, best effort), object_pose, goal_pose
       (geometry_msgs/PoseStamped, best effort), success, estop, estop_reset (std_msgs/Bool)
  out: commands (std_msgs/Float64MultiArray, output=forward) or joint_trajectory
       (trajectory_msgs/JointTrajectory, output=trajectory), reset (std_msgs/Bool)
"""

from __future__ import annotations

from pathlib import Path

from robot_rl_ros._ros import declare, envelope_config, qos, require_rclpy, spin
from robot_rl_ros.params import POLICY_NODE

rclpy = require_rclpy()

from rclpy.node import Node  # noqa: E402

from robot_rl.errors import RobotRLError  # noqa: E402
from robot_rl.robot import convert  # noqa: E402


class PolicyNode(Node):
    NAME = "policy_node"
    PARAMS = POLICY_NODE

    def __init__(self) -> None:
        super().__init__(self.NAME)
        p = declare(self, self.PARAMS)
        from robot_rl.robot.cli import PolicyNodeConfig

        if not p["policy"]:
            raise RobotRLError(f"{self.NAME}: set the 'policy' parameter to a policy directory")
        if p["output"] not in ("forward", "trajectory"):
            raise RobotRLError(
                f"{self.NAME}: output must be forward or trajectory: {p['output']!r}"
            )
        cfg = self.config_class(PolicyNodeConfig)(
            policy=Path(p["policy"]),
            mode="realtime",
            rate_hz=float(p["rate_hz"]),
            output=p["output"],
            horizon=int(p["horizon"]) or None,
            async_inference=bool(p["async_inference"]),
            seed=int(p["seed"]),
            threads=int(p["threads"]),
            **self.extra_config(p),
        )
        envelope = envelope_config(p, cfg.rate_hz)
        self.core = self.build_core(cfg, envelope, p["joint_names"])
        self.types = convert.rclpy_types()
        self.episodes = int(p["episodes"])
        self.request_reset = bool(p["request_reset"])
        self.output = cfg.output
        self.period = 1.0 / cfg.rate_hz
        self.done = 0
        self.warm = False

        sensor, reliable = qos()
        t = self.types
        c = self.core
        self.create_subscription(t.JointState, "joint_states", c.on_joint_state, sensor)
        self.create_subscription(t.PoseStamped, "object_pose", c.on_object_pose, sensor)
        self.create_subscription(t.PoseStamped, "goal_pose", c.on_goal_pose, sensor)
        self.create_subscription(t.Bool, "success", c.on_success, reliable)
        self.create_subscription(t.Bool, "estop", c.on_estop, reliable)
        self.create_subscription(t.Bool, "estop_reset", c.on_estop_reset, reliable)
        if self.output == "forward":
            self.cmd_pub = self.create_publisher(t.Float64MultiArray, "commands", reliable)
        else:
            self.cmd_pub = self.create_publisher(t.JointTrajectory, "joint_trajectory", reliable)
        self.reset_pub = self.create_publisher(t.Bool, "reset", reliable)
        self.timer = self.create_timer(self.period, self.tick)
        self.get_logger().info(
            f"policy {cfg.policy} at {cfg.rate_hz:g} Hz, output {self.output}, envelope on"
        )

    # ---- what a subclass (the actor node) replaces ----

    def config_class(self, base: type) -> type:
        return base

    def extra_config(self, p: dict) -> dict:
        return {}

    def build_core(self, cfg, envelope, joint_names):  # noqa: ANN001, ANN201
        from robot_rl.robot.cli import build_policy_node

        core, _ = build_policy_node(cfg, envelope=envelope, joint_names=joint_names)
        return core

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def tick(self) -> None:
        now = self.now()
        if not self.warm:  # first-call costs before the first command, not in it
            self.warm = self.core.warmup()
            if self.warm:
                return
        out = self.core.tick(now)
        if out is None:
            return
        if out.episode_end:
            self.done += 1
            self.get_logger().info(f"episode {self.done}: success={out.success}")
            if self.episodes and self.done >= self.episodes:
                self.timer.cancel()
                raise SystemExit(0)
            if self.request_reset:
                self.core.fresh_after = now + 2 * self.period
                self.reset_pub.publish(convert.bool_msg(self.types, True))
            return
        if out.result is not None and out.result.flags:
            from robot_rl.robot.envelope import describe

            self.get_logger().warn(
                f"envelope: {describe(out.result.flags)}", throttle_duration_sec=1.0
            )
        if self.output == "forward":
            self.cmd_pub.publish(convert.command_msg(self.types, out.command))
        else:
            msg = convert.trajectory_msg(
                self.types, self.core.joint_names, out.command, out.points, self.period, now
            )
            self.cmd_pub.publish(msg)

    def close(self) -> None:
        self.core.rt.close()


def main(args: list[str] | None = None) -> None:
    spin(PolicyNode, args)


if __name__ == "__main__":
    main()
