"""Helpers the algorithms share, checked in process: the saved reward convention, the offline RL
actor and critics, numeric-setting and device refusals, seeding, task datasets, TensorBoard
writers and logs."""

from __future__ import annotations

import json
import random
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch

from robot_rl.algos import wsrl
from robot_rl.algos.agent import RewardConvention, saved_reward_convention
from robot_rl.algos.bc import BCConfig, train_bc
from robot_rl.algos.calql import CalQLConfig
from robot_rl.algos.common import (
    _Writer,
    build_actor_critic,
    check_device,
    check_fields,
    default_log_dir,
    load_task_dataset,
    make_writer,
    publish_log,
    seed_everything,
)
from robot_rl.algos.diffusion import DiffusionConfig
from robot_rl.data import read_robomimic
from robot_rl.errors import ConfigError, DatasetError
from robot_rl.policies.modules import ACTIVATIONS, mlp
from robot_rl.train.finetune import FinetuneConfig, resolve


@pytest.mark.parametrize(("config", "expected"), [
    ({"reward": {"scale": 2.0, "bias": -1.0, "discount": 0.9}}, RewardConvention(2.0, -1.0, 0.9)),
    # An offline trainer that predates the entry: its train settings (discount 0.99 if unset).
    ({"train": {"reward_scale": 3, "reward_bias": 0.5, "discount": 0.95}},
     RewardConvention(3.0, 0.5, 0.95)),
    ({"train": {"reward_scale": 3, "reward_bias": 0.5}}, RewardConvention(3.0, 0.5, 0.99)),
    # The entry wins over the settings; half a convention or none is no convention.
    ({"reward": {"scale": 1, "bias": 0, "discount": 0.8}, "train": {"reward_scale": 3,
      "reward_bias": 0.5}}, RewardConvention(1.0, 0.0, 0.8)),
    ({"train": {"reward_scale": 3}}, None),
    ({"train": {"reward_bias": 0.5}}, None),
    ({"train": {}}, None),
    ({}, None),
])  # fmt: skip
def test_saved_reward_convention(config: dict, expected: RewardConvention | None) -> None:
    assert saved_reward_convention(config) == expected


def test_offline_rl_actors_act_in_the_env_box_not_the_demos(push_demos: Path) -> None:
    """push's expert keeps the gripper in [0.84, 1]: a min/max action normalizer would leave
    the actor (and everything fine-tuned from it) unable to open it."""

    data = read_robomimic(push_demos)
    assert data.actions[:, -1].min() > 0.5  # the demos use part of the gripper's range
    cfg = CalQLConfig(dataset=push_demos, out=push_demos.parent / "unused", hidden_dims=[8, 4],
                      num_critics=3, critic_hidden_dims=[8], critic_layer_norm=False)  # fmt: skip
    actor, critic, target = build_actor_critic(cfg, data, {"env_name": "push"})
    scale, offset = actor.normalizer.params["action"]
    assert torch.equal(scale, torch.ones(data.action_dim))
    assert torch.equal(offset, torch.zeros(data.action_dim))
    floats = sorted(k for k, v in data.obs.items() if v.is_floating_point())
    assert sorted(actor.obs_keys) == floats and actor.config.hidden_dims == [8, 4]
    assert actor.config.obs_dim == sum(data.obs[k].shape[-1] for k in floats)
    assert (critic.num_critics, critic.config.hidden_dims, critic.config.layer_norm) == (
        3,
        [8],
        False,
    )
    assert all(torch.equal(a, b) for a, b in zip(critic.parameters(), target.parameters(),
                                                 strict=True))  # fmt: skip


@pytest.mark.parametrize(("fields", "message"), [
    ({"steps": 0}, "steps must be >= 1, got 0 (--steps)"),
    ({"lr": 0.0}, "lr must be > 0, got 0.0 (--lr)"),
    ({"discount": 1.5}, "discount must be in [0, 1], got 1.5 (--discount)"),
    ({"tau": 0.0}, "tau must be in (0, 1], got 0.0 (--tau)"),
    ({"expectile": 1.0}, "expectile must be in (0, 1), got 1.0 (--expectile)"),
    ({"num_train_timesteps": 0}, "num_train_timesteps must be >= 1, got 0 (--num-train-timesteps)"),
    ({"reward_scale": float("nan")}, "reward_scale must be a finite number, got nan (--reward-scale)"),
    ({"cql_target_action_gap": "x"},
     "cql_target_action_gap must be a finite number, got 'x' (--cql-target-action-gap)"),
    ({"hidden_dims": []}, "hidden_dims needs one or more widths >= 1, got [] (--hidden-dims)"),
    ({"hidden_dims": None, "critic_hidden_dims": [4, 0]},
     "critic_hidden_dims needs one or more widths >= 1, got [4, 0] (--critic-hidden-dims)"),
    ({"steps": None, "lr": -1.0}, "lr must be > 0, got -1.0 (--lr)"),
])  # fmt: skip
def test_numeric_settings_are_refused_where_declared(fields: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        check_fields(SimpleNamespace(**fields))
    assert str(err.value) == message


def test_the_edges_of_each_numeric_range_are_accepted() -> None:
    check_fields(SimpleNamespace(steps=1, lr=1e-9, discount=1.0, tau=1.0, expectile=0.5,
                                 weight_decay=0.0, hidden_dims=[1], use_ema=True))  # fmt: skip
    check_fields(SimpleNamespace(discount=0.0, cql_alpha=0.0))


@pytest.mark.skipif(torch.cuda.is_available(), reason="the messages of a machine without CUDA")
def test_devices_this_machine_lacks_are_one_line_errors() -> None:
    cases = {"cuda": "--device cuda: CUDA is not available on this machine",
             "cuda:1": "--device cuda:1: CUDA is not available on this machine",
             "meta": "--device 'meta': use cpu, cuda or cuda:<index>"}  # fmt: skip
    if not torch.backends.mps.is_available():
        cases["mps"] = "--device mps: MPS is not available on this machine"
    for device, message in cases.items():
        with pytest.raises(ConfigError) as err:
            check_device(device)
        assert str(err.value) == message
    with pytest.raises(ConfigError) as err:
        check_device("gpu0")
    assert str(err.value).startswith("--device 'gpu0' is not a torch device: ")
    check_device("cpu")


def test_the_training_log_lands_in_the_policy_directory(push_demos: Path, tmp_path: Path) -> None:
    cfg = BCConfig(dataset=push_demos, out=tmp_path / "bc", steps=2, hidden_dims=[8], batch_size=4)
    train_bc(cfg, progress=False)
    assert list((cfg.out / "tb").glob("events.out.tfevents.*"))
    assert not default_log_dir(cfg).exists()  # the staging copy moved, not copied
    # A log directory the user chose stays where it is.
    mine = BCConfig(dataset=push_demos, out=tmp_path / "bc2", steps=2, hidden_dims=[8],
                    batch_size=4, log_dir=tmp_path / "logs")  # fmt: skip
    train_bc(mine, progress=False)
    assert list((tmp_path / "logs").glob("events.out.tfevents.*"))
    assert not (mine.out / "tb").exists()


def test_diffusion_settings_resolve_from_a_known_scale() -> None:
    with pytest.raises(ConfigError) as err:
        DiffusionConfig(dataset=Path("d"), out=Path("o"), scale="huge").resolved()  # type: ignore[arg-type]
    assert str(err.value) == "scale='huge': choose from ['cpu', 'paper']"
    cfg = DiffusionConfig(dataset=Path("d"), out=Path("o"), steps=1, batch_size=1).resolved()
    assert (cfg.steps, cfg.batch_size) == (1, 1) and cfg.horizon is not None


def test_a_reward_convention_refuses_nonsense() -> None:
    for discount in (0.0, 1.0, 1.5):
        with pytest.raises(ConfigError) as err:
            RewardConvention(1.0, 0.0, discount)
        assert str(err.value) == f"discount must be in (0, 1), got {discount}"
    with pytest.raises(ConfigError) as err:
        RewardConvention(0.0, 1.0, 0.9)
    assert str(err.value) == "reward_scale must not be 0"
    assert RewardConvention(-2.0, 0.0, 0.999).to_json() == {"scale": -2.0, "bias": 0.0,
                                                            "discount": 0.999}  # fmt: skip


def _copy(point_demos: Path, tmp_path: Path) -> Path:
    path = tmp_path / "d.hdf5"
    shutil.copy(point_demos, path)
    return path


def test_a_task_dataset_honours_obs_keys_and_filter_key(tmp_path: Path, point_demos: Path) -> None:
    path = _copy(point_demos, tmp_path)
    with h5py.File(path, "r+") as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        f["data"].attrs["env_args"] = json.dumps({**env_args, "env_kwargs": {"horizon": 7}})
        del f["mask/train"]
        f["mask/train"] = [b"demo_1", b"demo_3"]
    data, env_info = load_task_dataset(path, obs_keys=["pos"], filter_key="train")
    assert list(data.obs) == ["pos"] and data.episode_names == ["demo_1", "demo_3"]
    assert env_info == {"env_name": "point", "env_kwargs": {"horizon": 7}}
    with pytest.raises(DatasetError):
        load_task_dataset(path, filter_key="nope")


def test_wsrl_needs_a_start() -> None:
    cfg = resolve(FinetuneConfig(algo="wsrl", task="point", out=Path("unused")))
    with pytest.raises(ConfigError) as err:
        wsrl.build(cfg, None, None)
    assert str(err.value) == "wsrl needs --init, a Cal-QL policy directory with critics"


def test_seed_everything_seeds_python_numpy_and_torch() -> None:
    def draws() -> tuple[float, float, float, float]:
        gen = seed_everything(3)
        return (random.random(), float(np.random.rand()), float(torch.rand(1)),
                float(torch.rand(1, generator=gen)))  # fmt: skip

    assert draws() == draws()


def test_a_task_dataset_without_env_kwargs_and_a_bad_one(tmp_path: Path, point_demos: Path) -> None:
    path = _copy(point_demos, tmp_path)
    with h5py.File(path, "r+") as f:
        f["data"].attrs["env_args"] = json.dumps({"env_name": "point"})
    assert load_task_dataset(path)[1] == {"env_name": "point", "env_kwargs": {}}
    with h5py.File(path, "r+") as f:
        actions = f["data/demo_0/actions"][()]
        del f["data/demo_0/actions"]
        f["data/demo_0/actions"] = 2 * actions + 1.5
    with pytest.raises(DatasetError) as err:
        load_task_dataset(path)
    assert str(err.value).startswith(f"{path}: actions reach ")


def test_writers_default_to_runs_and_never_hang_on_the_way_out_of_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with make_writer(None, "exp") as writer:
        writer.add_scalar("x", 1.0, 0)
    assert list((tmp_path / "runs" / "exp").glob("events.out.tfevents.*"))
    # A close stuck on the writer's lock (Ctrl+C inside it): the error path gives up waiting.
    release = threading.Event()
    monkeypatch.setattr(_Writer, "CLOSE_TIMEOUT_S", 0.2)
    writer = make_writer(tmp_path / "stuck", "unused")
    real_close = writer.close
    monkeypatch.setattr(writer, "close", lambda: release.wait(5) or real_close())
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt), writer:
        raise KeyboardInterrupt
    assert time.monotonic() - start < 2.0
    (closer,) = [t for t in threading.enumerate() if t.name == "writer-close"]
    assert closer.daemon  # it cannot keep the process alive
    release.set()
    closer.join(5)


def test_mlp_names_an_unknown_activation() -> None:
    with pytest.raises(ValueError) as err:
        mlp(2, [4], 1, activation="swish2")
    assert str(err.value) == f"unknown activation 'swish2'; choose from {sorted(ACTIVATIONS)}"


def test_publishing_the_log_replaces_an_old_one_and_needs_both_directories(tmp_path: Path) -> None:
    cfg = SimpleNamespace(out=tmp_path / "policy", log_dir=None)
    cfg.out.mkdir()
    publish_log(cfg)  # no staged log: nothing to move
    assert not (cfg.out / "tb").exists()
    staging = default_log_dir(cfg)
    staging.mkdir()
    (staging / "new").write_text("1")
    (cfg.out / "tb").mkdir()
    (cfg.out / "tb" / "old").write_text("0")
    publish_log(cfg)
    assert sorted(p.name for p in (cfg.out / "tb").iterdir()) == ["new"] and not staging.exists()
