"""rclpy actor node: the policy node plus the actor half of an on-robot fine-tuning session.

A shell around :func:`robot_rl.robot.actor.build_actor` (the same core, link and transition
stream the ``robot-rl robot actor`` verb builds): everything :mod:`robot_rl_ros.policy_node`
does, and each closed control step is streamed to a ``robot-rl learner`` over the learner link
(Cyclone DDS, domain ``link_domain_id``; ids, acks, resend), weights the link has verified are
swapped in between episodes, and a teleop device can take over.

Topics (relative; remap in the launch file), in addition to the policy node's:
  in:  teleop_action (std_msgs/Float64MultiArray, best effort: a human's action in [-1, 1]),
       intervention (std_msgs/Bool: True while the human drives)
The learner link's own topics (``/robot_rl/...``) are not ROS topics to remap: it speaks to
the learner directly over Cyclone DDS.
"""

from __future__ import annotations

from robot_rl_ros._ros import qos, require_rclpy, spin
from robot_rl_ros.params import ACTOR_NODE
from robot_rl_ros.policy_node import PolicyNode

rclpy = require_rclpy()

from robot_rl.robot import convert  # noqa: E402


class ActorNode(PolicyNode):
    NAME = "actor_node"
    PARAMS = ACTOR_NODE

    def config_class(self, base: type) -> type:
        from robot_rl.robot.actor import ActorConfig

        return ActorConfig

    def extra_config(self, p: dict) -> dict:
        from pathlib import Path

        self.drain_s = float(p["drain_s"])
        return {
            "key_file": Path(p["key_file"]) if p["key_file"] else None,
            "domain_id": int(p["link_domain_id"]),
            "name": str(p["actor_name"]),
            "dead_after_s": float(p["dead_after_s"]),
            "outbox": int(p["outbox"]),
            "deterministic": bool(p["deterministic"]),
            "success_classifier": (
                Path(p["success_classifier"]) if p["success_classifier"] else None
            ),
        }

    def build_core(self, cfg, envelope, joint_names):  # noqa: ANN001, ANN201
        from robot_rl.robot.actor import build_actor

        self.actor = build_actor(cfg, envelope=envelope, joint_names=joint_names)
        sensor, reliable = qos()
        t = convert.rclpy_types()
        core = self.actor.core
        self.create_subscription(t.Float64MultiArray, "teleop_action", core.on_teleop_action,
                                 sensor)  # fmt: skip
        self.create_subscription(t.Bool, "intervention", core.on_intervention, reliable)
        return core

    def close(self) -> None:
        # the robot has stopped commanding: give the learner what is still held (bounded)
        self.actor.drain(self.drain_s)
        self.actor.close()


def main(args: list[str] | None = None) -> None:
    spin(ActorNode, args)


if __name__ == "__main__":
    main()
