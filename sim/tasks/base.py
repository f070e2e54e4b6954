"""Shared machinery of the tabletop manipulation tasks: scene, controllers, auto-reset.

A task subclass supplies its objects (MJCF), its reset distribution, its observations and its
reward/success, all batched in torch over ``[num_envs, ...]``. Nothing here loops over envs in
Python; the backend alone touches per-env simulator data.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np
import torch

from sim.control import ArmController
from sim.errors import SimError
from sim.randomization import Randomization, Randomizer, body_groups
from sim.robots.panda import ROBOT_DEFAULTS, RobotSpec, panda_mjcf, panda_spec
from sim.vec_env import Obs, VecEnv

CONTROLLERS = ("ee_delta", "joint_delta")
REWARD_TYPES = ("sparse", "dense")

SCENE_TEMPLATE = """<mujoco model="robot_rl_{name}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual><global offwidth="640" offheight="480"/></visual>
  <default>
    {robot_defaults}
    <default class="object">
      <geom contype="1" conaffinity="3" friction="1 0.01 0.001" condim="4" solref="0.004 1"/>
    </default>
    <default class="marker"><site group="2" rgba="0 1 0 0.4"/></default>
  </default>
  <worldbody>
    <light pos="0.5 0 1.5" dir="0 0 -1" directional="true"/>
    <camera name="agentview" pos="1.4 0 0.7" xyaxes="0 1 0 -0.45 0 0.9"/>
    <body name="table" pos="0.55 0 -0.025">
      <geom type="box" size="0.45 0.6 0.025" contype="1" conaffinity="3" rgba="0.6 0.45 0.3 1"/>
    </body>
    {robot}
    {objects}
  </worldbody>
  <actuator>
    {actuators}
  </actuator>
</mujoco>
"""


class ManipulationEnv(VecEnv):
    """Tabletop task with the 7-DoF arm, position-controlled, at ``control_hz``.

    Controllers: ``ee_delta`` (action ``[dx, dy, dz, gripper]``, differential IK with the
    gripper kept pointing down) and ``joint_delta`` (action ``[dq1..dq7, gripper]``). Gripper
    -1 opens, +1 closes. Episodes end on success (terminated) or at ``horizon`` (truncated).
    """

    name: ClassVar[str]
    default_horizon: ClassVar[int]
    physics_timestep: ClassVar[float] = 0.002
    control_hz: ClassVar[float] = 20.0
    max_ee_delta: ClassVar[float] = 0.03
    """Metres of end-effector motion per control step at action magnitude 1."""
    max_joint_delta: ClassVar[float] = 0.05
    """Radians per control step at action magnitude 1."""
    workspace_low: ClassVar[tuple[float, float, float]] = (0.25, -0.35, 0.005)
    workspace_high: ClassVar[tuple[float, float, float]] = (0.8, 0.35, 0.45)
    init_joint_noise: ClassVar[float] = 0.02

    def __init__(
        self,
        num_envs: int = 1,
        backend: str = "mujoco",
        device: str | torch.device = "cpu",
        seed: int | None = None,
        controller: str = "ee_delta",
        reward_type: str = "sparse",
        horizon: int | None = None,
        terminate_on_success: bool = True,
        randomize: dict[str, Any] | None = None,
    ) -> None:
        if num_envs < 1:
            raise SimError(f"num_envs must be >= 1, got {num_envs}")
        if controller not in CONTROLLERS:
            raise SimError(f"unknown controller {controller!r}; choose from {CONTROLLERS}")
        if reward_type not in REWARD_TYPES:
            raise SimError(f"unknown reward_type {reward_type!r}; choose from {REWARD_TYPES}")
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.controller = controller
        self.reward_type = reward_type
        self.horizon = horizon or self.default_horizon
        self.terminate_on_success = terminate_on_success
        self.randomization = Randomization.from_dict(randomize)
        self.env_kwargs = {
            "controller": controller,
            "reward_type": reward_type,
            "horizon": self.horizon,
            "terminate_on_success": terminate_on_success,
        }
        if randomize is not None:
            self.env_kwargs["randomize"] = randomize
        self.robot: RobotSpec = panda_spec()
        self.backend = _make_backend(backend, self.build_xml(), num_envs, self.device)
        self.backend_name = backend
        self.decimation = round(1.0 / (self.control_hz * self.physics_timestep))
        self._index_model(self.backend.model)
        action_dim = 4 if controller == "ee_delta" else 8
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        self._generator = torch.Generator().manual_seed(0 if seed is None else seed)
        self._t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self._ep_return = torch.zeros(num_envs, device=self.device)
        self._ws_low = torch.tensor(self.workspace_low, device=self.device)
        self._ws_high = torch.tensor(self.workspace_high, device=self.device)
        self._randomizer = self._make_randomizer(seed)
        self.reset(seed)
        self.observation_space = gym.spaces.Dict(
            {
                k: gym.spaces.Box(-np.inf, np.inf, tuple(v.shape[1:]), np.float32)
                for k, v in self._obs.items()
            }
        )

    # ---- scene -------------------------------------------------------------------------------

    @classmethod
    @abstractmethod
    def objects_xml(cls) -> str:
        """MJCF worldbody fragment with the task's objects and markers."""

    @classmethod
    def build_xml(cls) -> str:
        """The full MJCF model of this task."""
        robot, actuators = panda_mjcf()
        return SCENE_TEMPLATE.format(
            name=cls.name,
            timestep=cls.physics_timestep,
            robot_defaults=ROBOT_DEFAULTS,
            robot=robot,
            objects=cls.objects_xml(),
            actuators=actuators,
        )

    def _index_model(self, m: mujoco.MjModel) -> None:
        def jid(name: str) -> int:
            return mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name)

        dev = self.device
        arm = [jid(n) for n in self.robot.arm_joints]
        fingers = [jid(n) for n in self.robot.finger_joints]
        self._arm_qadr = torch.tensor([m.jnt_qposadr[j] for j in arm], device=dev)
        self._arm_dadr = torch.tensor([m.jnt_dofadr[j] for j in arm], device=dev)
        self._finger_qadr = torch.tensor([m.jnt_qposadr[j] for j in fingers], device=dev)
        act = [
            mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, n)
            for n in self.robot.arm_actuators + self.robot.finger_actuators
        ]
        self._act_ids = torch.tensor(act, device=dev)
        self._tcp_site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, self.robot.tcp_site)
        self._qpos0 = torch.tensor(m.qpos0, dtype=torch.float32, device=dev)
        self._home = torch.tensor(self.robot.home_qpos, dtype=torch.float32, device=dev)
        lim = torch.tensor(m.jnt_range[arm], dtype=torch.float32, device=dev)
        self._q_low, self._q_high = lim[:, 0], lim[:, 1]
        # Target orientation of the tool frame: whatever it is at the home posture.
        d = mujoco.MjData(m)
        d.qpos[self._arm_qadr.cpu().numpy()] = self.robot.home_qpos
        mujoco.mj_forward(m, d)
        self._tcp_rot_target = torch.tensor(
            d.site_xmat[self._tcp_site].reshape(3, 3), dtype=torch.float32, device=dev
        )

    def _make_randomizer(self, seed: int | None) -> Randomizer | None:
        spec = self.randomization
        if spec == Randomization():
            return None
        m = self.backend.model
        arm_joints = [m.joint(n).id for n in self.robot.arm_joints]
        objects, links = body_groups(m, arm_joints)
        return Randomizer(
            spec,
            self.backend,
            num_envs=self.num_envs,
            action_dim=self.action_dim,
            device=self.device,
            object_bodies=objects,
            link_bodies=links,
            arm_dofs=self._arm_dadr.tolist(),
            servo_actuators=self._act_ids.tolist(),
            seed=_dr_seed(seed),
        )

    def object_qadr(self, joint_name: str) -> int:
        """qpos address of a named joint (for a free joint: 3 position + 4 quaternion)."""
        m = self.backend.model
        return int(m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, joint_name)])

    # ---- task hooks --------------------------------------------------------------------------

    @abstractmethod
    def _reset_task(self, qpos: torch.Tensor, generator: torch.Generator) -> None:
        """Write randomized object/goal state for the resetting envs into ``qpos`` [k, nq]
        (and task buffers such as goals), sampling with ``generator`` on the CPU."""

    @abstractmethod
    def _task_obs(self) -> Obs:
        """Task observations (``object``, ``goal``, ...) for all envs."""

    @abstractmethod
    def _evaluate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(dense_reward, success)`` for all envs, [N] float and [N] bool."""

    # ---- state accessors ---------------------------------------------------------------------

    @property
    def eef_pos(self) -> torch.Tensor:
        """Tool-centre-point position, [N, 3]."""
        return self.backend.site_xpos[:, self._tcp_site]

    @property
    def joint_pos(self) -> torch.Tensor:
        """Arm joint angles, [N, 7]."""
        return self.backend.qpos[:, self._arm_qadr]

    @property
    def gripper_qpos(self) -> torch.Tensor:
        """Finger openings, [N, 2] (0 closed, ``finger_open`` fully open)."""
        return self.backend.qpos[:, self._finger_qadr]

    def _compute_obs(self) -> Obs:
        b = self.backend
        obs = {
            "robot0_joint_pos": self.joint_pos,
            "robot0_joint_vel": b.qvel[:, self._arm_dadr],
            "robot0_eef_pos": self.eef_pos,
            "robot0_gripper_qpos": self.gripper_qpos,
        }
        obs.update(self._task_obs())
        return obs

    def get_state(self) -> torch.Tensor:
        """Flat physics state per env (robomimic's ``states``), [N, nq + nv] float64."""
        return self.backend.get_flat_state()

    # ---- reset / step ------------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> Obs:
        if seed is not None:
            self._generator.manual_seed(seed)
            if self._randomizer is not None:
                self._randomizer.reseed(_dr_seed(seed))
        self._reset_envs(torch.arange(self.num_envs, device=self.device))
        self._obs = self._observe(self._compute_obs())
        return {k: v.clone() for k, v in self._obs.items()}

    def _observe(self, obs: Obs) -> Obs:
        """What the agent sees: the true observation, plus noise under randomization."""
        return obs if self._randomizer is None else self._randomizer.noisy(obs)

    def _reset_envs(self, env_ids: torch.Tensor) -> None:
        k = len(env_ids)
        gen = self._generator
        qpos = self._qpos0.cpu().repeat(k, 1)
        noise = (torch.rand(k, 7, generator=gen) * 2 - 1) * self.init_joint_noise
        qpos[:, self._arm_qadr.cpu()] = self._home.cpu() + noise
        qpos[:, self._finger_qadr.cpu()] = self.robot.finger_open
        self._reset_ids = env_ids
        self._reset_task(qpos, gen)
        if self._randomizer is not None:
            self._randomizer.on_reset(env_ids)
        nv = self.backend.model.nv
        ctrl = torch.cat([qpos[:, self._arm_qadr.cpu()], qpos[:, self._finger_qadr.cpu()]], dim=1)
        self.backend.reset_envs(env_ids, qpos, torch.zeros(k, nv), ctrl)
        self._t[env_ids] = 0
        self._ep_return[env_ids] = 0.0

    def step(
        self, action: torch.Tensor
    ) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        action = self._check_action(action)
        if self._randomizer is not None:
            action = self._randomizer.delay(action, self._t)
        self.backend.step(self._action_to_ctrl(action), self.decimation)
        obs = self._observe(self._compute_obs())
        dense, success = self._evaluate()
        reward = dense if self.reward_type == "dense" else success.float()
        self._t += 1
        self._ep_return += reward
        terminated = success if self.terminate_on_success else torch.zeros_like(success)
        truncated = (self._t >= self.horizon) & ~terminated
        done = terminated | truncated
        # Observation tensors are fresh each step (indexing copies), so final_obs may share
        # them with the returned obs; resets below build new tensors rather than writing in place.
        info: dict[str, Any] = {
            "success": success,
            "final_obs": obs,
            "episode_return": self._ep_return.clone(),
            "episode_length": self._t.clone(),
        }
        if done.any():
            ids = done.nonzero().squeeze(1)
            self._reset_envs(ids)
            fresh = self._observe(self._compute_obs())
            obs = {k: torch.where(_rows(done, v), fresh[k], v) for k, v in obs.items()}
        self._obs = obs
        return dict(obs), reward, terminated, truncated, info

    def _check_action(self, action: torch.Tensor) -> torch.Tensor:
        action = torch.as_tensor(action, dtype=torch.float32, device=self.device)
        if action.shape != (self.num_envs, self.action_dim):
            raise SimError(
                f"{self.name}: action shape {tuple(action.shape)} does not match "
                f"(num_envs={self.num_envs}, action_dim={self.action_dim}) "
                f"for controller {self.controller!r}"
            )
        bad = ~torch.isfinite(action).all(dim=1)
        if bad.any():
            raise SimError(
                f"{self.name}: action contains NaN/inf in envs {bad.nonzero().flatten().tolist()}"
            )
        return action.clamp(-1.0, 1.0)

    # ---- controllers -------------------------------------------------------------------------

    def _action_to_ctrl(self, action: torch.Tensor) -> torch.Tensor:
        return self.arm_controller.joint_targets(action, self.joint_pos, *self._tcp_kinematics())

    def _diff_ik(self, ee_delta: torch.Tensor) -> torch.Tensor:
        """Damped least-squares joint step toward ``eef + ee_delta`` (see :mod:`sim.control`)."""
        return self.arm_controller.ik_step(ee_delta, self.joint_pos, *self._tcp_kinematics())

    @property
    def arm_controller(self) -> ArmController:
        """The action -> joint target mapping, shared with the robot side (built once)."""
        ctl = self.__dict__.get("_arm_controller")
        if ctl is None:
            ctl = ArmController(
                mode=self.controller,
                q_low=self._q_low,
                q_high=self._q_high,
                home=self._home,
                tcp_rot_target=self._tcp_rot_target,
                finger_open=self.robot.finger_open,
                max_ee_delta=self.max_ee_delta,
                max_joint_delta=self.max_joint_delta,
                workspace_low=self.workspace_low,
                workspace_high=self.workspace_high,
            )
            self._arm_controller = ctl
        return ctl

    def _tcp_kinematics(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tool position [N, 3], rotation [N, 3, 3] and arm Jacobian [N, 6, 7] from the backend."""
        rot = self.backend.site_xmat[:, self._tcp_site]
        jac = self.backend.site_jacobian(self._tcp_site, self._arm_dadr)
        return self.eef_pos, rot, jac

    # ---- scripted-expert support -------------------------------------------------------------

    def ee_delta_to_action(self, ee_action: torch.Tensor) -> torch.Tensor:
        """Map an ``ee_delta`` action to this env's controller (experts think in EE space)."""
        if self.controller == "ee_delta":
            return ee_action
        ctl = self.arm_controller
        return ctl.ee_to_joint_action(ee_action, self.joint_pos, *self._tcp_kinematics())


def _dr_seed(seed: int | None) -> int:
    """Seed of the randomization stream, distinct from (but fixed by) the reset seed."""
    return (0 if seed is None else seed) + 7919


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a per-env mask [N] against a tensor [N, ...]."""
    return mask.view(-1, *([1] * (like.dim() - 1)))


def _make_backend(name: str, xml: str, num_envs: int, device: torch.device):
    if name == "mujoco":
        from sim.backends.mujoco_cpu import MujocoBackend

        return MujocoBackend(xml, num_envs, device)
    if name == "mujoco_warp":
        from sim.backends.mujoco_warp import MujocoWarpBackend

        return MujocoWarpBackend(xml, num_envs, device)
    raise SimError(f"unknown backend {name!r}; choose from ['mujoco', 'mujoco_warp']")


def yaw_quat(yaw: torch.Tensor) -> torch.Tensor:
    """Quaternion (w, x, y, z) of a rotation about world z, [k] -> [k, 4]."""
    half = yaw / 2
    zeros = torch.zeros_like(half)
    return torch.stack([torch.cos(half), zeros, zeros, torch.sin(half)], dim=1)


def uniform(
    k: int, low: tuple[float, ...], high: tuple[float, ...], generator: torch.Generator
) -> torch.Tensor:
    """Uniform samples in a box, [k, len(low)], on the CPU."""
    lo, hi = torch.tensor(low), torch.tensor(high)
    return lo + (hi - lo) * torch.rand(k, len(low), generator=generator)
