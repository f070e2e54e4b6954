"""The shared arm controller: the sim's behaviour is unchanged by moving it into
``sim.control``, and the robot side (FK on the arm alone) commands exactly what the sim does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sim
from robot_rl.robot.kinematics import ArmKinematics
from sim.tasks.base import ManipulationEnv


def _legacy_action_to_ctrl(env: ManipulationEnv, action: torch.Tensor) -> torch.Tensor:
    """The controller as ManipulationEnv had it inline before the refactor (the reference)."""
    q = env.joint_pos
    if env.controller == "ee_delta":
        ee_delta = action[:, :3] * env.max_ee_delta
        target = torch.minimum(torch.maximum(env.eef_pos + ee_delta, env._ws_low), env._ws_high)
        pos_err = target - env.eef_pos
        rot = env.backend.site_xmat[:, env._tcp_site]
        rot_err = 0.5 * torch.cross(rot, env._tcp_rot_target.expand_as(rot), dim=1).sum(dim=2)
        err = torch.cat([pos_err, rot_err], dim=1)
        jac = env.backend.site_jacobian(env._tcp_site, env._arm_dadr)
        jjt = jac @ jac.transpose(1, 2)
        jac_pinv = jac.transpose(1, 2) @ torch.linalg.inv(jjt + 0.05**2 * torch.eye(6))
        dq = (jac_pinv @ err.unsqueeze(2)).squeeze(2)
        null = torch.eye(7) - jac_pinv @ jac
        dq = dq + (null @ (0.5 * (env._home - env.joint_pos)).unsqueeze(2)).squeeze(2)
        q_target = q + dq
    else:
        q_target = q + action[:, :7] * env.max_joint_delta
    q_target = torch.maximum(torch.minimum(q_target, env._q_high), env._q_low)
    finger = env.robot.finger_open * (1.0 - action[:, -1:]) / 2.0
    return torch.cat([q_target, finger.expand(-1, 2)], dim=1)


def _trajectory(task: str, controller: str, legacy: bool) -> np.ndarray:
    env = sim.make(task, num_envs=3, seed=5, controller=controller)
    if legacy:
        env._action_to_ctrl = lambda a: _legacy_action_to_ctrl(env, a)
    g = torch.Generator().manual_seed(1)
    states = []
    for _ in range(40):
        # beyond [-1, 1] on purpose: the env clamps, the controller must see the same values
        env.step(torch.rand(3, env.action_dim, generator=g) * 2.4 - 1.2)
        states.append(env.get_state().numpy())
    return np.stack(states)


@pytest.mark.parametrize("controller", ["ee_delta", "joint_delta"])
@pytest.mark.parametrize("task", ["lift", "push"])
def test_sim_trajectories_bit_identical_to_the_pre_refactor_controller(
    task: str, controller: str
) -> None:
    new = _trajectory(task, controller, legacy=False)
    old = _trajectory(task, controller, legacy=True)
    assert np.array_equal(new, old)
    assert np.abs(new[-1] - new[0]).max() > 0.05  # the arm actually moved


@pytest.mark.parametrize("controller", ["ee_delta", "joint_delta"])
def test_robot_side_command_equals_the_sims_for_random_joint_states(controller: str) -> None:
    n = 16
    env = sim.make("lift", num_envs=n, seed=0, controller=controller)
    kin = ArmKinematics()
    g = torch.Generator().manual_seed(3)
    span = env._q_high - env._q_low
    # joint states anywhere in the middle 80% of the ranges, float32-representable
    q = (env._q_low + span * (0.1 + 0.8 * torch.rand(n, 7, generator=g))).double()
    qpos = env.backend.qpos.double().clone()
    qpos[:, env._arm_qadr] = q
    env.backend.reset_envs(
        torch.arange(n), qpos, torch.zeros(n, env.backend.model.nv), env.backend.qpos[:, :9] * 0
    )
    action = torch.rand(n, env.action_dim, generator=g) * 2 - 1
    sim_cmd = env._action_to_ctrl(action)
    ctl = kin.controller(controller)
    robot_cmd = kin.command(ctl, action, q.numpy())
    assert torch.equal(robot_cmd, sim_cmd)
    # the controller is the same object type with the same constants
    for f in ("max_ee_delta", "max_joint_delta", "workspace_low", "workspace_high", "finger_open"):
        assert getattr(ctl, f) == getattr(env.arm_controller, f)
    assert torch.equal(ctl.tcp_rot_target, env.arm_controller.tcp_rot_target)
    assert torch.equal(ctl.q_low, env.arm_controller.q_low)


def test_fk_matches_the_full_scene() -> None:
    env = sim.make("push", num_envs=2, seed=2)
    pos, rot, _ = ArmKinematics().fk(env.backend.qpos[:, env._arm_qadr].double().numpy())
    # the sim's state is float64 inside MuJoCo; its float32 joint view differs by rounding only
    assert torch.allclose(pos, env.eef_pos, atol=1e-5)
    assert torch.allclose(rot, env.backend.site_xmat[:, env._tcp_site], atol=1e-5)


def test_vectorized_tool_position_matches_mujoco_kinematics() -> None:
    import mujoco

    kin = ArmKinematics()
    rng = np.random.default_rng(0)
    q = rng.uniform(kin.q_low.numpy() - 0.5, kin.q_high.numpy() + 0.5, size=(200, 7))
    got = kin.tool_pos(q)
    m, d = kin.model, kin.data
    for i in range(len(q)):
        d.qpos[kin.qadr] = q[i]
        mujoco.mj_kinematics(m, d)
        np.testing.assert_allclose(got[i], d.site_xpos[kin.site], atol=1e-12)
