"""VecEnv protocol: shapes, dtypes, auto-reset, final observations, determinism, errors."""

from __future__ import annotations

import pytest
import torch

import sim
from sim.errors import SimError


@pytest.mark.parametrize("task", sorted(sim.TASKS))
@pytest.mark.parametrize("controller, action_dim", [("ee_delta", 4), ("joint_delta", 8)])
def test_shapes_and_dtypes(task: str, controller: str, action_dim: int) -> None:
    env = sim.make(task, num_envs=3, seed=0, controller=controller)
    obs = env.reset(seed=0)
    assert env.action_space.shape == (action_dim,)
    assert float(env.action_space.low.min()) == -1.0 and float(env.action_space.high.max()) == 1.0
    assert set(obs) == set(env.observation_space.spaces)
    for key, value in obs.items():
        assert value.shape == (3, *env.observation_space[key].shape), key
        assert value.dtype == torch.float32, key
    assert obs["robot0_joint_pos"].shape == (3, 7)
    assert obs["robot0_gripper_qpos"].shape == (3, 2)
    obs, reward, terminated, truncated, info = env.step(torch.zeros(3, action_dim))
    assert reward.shape == terminated.shape == truncated.shape == info["success"].shape == (3,)
    assert terminated.dtype == truncated.dtype == torch.bool
    assert set(info["final_obs"]) == set(obs)


def test_seed_determinism() -> None:
    def rollout(seed: int) -> list[torch.Tensor]:
        env = sim.make("push", num_envs=2, seed=seed)
        obs = env.reset(seed=seed)
        gen = torch.Generator().manual_seed(123)
        out = [obs["object"].clone()]
        for _ in range(10):
            obs, *_ = env.step(torch.rand(2, 4, generator=gen) * 2 - 1)
            out.append(torch.cat([obs["object"], obs["robot0_joint_pos"]], 1))
        return out

    a, b, c = rollout(7), rollout(7), rollout(8)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])


def test_reset_randomizes_across_envs() -> None:
    env = sim.make("lift", num_envs=4, seed=0)
    cubes = env.reset(seed=0)["object"][:, :2]
    assert torch.unique(cubes, dim=0).shape[0] == 4


def test_truncation_autoreset_and_final_obs() -> None:
    env = sim.make("reach", num_envs=2, seed=0, horizon=5)
    obs = env.reset(seed=0)
    first_goal = obs["goal"].clone()
    for t in range(5):
        obs, _, terminated, truncated, info = env.step(torch.zeros(2, 4))
        if t < 4:
            assert not truncated.any()
            assert torch.equal(info["final_obs"]["goal"], obs["goal"])
    # A zero action never reaches a random goal 3 cm away, so both envs time out together.
    assert truncated.all() and not terminated.any()
    assert (info["episode_length"] == 5).all()
    # The returned obs starts the next episode; final_obs holds the last one of the old one.
    assert torch.equal(info["final_obs"]["goal"], first_goal)
    assert not torch.equal(obs["goal"], first_goal)
    assert not torch.allclose(obs["robot0_eef_pos"], info["final_obs"]["robot0_eef_pos"])


def test_success_terminates_and_resets_only_that_env() -> None:
    env = sim.make("reach", num_envs=2, seed=0)
    obs = env.reset(seed=0)
    goal0 = obs["goal"].clone()
    # Env 0 moves toward its goal; env 1 stands still.
    for _ in range(40):
        delta = (obs["goal"] - obs["robot0_eef_pos"]) / env.max_ee_delta
        action = torch.cat([delta.clamp(-1, 1), -torch.ones(2, 1)], 1)
        action[1] = 0.0
        obs, reward, terminated, truncated, info = env.step(action)
        if terminated[0]:
            break
    assert terminated[0] and not terminated[1]
    assert info["success"][0] and reward[0] == 1.0
    assert torch.linalg.norm(info["final_obs"]["robot0_eef_pos"][0] - goal0[0]) < 0.03
    assert not torch.equal(obs["goal"][0], goal0[0])
    assert torch.equal(obs["goal"][1], goal0[1])


def test_dense_reward_in_unit_range() -> None:
    env = sim.make("push", num_envs=2, seed=0, reward_type="dense")
    env.reset(seed=0)
    _, reward, *_ = env.step(torch.zeros(2, 4))
    assert ((reward > 0) & (reward < 1)).all()


def test_bad_actions_and_names() -> None:
    env = sim.make("reach", num_envs=2, seed=0)
    with pytest.raises(SimError, match="NaN"):
        env.step(torch.tensor([[0.0, float("nan"), 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]))
    with pytest.raises(SimError, match="shape"):
        env.step(torch.zeros(2, 8))
    with pytest.raises(SimError, match="unknown task"):
        sim.make("stack")
    with pytest.raises(SimError, match="unknown backend"):
        sim.make("reach", backend="physx")
    with pytest.raises(SimError, match="controller"):
        sim.make("reach", controller="torque")


def test_arm_kinematics_follow_panda_dh() -> None:
    """At q = 0 the Panda's flange sits at x = 0.088, z = 0.333 + 0.316 + 0.384 - 0.107."""
    import mujoco

    env = sim.make("reach", num_envs=1)
    m = env.backend.model
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    hand = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "robot0_hand")
    assert d.xpos[hand] == pytest.approx([0.088, 0.0, 0.333 + 0.316 + 0.384 - 0.107], abs=1e-6)
