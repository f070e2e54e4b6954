"""rclpy recorder node: the robot's episodes into robomimic-layout HDF5 (``out``).

Shell only: it subscribes to the ``topics`` it is given (roles of
:data:`robot_rl_ros.params.RECORDER_TOPICS`, relative names: remap them to the robot's topics)
and hands every message, with its receive time, to the recorder in
:mod:`robot_rl.robot.recorder` (``make_topic_recorder(out, topics)`` -> an object with
``on_message(topic, msg, stamp_s)`` and ``close()``), which does the episode splitting and the
crash-safe writing. The same recorder runs over Cyclone DDS as ``robot-rl robot record``.
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
    "joint_states": ("JointState", "sensor"),
    "object_pose": ("PoseStamped", "sensor"),
    "goal_pose": ("PoseStamped", "sensor"),
    "commands": ("Float64MultiArray", "reliable"),
    "joint_trajectory": ("JointTrajectory", "reliable"),
    "action": ("Float64MultiArray", "reliable"),
    "success": ("Bool", "reliable"),
    "intervention": ("Bool", "reliable"),
    "reset": ("Bool", "reliable"),
}
"""Role -> (message type, QoS profile)."""


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
            from robot_rl.robot import recorder
        except ModuleNotFoundError as e:
            raise RobotRLError("recorder_node needs robot_rl.robot.recorder (not installed)") from e
        self.rec = recorder.make_topic_recorder(Path(p["out"]), list(p["topics"]))
        types = convert.rclpy_types()
        profiles = dict(zip(("sensor", "reliable"), qos(), strict=True))
        for topic in p["topics"]:
            type_name, profile = TOPIC_TYPES[topic]
            self.create_subscription(
                getattr(types, type_name), topic, self._callback(topic), profiles[profile]
            )
        self.get_logger().info(f"recording {p['topics']} into {p['out']}")

    def _callback(self, topic: str) -> Any:
        def on_message(msg: Any) -> None:
            self.rec.on_message(topic, msg, self.get_clock().now().nanoseconds * 1e-9)

        return on_message

    def close(self) -> None:
        self.rec.close()


def main(args: list[str] | None = None) -> None:
    spin(RecorderNode, args)


if __name__ == "__main__":
    main()
