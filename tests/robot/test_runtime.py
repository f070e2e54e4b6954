"""PolicyRuntime: observation history, chunk queue (receding horizon), shared controller,
envelope always on, and asynchronous chunks that never make the control loop wait."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import sim
from robot_rl.data.normalizer import Normalizer
from robot_rl.policies import (
    DiffusionPolicy,
    DiffusionPolicyConfig,
    GaussianPolicy,
    GaussianPolicyConfig,
)
from robot_rl.robot import envelope as E
from robot_rl.robot.kinematics import ArmKinematics
from robot_rl.robot.runtime import PolicyRuntime, robot_obs

HOME = np.r_[ArmKinematics().spec.home_qpos, 0.04, 0.04]


@dataclass
class _ChunkCfg:
    obs_keys: list
    n_obs_steps: int = 2
    horizon: int = 16
    n_action_steps: int = 8
    action_dim: int = 8


class SlowStepPolicy:
    """Chunked policy whose chunk encodes the control step each action is meant for
    (``action[0] = step / 1000``) and whose inference takes ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        self.config = _ChunkCfg(obs_keys=["t"])
        self.env_info = {"env_name": "lift", "env_kwargs": {"controller": "joint_delta"}}
        self.obs_keys = ["t"]
        self.delay = delay
        self.histories: list[list[float]] = []

    def eval(self) -> SlowStepPolicy:
        return self

    def reset(self, env_ids: object = None) -> None:
        pass

    def sample(self, obs: dict[str, torch.Tensor], num_samples: int = 1) -> torch.Tensor:
        hist = obs["t"][0, :, 0]
        self.histories.append(hist.tolist())
        end = time.perf_counter() + self.delay
        x = torch.randn(64, 64)
        while time.perf_counter() < end:  # busy work as well as waiting, like a real network
            x = torch.tanh(x @ x.T / 64)
            time.sleep(0.002)
        cfg = self.config
        first = float(hist[-1]) - (cfg.n_obs_steps - 1)  # the oldest observation's step
        steps = first + torch.arange(cfg.horizon, dtype=torch.float32)
        chunk = torch.zeros(cfg.horizon, cfg.action_dim)
        chunk[:, 0] = steps / 1000
        return chunk[None, None]


def _run_loop(rt: PolicyRuntime, n: int, hz: float) -> tuple[list[float], list[float], list]:
    """Real-time loop at ``hz``: returns step durations, period errors and results."""
    period = 1.0 / hz
    rt.start(HOME, {"t": np.array([0.0], np.float32)})
    durations, errors, results = [], [], []
    t0 = time.perf_counter()
    for k in range(n):
        target = t0 + k * period
        while (now := time.perf_counter()) < target:
            time.sleep(min(0.0005, target - now))
        errors.append(now - target)
        s = time.perf_counter()
        results.append(rt.step(HOME, {"t": np.array([float(k)], np.float32)}, 0.0, first=k == 0))
        durations.append(time.perf_counter() - s)
    return durations, errors, results


def test_slow_chunked_policy_never_stalls_the_loop() -> None:
    # inference takes 100 ms = 5 periods at 50 Hz; a chunk executes 8 periods
    policy = SlowStepPolicy(delay=0.1)
    # default threshold (4 of 8) is too late for 100 ms: the runtime adapts it to the latency
    rt = PolicyRuntime(policy, control_hz=50, envelope=E.panda_envelope_config(0.02))
    durations, errors, results = _run_loop(rt, 80, 50)
    rt.close()
    assert rt.stats.starved == 0
    assert rt.stats.chunks >= 8
    # receding horizon with latency compensation: step k executes the action planned for k
    assert [round(float(r.action[0]) * 1000) for r in results] == list(range(80))
    # the loop never waited for a 100 ms inference
    assert max(durations) < 0.03, max(durations)
    assert np.percentile(durations, 99) < 0.015
    # every chunk was conditioned on a 2-step history of consecutive observations
    for h in policy.histories[1:]:
        assert h[1] - h[0] == 1.0


def test_synchronous_chunks_replan_every_ta_steps() -> None:
    policy = SlowStepPolicy(delay=0.0)
    rt = PolicyRuntime(policy, control_hz=20, async_inference=False)
    rt.start(HOME, {"t": np.array([0.0], np.float32)})
    acts = []
    for k in range(20):
        r = rt.step(HOME, {"t": np.array([float(k)], np.float32)}, first=k == 0)
        acts.append(round(float(r.action[0]) * 1000))
    assert acts == list(range(20))
    # replanned at steps 0, 8, 16 from the history ending there (edge-padded at the start)
    assert policy.histories == [[0.0, 0.0], [7.0, 8.0], [15.0, 16.0]]


def _gaussian(obs_keys: dict[str, int], env_kwargs: dict) -> GaussianPolicy:
    torch.manual_seed(0)
    norm = Normalizer()
    for k, d in obs_keys.items():
        norm.fit_field(f"obs.{k}", torch.randn(64, d), "gaussian")
    norm.fit_field("action", torch.rand(64, 4) * 2 - 1, "minmax")
    cfg = GaussianPolicyConfig(list(obs_keys), sum(obs_keys.values()), 4, [32, 32])
    return GaussianPolicy(cfg, norm, {"env_name": "lift", "env_kwargs": env_kwargs})


def test_gaussian_policy_commands_what_the_sim_controller_would() -> None:
    env = sim.make("lift", num_envs=1, seed=4)
    obs_keys = {k: v.shape[-1] for k, v in env.reset(seed=4).items()}
    policy = _gaussian(obs_keys, {"controller": "ee_delta"})
    rt = PolicyRuntime(policy, control_hz=20)
    kin = rt.kin
    q = np.r_[env.joint_pos[0].double().numpy(), env.gripper_qpos[0].double().numpy()]
    pose = env.backend.qpos[0, env._cube_adr : env._cube_adr + 7].double().numpy()
    obs = robot_obs(kin, q, np.zeros(9), pose)
    sim_obs = env._compute_obs()
    for k in obs_keys:  # the robot rebuilds the sim's observation from its measurements
        np.testing.assert_allclose(obs[k], sim_obs[k][0].numpy(), atol=2e-5)
    rt.start(q, obs)
    r = rt.step(q, obs, first=True)
    action = policy.act({k: torch.as_tensor(v)[None] for k, v in obs.items()}, deterministic=True)
    np.testing.assert_allclose(r.action, action[0].numpy())
    sim_cmd = env._action_to_ctrl(action)[0].double().numpy()
    np.testing.assert_allclose(r.raw_command, sim_cmd, atol=1e-5)
    assert not r.flags & E.HELD


def test_envelope_is_applied_to_a_nan_policy_and_missing_obs_is_a_clear_error() -> None:
    from robot_rl.errors import RobotRLError

    env = sim.make("lift", num_envs=1, seed=4)
    obs_keys = {k: v.shape[-1] for k, v in env.reset(seed=4).items()}
    policy = _gaussian(obs_keys, {"controller": "ee_delta"})
    with torch.no_grad():
        for p in policy.parameters():
            p.fill_(float("nan"))
    rt = PolicyRuntime(policy, control_hz=20)
    obs = robot_obs(rt.kin, HOME, np.zeros(9), np.r_[0.5, 0, 0.02, 1, 0, 0, 0])
    rt.start(HOME, obs)
    r = rt.step(HOME, obs, first=True)
    assert r.flags & E.NONFINITE and r.flags & E.HELD
    np.testing.assert_array_equal(r.command, HOME)
    with pytest.raises(RobotRLError, match="object"):
        rt.start(HOME, robot_obs(rt.kin, HOME, np.zeros(9)))


def test_real_diffusion_policy_runs_through_the_runtime() -> None:
    ident = {
        "obs.robot0_joint_pos": (torch.ones(7), torch.zeros(7)),
        "action": (torch.ones(4), torch.zeros(4)),
    }
    cfg = DiffusionPolicyConfig(
        obs_keys=["robot0_joint_pos"], obs_dim=7, action_dim=4, hidden_dim=32, num_blocks=1
    )
    policy = DiffusionPolicy(cfg, Normalizer(ident), {"env_name": "lift"}).eval()
    rt = PolicyRuntime(policy, control_hz=20)
    obs = robot_obs(rt.kin, HOME, np.zeros(9))
    rt.start(HOME, obs)
    for k in range(20):
        r = rt.step(HOME, obs, first=k == 0)
        assert np.isfinite(r.command).all() and np.all(np.abs(r.action) <= 1)
        time.sleep(rt.dt)  # a control loop's pace: the async chunk lands within its periods
    pts = rt.preview(HOME, 8)
    assert pts.shape[1] == 9 and 1 <= len(pts) <= 8
    rt.close()
    assert rt.stats.chunks >= 3 and rt.stats.starved == 0
