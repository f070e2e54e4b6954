"""Message conversion shared by every transport: plain values <-> ROS 2 standard messages.

The same functions build messages for the Cyclone DDS shells (:mod:`robot_rl.robot.msgs`), the
rclpy nodes in ``ros_ws/src/robot_rl_ros`` and the tests (rosbags' classes), so what goes on
the wire does not depend on the transport. A :class:`MsgTypes` names the message classes of one
flavour and how it wants a ``float64[]`` (cyclonedds: a list; rclpy: ``array.array('d')``;
rosbags: a numpy array). Every message is built with keyword arguments for all of its fields,
which all three flavours accept. Reading uses ROS field names only, so any flavour's message
fits.
"""

from __future__ import annotations

import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_rl.errors import RobotRLError

ROS_TYPE_NAMES = {
    "Time": "builtin_interfaces/msg/Time",
    "Duration": "builtin_interfaces/msg/Duration",
    "Header": "std_msgs/msg/Header",
    "Bool": "std_msgs/msg/Bool",
    "MultiArrayLayout": "std_msgs/msg/MultiArrayLayout",
    "Float64MultiArray": "std_msgs/msg/Float64MultiArray",
    "JointState": "sensor_msgs/msg/JointState",
    "JointTrajectoryPoint": "trajectory_msgs/msg/JointTrajectoryPoint",
    "JointTrajectory": "trajectory_msgs/msg/JointTrajectory",
    "Point": "geometry_msgs/msg/Point",
    "Quaternion": "geometry_msgs/msg/Quaternion",
    "Pose": "geometry_msgs/msg/Pose",
    "PoseStamped": "geometry_msgs/msg/PoseStamped",
}
"""Attribute of :class:`MsgTypes` -> ROS 2 type name."""


@dataclass(frozen=True)
class MsgTypes:
    """The message classes of one flavour (cyclonedds, rclpy, rosbags)."""

    classes: dict[str, Any]
    """Key of :data:`ROS_TYPE_NAMES` -> message class."""
    floats: Callable[[Iterable[float]], Any]
    """A ``float64[]`` field value from floats."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self.classes[name]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def from_lookup(
        cls, lookup: Callable[[str], Any], floats: Callable[[Iterable[float]], Any]
    ) -> MsgTypes:
        return cls({k: lookup(v) for k, v in ROS_TYPE_NAMES.items()}, floats)


def cyclonedds_types() -> MsgTypes:
    """This package's Cyclone DDS structs."""
    from robot_rl.robot import msgs

    return MsgTypes.from_lookup(msgs.ROS_TYPES.__getitem__, lambda xs: [float(x) for x in xs])


def rclpy_types() -> MsgTypes:
    """The generated rclpy classes (needs a sourced ROS 2 install)."""
    import importlib

    def lookup(name: str) -> Any:
        pkg, _, t = name.split("/")
        return getattr(importlib.import_module(f"{pkg}.msg"), t)

    return MsgTypes.from_lookup(lookup, lambda xs: array.array("d", (float(x) for x in xs)))


def rosbags_types() -> MsgTypes:
    """rosbags' classes (ROS 2 Humble typestore); ``serialize_cdr`` needs numpy arrays."""
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    return MsgTypes.from_lookup(
        store.types.__getitem__, lambda xs: np.asarray(list(xs), dtype=np.float64)
    )


# ---- building ---------------------------------------------------------------------------------


def time_msg(t: MsgTypes, seconds: float) -> Any:
    """``builtin_interfaces/Time`` from seconds (nanoseconds rounded, never 10^9)."""
    sec = int(seconds // 1)
    nsec = int(round((seconds - sec) * 1e9))
    if nsec >= 1_000_000_000:
        sec, nsec = sec + 1, nsec - 1_000_000_000
    return t.Time(sec=sec, nanosec=nsec)


def duration_msg(t: MsgTypes, seconds: float) -> Any:
    """``builtin_interfaces/Duration`` from non-negative seconds."""
    if not seconds >= 0:
        raise RobotRLError(f"duration must be >= 0 s, got {seconds}")
    tm = time_msg(t, seconds)
    return t.Duration(sec=tm.sec, nanosec=tm.nanosec)


def header_msg(t: MsgTypes, stamp_s: float, frame_id: str = "") -> Any:
    return t.Header(stamp=time_msg(t, stamp_s), frame_id=frame_id)


def bool_msg(t: MsgTypes, value: bool) -> Any:
    return t.Bool(data=bool(value))


def command_msg(t: MsgTypes, command: Sequence[float]) -> Any:
    """Joint targets as ``std_msgs/Float64MultiArray`` (``forward_command_controller``'s
    ``~/commands``: one value per controller joint, in the controller's joint order)."""
    return t.Float64MultiArray(
        layout=t.MultiArrayLayout(dim=[], data_offset=0), data=t.floats(command)
    )


def trajectory_msg(
    t: MsgTypes,
    joint_names: Sequence[str],
    command: Sequence[float],
    points: np.ndarray | None,
    dt: float,
    stamp_s: float,
) -> Any:
    """Joint targets as ``trajectory_msgs/JointTrajectory`` for ``joint_trajectory_controller``:
    ``command`` at ``dt``, then each row of ``points`` at ``(i + 2) * dt`` (the queued chunk)."""
    rows = [np.asarray(command, dtype=np.float64)]
    if points is not None:
        rows += [np.asarray(p, dtype=np.float64) for p in points]
    pts = [
        t.JointTrajectoryPoint(
            positions=t.floats(r.tolist()),
            velocities=t.floats([]),
            accelerations=t.floats([]),
            effort=t.floats([]),
            time_from_start=duration_msg(t, (i + 1) * dt),
        )
        for i, r in enumerate(rows)
    ]
    return t.JointTrajectory(
        header=header_msg(t, stamp_s), joint_names=list(joint_names), points=pts
    )


def joint_state_msg(
    t: MsgTypes,
    stamp_s: float,
    names: Sequence[str],
    position: Sequence[float],
    velocity: Sequence[float],
    frame_id: str = "world",
) -> Any:
    return t.JointState(
        header=header_msg(t, stamp_s, frame_id),
        name=list(names),
        position=t.floats(position),
        velocity=t.floats(velocity),
        effort=t.floats([]),
    )


def pose_stamped_msg(
    t: MsgTypes, stamp_s: float, pose: Sequence[float], frame_id: str = "world"
) -> Any:
    """``geometry_msgs/PoseStamped`` from the sim's layout: position (x, y, z) and, if given,
    quaternion (qw, qx, qy, qz); identity orientation for a bare position."""
    p = [float(v) for v in pose]
    if len(p) not in (3, 7):
        raise RobotRLError(f"a pose has 3 or 7 values (xyz + wxyz), got {len(p)}")
    w, x, y, z = p[3:7] if len(p) == 7 else (1.0, 0.0, 0.0, 0.0)
    return t.PoseStamped(
        header=header_msg(t, stamp_s, frame_id),
        pose=t.Pose(
            position=t.Point(x=p[0], y=p[1], z=p[2]),
            orientation=t.Quaternion(x=x, y=y, z=z, w=w),
        ),
    )


# ---- reading ----------------------------------------------------------------------------------


def stamp_seconds(stamp: Any) -> float:
    """Seconds of a ``builtin_interfaces/Time`` or ``Duration`` (fields ``sec``, ``nanosec``)."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def pose_array(msg: Any) -> np.ndarray:
    """PoseStamped -> position + quaternion (w, x, y, z), the sim's layout."""
    p, o = msg.pose.position, msg.pose.orientation
    return np.array([p.x, p.y, p.z, o.w, o.x, o.y, o.z], dtype=np.float64)


def targets_from_command(msg: Any) -> list[float]:
    """Joint targets of a ``Float64MultiArray`` command."""
    data = msg.data
    return [float(v) for v in data[int(msg.layout.data_offset) :]]


def targets_from_trajectory(msg: Any) -> list[float] | None:
    """The next joint targets of a ``JointTrajectory`` (its first point), None if it is empty."""
    if not len(msg.points):
        return None
    return [float(v) for v in msg.points[0].positions]


def joint_state_arrays(msg: Any, joint_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities of ``joint_names``, in that order, from a ``JointState``.

    A named message (any order, extra joints allowed: a real driver's) is indexed by name; an
    unnamed one must list exactly these joints. Missing velocities read as zeros.
    """
    pos = np.asarray(msg.position, dtype=np.float64)
    vel = np.asarray(msg.velocity, dtype=np.float64)
    if len(msg.name):
        names = list(msg.name)
        if len(pos) != len(names):
            raise RobotRLError(f"joint state has {len(names)} names, {len(pos)} positions")
        try:
            idx = [names.index(n) for n in joint_names]
        except ValueError as e:
            raise RobotRLError(f"joint state lacks joint {e}; expected {list(joint_names)}") from e
        pos = pos[idx]
        vel = vel[idx] if len(vel) == len(names) else np.zeros(len(idx))
    if len(pos) != len(joint_names):
        raise RobotRLError(f"joint state has {len(pos)} positions, need {len(joint_names)}")
    return pos, (vel if len(vel) == len(pos) else np.zeros(len(pos)))
