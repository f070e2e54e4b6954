"""Forward kinematics of the arm alone, feeding the shared :class:`sim.control.ArmController`.

The robot side knows only joint states; the controller also needs the tool pose and Jacobian.
They come from a MuJoCo model of the arm by itself (the same MJCF the sim tasks mount), with
``mj_kinematics`` + ``mj_comPos`` + ``mj_jacSite``: no physics is stepped. Values are cast to
float32 exactly as the sim backend casts its state, so a command computed here equals the
sim's for the same joint angles.
"""

from __future__ import annotations

import mujoco
import numpy as np
import torch

from sim.control import ArmController
from sim.robots.panda import ROBOT_DEFAULTS, RobotSpec, panda_mjcf, panda_spec

_ARM_XML = """<mujoco model="robot_rl_arm">
  <compiler angle="radian" autolimits="true"/>
  <default>{defaults}</default>
  <worldbody>{robot}</worldbody>
</mujoco>"""


class ArmKinematics:
    """Tool-centre-point pose and Jacobian of the arm for given joint angles."""

    def __init__(self, spec: RobotSpec | None = None) -> None:
        self.spec = spec or panda_spec()
        robot, _ = panda_mjcf()
        self.model = mujoco.MjModel.from_xml_string(
            _ARM_XML.format(defaults=ROBOT_DEFAULTS, robot=robot)
        )
        self.data = mujoco.MjData(self.model)
        m = self.model
        joints = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n) for n in self.spec.arm_joints]
        self.qadr = np.array([m.jnt_qposadr[j] for j in joints])
        self.dadr = np.array([m.jnt_dofadr[j] for j in joints])
        self.site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, self.spec.tcp_site)
        self._chain = self._body_chain(joints)
        lim = torch.tensor(m.jnt_range[joints], dtype=torch.float32)
        self.q_low, self.q_high = lim[:, 0], lim[:, 1]
        self.home = torch.tensor(self.spec.home_qpos, dtype=torch.float32)
        _, rot, _ = self.fk(np.asarray(self.spec.home_qpos)[None])
        self.tcp_rot_home = rot[0]

    def _body_chain(self, arm_joints: list[int]) -> list[tuple[int, list[tuple[int, int]]]]:
        """Bodies from the world to the tool site, each with its (hinge joint, arm column)s."""
        m = self.model
        col = {j: i for i, j in enumerate(arm_joints)}
        chain = []
        body = int(m.site_bodyid[self.site])
        while body != 0:
            jnts = range(m.body_jntadr[body], m.body_jntadr[body] + m.body_jntnum[body])
            if any(j not in col or m.jnt_type[j] != mujoco.mjtJoint.mjJNT_HINGE for j in jnts):
                raise ValueError(
                    f"body {body} on the tool chain has a joint that is not an arm hinge"
                )
            chain.append((body, [(j, col[j]) for j in jnts]))
            body = int(m.body_parentid[body])
        return chain[::-1]

    def fk(self, q: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tool position [N, 3], rotation [N, 3, 3], Jacobian [N, 6, 7] for joint angles [N, 7]."""
        q = np.asarray(q, dtype=np.float64).reshape(-1, len(self.qadr))
        n = len(q)
        m, d = self.model, self.data
        pos, rot = np.empty((n, 3)), np.empty((n, 9))
        jac = np.empty((n, 6, len(self.dadr)))
        jacp, jacr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        for i in range(n):
            d.qpos[self.qadr] = q[i]
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            mujoco.mj_jacSite(m, d, jacp, jacr, self.site)
            pos[i] = d.site_xpos[self.site]
            rot[i] = d.site_xmat[self.site]
            jac[i, :3] = jacp[:, self.dadr]
            jac[i, 3:] = jacr[:, self.dadr]
        f32 = torch.float32
        return (
            torch.from_numpy(pos).to(f32),
            torch.from_numpy(rot).to(f32).view(n, 3, 3),
            torch.from_numpy(jac).to(f32),
        )

    def tool_pos(self, q: np.ndarray) -> np.ndarray:
        """Tool positions [N, 3] (float64) for joint angles [N, 7], vectorized over N.

        Walks the body chain from the world to the tool site with the model's own body offsets,
        hinge axes and anchors (MuJoCo's kinematics conventions), so a million commands are
        checked in well under a second; tests hold it to ``mj_kinematics``.
        """
        q = np.asarray(q, dtype=np.float64).reshape(-1, len(self.qadr))
        n = len(q)
        pos = np.zeros((n, 3))
        rot = np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
        for body, joints in self._chain:
            m = self.model
            pos = pos + rot @ m.body_pos[body]
            rot = rot @ _quat_mat(m.body_quat[body])
            for j, col in joints:
                anchor = pos + rot @ m.jnt_pos[j]
                rot = rot @ _axis_angle(m.jnt_axis[j], q[:, col])
                pos = anchor - rot @ m.jnt_pos[j]
        return pos + rot @ self.model.site_pos[self.site]

    def controller(self, mode: str = "ee_delta") -> ArmController:
        """The sim's controller for this arm, with the sim's constants."""
        return ArmController(
            mode=mode,
            q_low=self.q_low,
            q_high=self.q_high,
            home=self.home,
            tcp_rot_target=self.tcp_rot_home,
            finger_open=self.spec.finger_open,
        )

    def command(self, ctl: ArmController, action: torch.Tensor, q: np.ndarray) -> torch.Tensor:
        """Joint targets [N, 9] for actions [N, A] at arm joint angles [N, 7]."""
        q = np.asarray(q, dtype=np.float64).reshape(-1, len(self.qadr))
        pos, rot, jac = self.fk(q)
        return ctl.joint_targets(action, torch.from_numpy(q).to(torch.float32), pos, rot, jac)


def _quat_mat(quat: np.ndarray) -> np.ndarray:
    """Rotation matrix of a unit quaternion (w, x, y, z)."""
    mat = np.empty(9)
    mujoco.mju_quat2Mat(mat, np.asarray(quat, dtype=np.float64))
    return mat.reshape(3, 3)


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotations [N, 3, 3] by ``angle`` [N] about a unit ``axis`` (Rodrigues)."""
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + s * k + (1.0 - c) * (k @ k)
