"""rclpy recorder node: the robot's episodes into robomimic-layout HDF5 (``out``).

Shell only, around :class:`robot_rl.robot.recorder.RecorderCore` (the core the
``robot-rl robot record`` verb runs over Cyclone DDS): it subscribes to the ``topics`` it is
given (roles of :data:`robot_rl_ros.params.RECORDER_TOPICS`, relative names: remap them to the
robot's topics), hands each message to the core with its receive time, and polls the core so an
episode ends after ``gap_s`` without a command. Pairing commands with observations, episode
splitting and the crash-safe commits are the core's. Unlike the DDS shell, messages are handled
in arrival order (rclpy does not hand callbacks the writer's source time on every distribution).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robot_rl_ros._ros import declare, qos, require_rclpy, spin
from robot_rl_ros.params import RECORDER_NODE, RECORDER_TOPICS

rclpy = require_rclpy()

from rclpy.node import Node  # noqa: E402

from robot_rl.errors import RobotRLError  # noqa: E402
from robot_rl.robot import convert  # noqa: E402

TOPIC_TYPES = {
    "joint_states": ("JointState", "sensor", "on_joint_state"),
    "object_pose": ("PoseStamped", "sensor", "on_object_pose"),
    "goal_pose": ("PoseStamped", "sensor", "on_goal_pose"),
    "commands": ("Float64MultiArray", "reliable", "on_command"),
    "joint_trajectory": ("JointTrajectory", "reliable", "on_trajectory"),
    "success": ("Bool", "reliable", "on_success"),
    "intervention": ("Bool", "reliable", "on_intervention"),
    "reset": ("Bool", "reliable", "on_reset"),
}
"""Role -> (message type, QoS profile, the core's handler)."""


class RecorderNode(Node):
    def __init__(self) -> None:
        super().__init__("recorder_node")
        p = declare(self, RECORDER_NODE)
        if not p["out"]:
            raise RobotRLError("recorder_node: set the 'out' parameter to an HDF5 file")
        unknown = [x for x in p["topics"] if x not in RECORDER_TOPICS]
        if unknown:
            raise RobotRLError(f"recorder_node: unknown topics {unknown}; know {RECORDER_TOPICS}")
        try:
            from robot_rl.robot.recorder import EpisodeRecorder, RecorderCore, robot_env_args
        except ImportError as e:
            raise RobotRLError(f"recorder_node needs robot_rl.robot.recorder: {e}") from e
        horizon = int(p["horizon"]) or None
        env_args = robot_env_args(p["env_name"], p["action"], float(p["rate_hz"]), horizon)
        self.recorder = EpisodeRecorder(Path(p["out"]), env_args, append=bool(p["append"]))
        self.core = RecorderCore(
            self.recorder,
            action=p["action"],
            joint_names=tuple(p["joint_names"]),
            horizon=horizon,
            gap_s=float(p["gap_s"]),
            end_on_success=bool(p["end_on_success"]),
        )
        types = convert.rclpy_types()
        profiles = dict(zip(("sensor", "reliable"), qos(), strict=True))
        self.command_subs = []
        for topic in p["topics"]:
            type_name, profile, handler = TOPIC_TYPES[topic]
            callback = self._callback(getattr(self.core, handler))
            sub = self.create_subscription(
                getattr(types, type_name), topic, callback, profiles[profile]
            )
            if topic in ("commands", "joint_trajectory"):
                self.command_subs.append(sub)
        self.reported = 0
        self.create_timer(0.1, self.poll)
        self.get_logger().info(f"recording {p['topics']} into {p['out']}")

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _callback(self, handler: Any) -> Any:
        def on_message(msg: Any) -> None:
            handler(msg, self.now())

        return on_message

    def _listening(self) -> bool:
        """A command publisher is connected (silence then means an idle robot)."""
        try:
            return any(self.count_publishers(sub.topic_name) for sub in self.command_subs)
        except AttributeError:  # an rclpy without Subscription.topic_name: assume so
            return True

    def poll(self) -> None:
        self.core.poll(self.now(), self._listening())
        for name, steps, success, why in self.core.committed[self.reported :]:
            self.get_logger().info(f"recorded {name} steps={steps} success={success} ({why})")
        self.reported = len(self.core.committed)

    def close(self) -> None:
        self.core.shutdown()  # the episode in progress is dropped; committed ones are safe
        self.recorder.close()


def main(args: list[str] | None = None) -> None:
    spin(RecorderNode, args)


if __name__ == "__main__":
    main()
