"""Recording from a non-MuJoCo VecEnv (the pure-torch point env) into robomimic HDF5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from robot_rl.data import Normalizer, read_robomimic
from robot_rl.demos import DemosConfig, generate_demos
from robot_rl.errors import ConfigError
from robot_rl.policies.gaussian import GaussianPolicy, GaussianPolicyConfig
from robot_rl.record import RecordConfig, run_record


def test_record_expert_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "point.hdf5"
    report = run_record(RecordConfig(env="point", out=out, episodes=10, num_envs=4), progress=False)
    assert report.episodes == 10 and report.success_rate == 1.0
    data = read_robomimic(out)
    assert data.num_episodes == 10 and data.obs_keys == ["goal", "pos"] and data.action_dim == 2
    assert data.env_args["env_name"] == "point"
    assert data.env_args["env_kwargs"] == {"horizon": 40, "reward_type": "sparse"}
    ep = data.episode(0)
    # The expert heads straight at the goal: each action is (goal - pos) / 0.1, clipped.
    expected = ((ep["obs"]["goal"] - ep["obs"]["pos"]) / 0.1).clamp(-1, 1)
    torch.testing.assert_close(ep["actions"], expected)
    # next_obs is pos + 0.1 * action (final step included, taken from final_obs).
    torch.testing.assert_close(ep["next_obs"]["pos"], ep["obs"]["pos"] + 0.1 * ep["actions"])
    assert ep["rewards"][-1] == 1.0 and ep["rewards"][:-1].sum() == 0.0
    import h5py

    with h5py.File(out) as f:  # states from the optional get_state hook: [pos, goal]
        states = np.asarray(f["data/demo_0/states"])
        obs_pos = np.asarray(f["data/demo_0/obs/pos"])
    np.testing.assert_allclose(states[:, :2], obs_pos)


def test_record_with_policy_and_checks_fit(tmp_path: Path) -> None:
    data_path = tmp_path / "demos.hdf5"
    generate_demos(DemosConfig(task="point", episodes=4, out=data_path, num_envs=2), progress=False)
    data = read_robomimic(data_path)
    cfg = GaussianPolicyConfig(["goal", "pos"], 4, 2, hidden_dims=[8])
    policy_dir = tmp_path / "policy"
    GaussianPolicy(cfg, Normalizer.fit(data, ["goal", "pos"]), {"env_name": "point"}).save(
        policy_dir
    )
    out = tmp_path / "rec.hdf5"
    report = run_record(
        RecordConfig(env="point", out=out, episodes=3, num_envs=3, policy=policy_dir,
                     env_kwargs='{"horizon": 5}'),
        progress=False,
    )  # fmt: skip
    assert report.episodes == 3 and read_robomimic(out).env_args["env_kwargs"]["horizon"] == 5
    with pytest.raises(
        ConfigError, match=r"reads observations \['pos'\] that env 'push' does not provide"
    ):
        run_record(RecordConfig(env="push", out=tmp_path / "x.hdf5", episodes=1,
                                policy=policy_dir), progress=False)  # fmt: skip
    with pytest.raises(ConfigError, match="must be a JSON object"):
        run_record(RecordConfig(env="point", out=tmp_path / "y.hdf5", env_kwargs="[1]"))


def test_demos_reject_options_env_lacks(tmp_path: Path) -> None:
    from sim.errors import EnvSpecError

    with pytest.raises(EnvSpecError, match="env 'point' takes no option 'controller'"):
        generate_demos(DemosConfig(task="point", out=tmp_path / "p.hdf5", controller="ee_delta"))
    with pytest.raises(ConfigError, match="--quality mixed needs an expert"):
        generate_demos(DemosConfig(task="point", out=tmp_path / "p.hdf5", quality="mixed"))


def test_offline_training_needs_no_builtin_env(tmp_path: Path) -> None:
    """BC trains on a dataset recorded from a non-MuJoCo env and evaluates in that env."""
    from robot_rl.algos.bc import BCConfig, train_bc
    from robot_rl.evaluate import evaluate, policy_env

    data = tmp_path / "point.hdf5"
    run_record(RecordConfig(env="point", out=data, episodes=60, num_envs=8), progress=False)
    policy = train_bc(
        BCConfig(dataset=data, out=tmp_path / "bc", steps=600, log_dir=tmp_path / "tb"),
        progress=False,
    )
    assert policy.env_info["env_name"] == "point"
    env = policy_env(policy, 8, seed=1000)
    result = evaluate(policy, env, episodes=40, seed=1000)
    env.close()
    # A policy that ignores the goal succeeds only by chance (about 0 here); BC must home in.
    assert result.success_rate >= 0.5, result.success_rate


def test_record_through_a_wrapper_factory_replays_without_it(tmp_path: Path, monkeypatch) -> None:
    """A user's ``module:factory`` that returns a registry env (here ``point``) is recorded
    under the env's own spec and options, so eval rebuilds it without the user's module; a
    console script finds the module in the working directory."""
    (tmp_path / "my_wrapper.py").write_text(
        "import sim\n\n\ndef make(num_envs=1, seed=None, device='cpu'):\n"
        "    return sim.make_env('point', num_envs=num_envs, seed=seed, device=device, horizon=7)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", ".")])
    out = tmp_path / "rec.hdf5"
    run_record(RecordConfig(env="my_wrapper:make", out=out, episodes=2, num_envs=2), progress=False)
    args = read_robomimic(out).env_args
    assert args["env_name"] == "point"
    assert args["env_kwargs"] == {"horizon": 7, "reward_type": "sparse"}


_GYM_WRAPPER = """import sim
import torch


def near(obs, reward, info):
    return torch.zeros(obs["state"].shape[0], dtype=torch.bool)


def make(num_envs=1, seed=None, device="cpu", named=True):
    fn = near if named else (lambda obs, reward, info: near(obs, reward, info))
    return sim.make_env("gym:Pendulum-v1", num_envs=num_envs, seed=seed, device=device,
                        success_fn=fn)
"""


@pytest.mark.parametrize("named", [True, False])
def test_a_gymnasium_success_function_is_recorded_so_eval_uses_it(
    tmp_path: Path, monkeypatch, named: bool
) -> None:
    """A success function given as a callable is recorded as ``module:function`` (so the
    rebuilt env judges success the same way); one that cannot be named again (a lambda) makes
    the file name the user's own factory instead of the bare gymnasium id."""
    (tmp_path / "my_gym_wrapper.py").write_text(_GYM_WRAPPER)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", ".")])
    out = tmp_path / "rec.hdf5"
    expert = tmp_path / "zero_expert.py"
    expert.write_text(
        "import torch\n\nclass Zero:\n    def __init__(self, env, noise_std=0.0, seed=0):\n"
        "        self.n = env.num_envs\n\n    def act(self, obs):\n"
        "        return torch.zeros(obs['state'].shape[0], 1)\n"
    )
    import sim.expert_registry as experts

    monkeypatch.setattr(experts, "_REGISTERED", dict(experts._REGISTERED))
    sys_path = __import__("sys").path
    monkeypatch.setattr("sys.path", [*sys_path, str(tmp_path)])
    experts.register_expert("gym:Pendulum-v1", __import__("zero_expert").Zero)
    run_record(
        RecordConfig(env="my_gym_wrapper:make", out=out, episodes=1, num_envs=1,
                     env_kwargs=f'{{"named": {str(named).lower()}}}'),
        progress=False,
    )  # fmt: skip
    args = read_robomimic(out).env_args
    if named:
        assert args["env_name"] == "gym:Pendulum-v1"
        assert args["env_kwargs"]["success_fn"] == "my_gym_wrapper:near"
    else:
        assert args["env_name"] == "my_gym_wrapper:make"
        assert args["env_kwargs"] == {"named": False}
