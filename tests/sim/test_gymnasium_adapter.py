"""The gymnasium adapter against independent single gymnasium envs stepped by hand."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

from sim.adapters.gymnasium import GymnasiumVecEnv
from sim.errors import EnvContractError
from sim.vec_env import check_vec_env


class Line(gym.Env):
    """x moves by (action - 5) / 10 with actions in [0, 10]; success (is_success) at x > 0.25."""

    observation_space = gym.spaces.Dict({"x": gym.spaces.Box(-5, 5, (1,), np.float64)})
    action_space = gym.spaces.Box(0.0, 10.0, (1,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.x = 0.0
        self.t = 0
        return {"x": np.array([self.x])}, {}

    def step(self, action):
        self.x += (float(action[0]) - 5.0) / 10.0
        self.t += 1
        ok = self.x > 0.25
        return {"x": np.array([self.x])}, float(ok), ok, self.t >= 4, {"is_success": ok}


def test_pendulum_final_obs_and_actions_match_reference() -> None:
    """Truncation after 3 steps: final_obs is the true last state, obs the next episode's first."""
    env = GymnasiumVecEnv("Pendulum-v1", num_envs=2, seed=5, max_episode_steps=3)
    check_vec_env(env)
    refs = [gym.make("Pendulum-v1", max_episode_steps=3) for _ in range(2)]
    obs = env.reset(seed=5)
    ref_obs = [r.reset(seed=5 + i)[0] for i, r in enumerate(refs)]
    np.testing.assert_allclose(obs["state"].numpy(), np.stack(ref_obs), rtol=1e-6)
    actions = torch.tensor([[0.5, -1.0], [1.0, 0.25], [-0.5, 0.0]])
    for t in range(3):
        a = actions[t]
        # Pendulum's torque bounds are [-2, 2]: a in [-1, 1] -> 2a, by hand.
        np.testing.assert_allclose(env.scale_action(a[:, None])[:, 0], 2 * a.numpy())
        obs, reward, term, trunc, info = env.step(a[:, None])
        outs = [r.step(np.array([2.0 * float(a[i])], np.float32)) for i, r in enumerate(refs)]
        np.testing.assert_allclose(info["final_obs"]["state"].numpy(),
                                   np.stack([o[0] for o in outs]), rtol=1e-5)  # fmt: skip
        np.testing.assert_allclose(reward.numpy(), [o[1] for o in outs], rtol=1e-5)
        assert term.dtype == trunc.dtype == info["success"].dtype == torch.bool
        assert reward.dtype == torch.float32
    assert trunc.all() and not term.any()
    # After the reset, the returned obs is the next episode's first (unseeded reset continues RNG).
    np.testing.assert_allclose(obs["state"].numpy(), np.stack([r.reset()[0] for r in refs]),
                               rtol=1e-6)  # fmt: skip
    assert not torch.allclose(obs["state"], info["final_obs"]["state"])


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.DISABLED])
def test_dict_obs_success_rescale_and_termination(mode: AutoresetMode) -> None:
    vec = gym.vector.SyncVectorEnv([Line, Line], autoreset_mode=mode)
    env = GymnasiumVecEnv(vec)
    assert set(env.observation_space.spaces) == {"x"}
    check_vec_env(env)
    env.reset(seed=0)
    # a=1 -> 10 (x += 0.5); a=0 -> 5 (x stays). env 0 succeeds and terminates at once.
    obs, reward, term, trunc, info = env.step(torch.tensor([[1.0], [0.0]]))
    assert term.tolist() == [True, False] and trunc.tolist() == [False, False]
    assert info["success"].tolist() == [True, False]
    assert info["final_obs"]["x"][:, 0].tolist() == pytest.approx([0.5, 0.0])
    assert obs["x"][:, 0].tolist() == pytest.approx([0.0, 0.0])  # env 0 restarted
    assert obs["x"].dtype == torch.float32
    for _ in range(3):
        obs, reward, term, trunc, info = env.step(torch.tensor([[0.0], [-0.2]]))
    # env 1: x = 3 * -0.1 after 3 more steps (4 in all) -> truncated, not successful.
    assert trunc.tolist() == [False, True] and info["success"].tolist() == [False, False]
    assert info["final_obs"]["x"][1, 0].item() == pytest.approx(-0.3)


def test_user_success_fn_and_next_step_refused() -> None:
    def far_right(obs, reward, info):
        return obs["state"][:, 0] > -10.0  # always true for MountainCar

    env = GymnasiumVecEnv("MountainCarContinuous-v0", num_envs=2, success_fn=far_right)
    env.reset(seed=0)
    assert env.step(torch.zeros(2, 1))[4]["success"].all()
    vec = gym.make_vec("Pendulum-v1", num_envs=2)  # gymnasium's default NEXT_STEP
    with pytest.raises(EnvContractError, match="autoreset_mode"):
        GymnasiumVecEnv(vec)
