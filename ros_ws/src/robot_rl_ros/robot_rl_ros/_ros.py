"""What every node module shares: the rclpy import guard, parameter declaration, QoS profiles."""

from __future__ import annotations

from typing import Any

ROS_MISSING = (
    "robot_rl_ros needs ROS 2's rclpy: source /opt/ros/<distro>/setup.bash first "
    "(without ROS 2, run the same nodes over Cyclone DDS: robot-rl robot sim|policy)"
)


class RclpyMissing(ImportError):
    """rclpy (or a ROS 2 message package) is not importable here."""


def require_rclpy() -> Any:
    """Import rclpy or raise :class:`RclpyMissing` with one line saying what to do."""
    try:
        import rclpy
    except ImportError:
        raise RclpyMissing(ROS_MISSING) from None
    return rclpy


def declare(node: Any, spec: dict[str, tuple[Any, str]]) -> dict[str, Any]:
    """Declare every parameter of ``spec`` on ``node``; their values (lists as lists)."""
    from rcl_interfaces.msg import ParameterDescriptor

    for name, (default, description) in spec.items():
        # an empty list has no ROS type: let the YAML give it one
        dynamic = isinstance(default, list) and not default
        node.declare_parameter(
            name, default, ParameterDescriptor(description=description, dynamic_typing=dynamic)
        )
    values = {}
    for name in spec:
        v = node.get_parameter(name).value
        values[name] = list(v) if isinstance(v, (list, tuple)) or hasattr(v, "tolist") else v
    return values


def qos() -> tuple[Any, Any]:
    """(sensor, reliable): best effort depth 5 for state streams; reliable keep-last 10 (the ROS
    default) for commands and control signals. The same profiles as the Cyclone DDS shells."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    sensor = QoSProfile(
        reliability=ReliabilityPolicy.BEST_EFFORT,
        history=HistoryPolicy.KEEP_LAST,
        depth=5,
        durability=DurabilityPolicy.VOLATILE,
    )
    reliable = QoSProfile(
        reliability=ReliabilityPolicy.RELIABLE,
        history=HistoryPolicy.KEEP_LAST,
        depth=10,
        durability=DurabilityPolicy.VOLATILE,
    )
    return sensor, reliable


def envelope_config(values: dict[str, Any], rate_hz: float) -> Any:
    """The safety envelope from node parameters (empty limit lists: the sim's Panda)."""
    from dataclasses import replace

    from robot_rl.robot.envelope import panda_envelope_config

    cfg = panda_envelope_config(1.0 / rate_hz)
    kw = {
        k: tuple(float(x) for x in values[k])
        for k in ("q_low", "q_high", "vel_limit", "workspace_low", "workspace_high")
        if len(values[k])
    }
    return replace(cfg, stale_periods=float(values["stale_periods"]), **kw)


def spin(node_factory: Any, args: list[str] | None = None) -> None:
    """rclpy init, spin one node until shutdown or Ctrl-C, clean up; a
    :class:`~robot_rl.errors.RobotRLError` (bad parameters, bad input) exits with status 2
    after one line naming the problem."""
    import sys

    from robot_rl.errors import RobotRLError

    rclpy = require_rclpy()
    rclpy.init(args=args)
    node = None
    try:
        node = node_factory()
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    except RobotRLError as e:  # bad parameters or input: one line, exit status 2
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
