"""make_env resolves every spec kind; bad specs and options are one-line EnvSpecErrors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import sim
from sim.adapters.gymnasium import GymnasiumVecEnv
from sim.errors import EnvSpecError
from sim.registry import _REGISTRY, available_envs, make_env, register_env
from sim.tasks.cube import PushEnv
from sim.toy import PointReachEnv


def test_builtin_task_and_options() -> None:
    env = make_env("push", num_envs=2, seed=0, controller="joint_delta")
    assert isinstance(env, PushEnv) and env.action_dim == 8 and env.num_envs == 2
    with pytest.raises(EnvSpecError, match=r"env 'push' takes no option 'speed'; its options: "
                       r"\['controller', 'reward_type', 'horizon', 'terminate_on_success', 'randomize'\]"):  # fmt: skip
        make_env("push", speed=2)
    assert isinstance(sim.make("reach"), sim.ManipulationEnv)  # sim.make still works


def test_module_factory_and_gym_ids() -> None:
    env = make_env("sim.toy:make_point_env", num_envs=3, seed=1, horizon=7)
    assert isinstance(env, PointReachEnv) and env.horizon == 7 and env.num_envs == 3
    for spec in ("gym:Pendulum-v1", "gymnasium:Pendulum-v1", "Pendulum-v1"):
        env = make_env(spec, num_envs=2, seed=0)
        assert isinstance(env, GymnasiumVecEnv) and env.name == "gym:Pendulum-v1"
    with pytest.raises(EnvSpecError, match="'Nope-v9' is not a gymnasium id"):
        make_env("gym:Nope-v9")
    with pytest.raises(EnvSpecError, match="cannot import module 'no_such_mod'"):
        make_env("no_such_mod:make")
    with pytest.raises(EnvSpecError, match="module 'sim.toy' has no 'nothing'"):
        make_env("sim.toy:nothing")


def test_unknown_name_lists_available() -> None:
    with pytest.raises(EnvSpecError) as e:
        make_env("reacher3d")
    msg = str(e.value)
    assert "unknown env 'reacher3d'" in msg and "'push'" in msg and "'point'" in msg
    assert "module:factory" in msg and "\n" not in msg


def test_register_env_and_gym_env_factory() -> None:
    import gymnasium as gym

    def factory(num_envs: int = 1, seed: int | None = None, device: str = "cpu"):
        return gym.make("MountainCarContinuous-v0")  # a plain gym.Env: wrapped by make_env

    register_env("car_test", factory)
    try:
        assert "car_test" in available_envs()
        env = make_env("car_test", seed=0)
        assert isinstance(env, GymnasiumVecEnv) and env.observation_space["state"].shape == (2,)
        with pytest.raises(EnvSpecError, match="already registered"):
            register_env("car_test", factory)
        with pytest.raises(EnvSpecError, match="takes no option 'x'; its options: none"):
            make_env("car_test", x=1)
    finally:
        _REGISTRY.pop("car_test")


def test_entry_point_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package installed with a ``robot_rl.envs`` entry point, as pip would lay it out."""
    (tmp_path / "my_envs.py").write_text(
        textwrap.dedent(
            """
            from sim.toy import PointReachEnv

            def make(num_envs=1, seed=None, device="cpu", horizon=5):
                env = PointReachEnv(num_envs, device, seed, horizon=horizon)
                env.name = "my_point"
                return env
            """
        )
    )
    dist = tmp_path / "my_envs-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-envs\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[robot_rl.envs]\nmy_point = my_envs:make\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "my_point" in available_envs()
    env = make_env("my_point", num_envs=2, seed=0, horizon=9)
    assert env.name == "my_point" and env.horizon == 9
    with pytest.raises(EnvSpecError, match="takes no option 'colour'"):
        make_env("my_point", colour="red")
