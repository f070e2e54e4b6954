"""A 7-DoF arm with Franka Panda kinematics, built from primitive shapes.

The kinematic chain follows the published Franka Emika DH table (Craig's modified convention:
``T_i = RotX(alpha_{i-1}) TransX(a_{i-1}) RotZ(theta_i) TransZ(d_i)``), so joint angles mean
the same thing as on the real robot. Links are capsules between joint origins; masses come from
geom volumes. The hand carries a parallel-jaw gripper (two slide fingers, 0-4 cm each) and a
tool-centre-point site ``grip_site`` between the finger pads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# (a_{i-1}, d_i, alpha_{i-1}) per joint, metres and radians; the flange adds d = 0.107.
PANDA_DH: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -math.pi / 2),
    (0.0, 0.316, math.pi / 2),
    (0.0825, 0.0, math.pi / 2),
    (-0.0825, 0.384, -math.pi / 2),
    (0.0, 0.0, math.pi / 2),
    (0.088, 0.0, math.pi / 2),
)
PANDA_FLANGE_D = 0.107
PANDA_JOINT_LIMITS: tuple[tuple[float, float], ...] = (
    (-2.8973, 2.8973),
    (-1.7628, 1.7628),
    (-2.8973, 2.8973),
    (-3.0718, -0.0698),
    (-2.8973, 2.8973),
    (-0.0175, 3.7525),
    (-2.8973, 2.8973),
)
# Gripper pointing down with the tool centre near (0.45, 0, 0.25) in the base frame.
PANDA_HOME_QPOS: tuple[float, ...] = (0.0, 0.035, 0.0, -2.42, 0.0, 2.455, 0.785)
# Servo gains: stiff shoulder, softer wrist (joint-space PD with gravity compensation).
PANDA_KP: tuple[float, ...] = (1200.0, 1200.0, 1000.0, 1000.0, 500.0, 400.0, 200.0)
PANDA_DAMPING: tuple[float, ...] = (40.0, 40.0, 30.0, 30.0, 10.0, 8.0, 4.0)
FINGER_OPEN = 0.04
FINGER_KP = 600.0
TCP_OFFSET = 0.0934  # tool centre point below the flange-mounted hand origin
LINK_RADII: tuple[float, ...] = (0.06, 0.06, 0.055, 0.055, 0.05, 0.045, 0.04)


@dataclass(frozen=True)
class RobotSpec:
    """Names a task needs to drive an arm; a user robot MJCF supplies its own."""

    arm_joints: tuple[str, ...]
    """Arm joint names, base to tip."""
    arm_actuators: tuple[str, ...]
    """Position actuators, one per arm joint, same order."""
    finger_joints: tuple[str, ...]
    """Gripper slide joints (opening per finger, metres)."""
    finger_actuators: tuple[str, ...]
    """Gripper position actuators, same order."""
    tcp_site: str
    """Site at the tool centre point, used for end-effector control and observations."""
    home_qpos: tuple[float, ...]
    """Arm joint angles at reset (before noise)."""
    finger_open: float
    """Finger position when fully open."""
    link_names: tuple[str, ...] = field(default=())
    """Bodies of the arm (for contact checks)."""


def _quat_rot_x(alpha: float) -> tuple[float, float, float, float]:
    return (math.cos(alpha / 2), math.sin(alpha / 2), 0.0, 0.0)


def _dh_offset(a: float, d: float, alpha: float) -> np.ndarray:
    """Origin of joint frame i in frame i-1: TransX(a) RotX(alpha) TransZ(d)."""
    return np.array([a, -d * math.sin(alpha), d * math.cos(alpha)])


def _fmt(values: tuple[float, ...] | list[float] | np.ndarray) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def panda_spec() -> RobotSpec:
    """Names used by :func:`panda_mjcf`."""
    return RobotSpec(
        arm_joints=tuple(f"robot0_joint{i}" for i in range(1, 8)),
        arm_actuators=tuple(f"robot0_act{i}" for i in range(1, 8)),
        finger_joints=("robot0_finger_left", "robot0_finger_right"),
        finger_actuators=("robot0_act_finger_left", "robot0_act_finger_right"),
        tcp_site="grip_site",
        home_qpos=PANDA_HOME_QPOS,
        finger_open=FINGER_OPEN,
        link_names=tuple(f"robot0_link{i}" for i in range(0, 8)) + ("robot0_hand",),
    )


def panda_mjcf() -> tuple[str, str]:
    """Return ``(worldbody_xml, actuator_xml)`` fragments for the arm, base at the origin.

    Arm geoms use contype 2 / conaffinity 1: they touch the table and objects (contype 1,
    conaffinity 3) but not each other, so no self-collision tuning is needed.
    """
    body_open: list[str] = []
    body_close: list[str] = []
    indent = "    "
    # Base pedestal.
    body_open.append(
        '<body name="robot0_link0" pos="0 0 0">'
        '<geom type="cylinder" size="0.07 0.05" pos="0 0 0.05" class="robot_link"/>'
        '<geom type="capsule" fromto="0 0 0.1 0 0 0.27" size="0.06" class="robot_link"/>'
    )
    body_close.append("</body>")
    for i, (a, d, alpha) in enumerate(PANDA_DH):
        pos = _dh_offset(a, d, alpha)
        quat = _quat_rot_x(alpha)
        lo, hi = PANDA_JOINT_LIMITS[i]
        name = f"robot0_link{i + 1}"
        lines = [
            f'<body name="{name}" pos="{_fmt(pos)}" quat="{_fmt(quat)}" gravcomp="1">',
            f'{indent}<joint name="robot0_joint{i + 1}" axis="0 0 1" range="{lo} {hi}" '
            f'damping="{PANDA_DAMPING[i]}" armature="0.1"/>',
        ]
        # Capsule from this joint origin to the next one (expressed in this frame).
        if i + 1 < len(PANDA_DH):
            nxt = _dh_offset(*PANDA_DH[i + 1])
        else:
            nxt = np.array([0.0, 0.0, PANDA_FLANGE_D])
        if np.linalg.norm(nxt) > 1e-6:
            lines.append(
                f'{indent}<geom type="capsule" fromto="0 0 0 {_fmt(nxt)}" '
                f'size="{LINK_RADII[i]}" class="robot_link"/>'
            )
        else:
            lines.append(f'{indent}<geom type="sphere" size="{LINK_RADII[i]}" class="robot_link"/>')
        body_open.append("\n".join(lines))
        body_close.append("</body>")
    # Hand: flange at d=0.107 along joint-7 z, rotated -45 deg about z like the real hand.
    hand = f"""<body name="robot0_hand" pos="0 0 {PANDA_FLANGE_D}" quat="{_fmt((math.cos(-math.pi / 8), 0, 0, math.sin(-math.pi / 8)))}" gravcomp="1">
  <geom type="box" size="0.02 0.1 0.025" pos="0 0 0.03" class="robot_link"/>
  <site name="grip_site" pos="0 0 {TCP_OFFSET}" size="0.006" rgba="1 0 0 0.5" group="3"/>
  <body name="robot0_finger_left_body" pos="0 0 0.0584">
    <joint name="robot0_finger_left" type="slide" axis="0 1 0" range="0 {FINGER_OPEN}" damping="5" armature="0.01"/>
    <geom type="box" size="0.01 0.008 0.025" pos="0 0.008 0.02" class="robot_finger"/>
  </body>
  <body name="robot0_finger_right_body" pos="0 0 0.0584">
    <joint name="robot0_finger_right" type="slide" axis="0 -1 0" range="0 {FINGER_OPEN}" damping="5" armature="0.01"/>
    <geom type="box" size="0.01 0.008 0.025" pos="0 -0.008 0.02" class="robot_finger"/>
  </body>
</body>"""
    worldbody = "\n".join(body_open) + "\n" + hand + "\n" + "\n".join(reversed(body_close))
    actuators = [
        f'<position name="robot0_act{i + 1}" joint="robot0_joint{i + 1}" kp="{PANDA_KP[i]}" '
        f'ctrlrange="{PANDA_JOINT_LIMITS[i][0]} {PANDA_JOINT_LIMITS[i][1]}" '
        f'forcerange="-87 87"/>'
        for i in range(7)
    ]
    actuators += [
        f'<position name="robot0_act_{side}" joint="robot0_{side}" kp="{FINGER_KP}" '
        f'ctrlrange="0 {FINGER_OPEN}" forcerange="-70 70"/>'
        for side in ("finger_left", "finger_right")
    ]
    return worldbody, "\n".join(actuators)


ROBOT_DEFAULTS = """
<default class="robot_link">
  <geom contype="2" conaffinity="1" density="800" rgba="0.92 0.92 0.95 1" group="1"/>
</default>
<default class="robot_finger">
  <geom contype="2" conaffinity="1" density="800" friction="1.5 0.01 0.001" condim="4"
        solref="0.004 1" rgba="0.2 0.2 0.2 1" group="1"/>
</default>
"""
