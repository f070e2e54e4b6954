"""robomimic-layout HDF5: exact layout, round trip, robomimic's own files, and every error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch

from robot_rl.data import read_robomimic, write_robomimic
from robot_rl.errors import DatasetError, OutputExistsError

ENV_ARGS = {"env_name": "lift", "env_type": "robot_rl", "env_kwargs": {"control_freq": 20}}


def make_episode(length: int, seed: int, *, quality: str = "expert") -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    pos = rng.normal(size=(length + 1, 3))
    dones = np.zeros(length, dtype=bool)
    dones[-1] = quality == "expert"
    return {
        "obs": {"joint_pos": pos[:-1].copy(), "object": rng.normal(size=(length, 2))},
        "next_obs": {"joint_pos": pos[1:].copy(), "object": rng.normal(size=(length, 2))},
        "actions": rng.uniform(-1, 1, size=(length, 4)),
        "rewards": rng.normal(size=length),
        "dones": dones,
        "states": rng.normal(size=(length, 5)),
        "attrs": {"quality": quality, "success": quality == "expert"},
    }


@pytest.fixture
def episodes() -> list[dict[str, Any]]:
    return [make_episode(5, 0), make_episode(3, 1, quality="noisy"), make_episode(4, 2)]


def test_layout_is_robomimic(tmp_path: Path, episodes: list[dict[str, Any]]) -> None:
    path = tmp_path / "sub" / "demos.hdf5"
    write_robomimic(path, episodes, ENV_ARGS, valid_fraction=0.34, seed=1)
    with h5py.File(path, "r") as f:
        assert set(f) == {"data", "mask"}
        data = f["data"]
        assert data.attrs["total"] == 12
        assert json.loads(data.attrs["env_args"]) == ENV_ARGS
        assert list(data) == ["demo_0", "demo_1", "demo_2"]
        demo = data["demo_1"]
        assert demo.attrs["num_samples"] == 3
        assert demo.attrs["quality"] == "noisy"
        assert not demo.attrs["success"]
        assert set(demo) == {"actions", "rewards", "dones", "states", "obs", "next_obs"}
        assert set(demo["obs"]) == set(demo["next_obs"]) == {"joint_pos", "object"}
        assert demo["actions"].shape == (3, 4)
        assert demo["dones"].dtype == np.int64
        np.testing.assert_array_equal(demo["obs/object"][()], episodes[1]["obs"]["object"])
        train, valid = f["mask/train"][()], f["mask/valid"][()]
        assert train.dtype.kind == "S" and valid.dtype.kind == "S"
        assert len(valid) == 1
        assert sorted(train.tolist() + valid.tolist()) == [b"demo_0", b"demo_1", b"demo_2"]


def test_env_args_defaults_filled(tmp_path: Path, episodes: list[dict[str, Any]]) -> None:
    write_robomimic(tmp_path / "d.hdf5", episodes, {"env_name": "lift"})
    with h5py.File(tmp_path / "d.hdf5", "r") as f:
        meta = json.loads(f["data"].attrs["env_args"])
    assert meta == {"env_name": "lift", "env_type": "robot_rl", "env_kwargs": {}}


def test_round_trip(tmp_path: Path, episodes: list[dict[str, Any]]) -> None:
    path = tmp_path / "demos.hdf5"
    write_robomimic(path, episodes, ENV_ARGS, valid_fraction=0.0)
    ds = read_robomimic(path)
    assert ds.num_episodes == 3 and ds.num_transitions == 12
    assert ds.env_args == ENV_ARGS
    assert ds.episode_names == ["demo_0", "demo_1", "demo_2"]
    assert ds.episode_attrs[1] == {"quality": "noisy", "success": False}
    assert ds.episode_lengths.tolist() == [5, 3, 4]
    for i, ep in enumerate(episodes):
        got = ds.episode(i)
        for key in ("joint_pos", "object"):
            np.testing.assert_allclose(got["obs"][key].numpy(), ep["obs"][key], rtol=1e-6)
            np.testing.assert_allclose(got["next_obs"][key].numpy(), ep["next_obs"][key], rtol=1e-6)
        np.testing.assert_allclose(got["actions"].numpy(), ep["actions"], rtol=1e-6)
        np.testing.assert_allclose(got["rewards"].numpy(), ep["rewards"], rtol=1e-6)
        np.testing.assert_array_equal(got["states"].numpy(), ep["states"])
        np.testing.assert_array_equal(got["terminals"].numpy(), ep["dones"])
        # Every episode ends, whether or not it terminated.
        assert got["dones"].tolist() == [0.0] * (len(ep["actions"]) - 1) + [1.0]
    valid = read_robomimic(path, filter_key="train", obs_keys=["object"])
    assert valid.num_episodes == 3 and valid.obs_keys == ["object"]


def write_robomimic_style(path: Path, num_demos: int = 11, **drop: bool) -> None:
    """A file as robomimic writes it: no next_obs, demos created out of order, int dones."""
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1, "env_kwargs": {}})
        for i in np.random.default_rng(0).permutation(num_demos):
            g = data.create_group(f"demo_{i}")
            length = 2 + i % 3
            g.attrs["num_samples"] = length
            g.attrs["model_file"] = "<mujoco/>"
            g["actions"] = np.full((length, 2), float(i))
            g["obs/robot0_eef_pos"] = np.arange(length * 3, dtype=np.float64).reshape(length, 3)
            if not drop.get("rewards"):
                g["rewards"] = np.arange(length, dtype=np.float64)
            if not drop.get("dones"):
                g["dones"] = np.eye(length, dtype=np.int64)[-1]
            if not drop.get("states"):
                g["states"] = np.zeros((length, 7))
        f["mask/valid"] = np.array(["demo_10", "demo_2"], dtype="S")


def test_reads_robomimic_file(tmp_path: Path) -> None:
    path = tmp_path / "low_dim.hdf5"
    write_robomimic_style(path)
    ds = read_robomimic(path)
    assert ds.episode_names == [f"demo_{i}" for i in range(11)]
    assert ds.env_args["type"] == 1
    assert ds.episode_attrs[0] == {"model_file": "<mujoco/>"}
    for i in range(11):
        ep = ds.episode(i)
        assert (ep["actions"] == i).all()
        obs = ep["obs"]["robot0_eef_pos"]
        # next_obs is obs shifted by one step, the last step repeated.
        assert ep["next_obs"]["robot0_eef_pos"].tolist() == obs[1:].tolist() + obs[-1:].tolist()
        assert ep["terminals"][-1] == 1 and ep["terminals"][:-1].sum() == 0
    valid = read_robomimic(path, filter_key="valid")
    assert valid.episode_names == ["demo_2", "demo_10"]
    assert (valid.actions[:4] == 2).all() and (valid.actions[4:] == 10).all()


def test_reads_file_without_rewards_dones_states(tmp_path: Path) -> None:
    path = tmp_path / "bare.hdf5"
    write_robomimic_style(path, num_demos=2, rewards=True, dones=True, states=True)
    ds = read_robomimic(path)
    assert ds.rewards.tolist() == [0.0] * 5
    assert ds.terminals.tolist() == [0, 1, 0, 0, 1]
    assert ds.states is None


def test_refuses_to_overwrite(tmp_path: Path, episodes: list[dict[str, Any]]) -> None:
    path = tmp_path / "demos.hdf5"
    write_robomimic(path, episodes[:1], ENV_ARGS)
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_robomimic(path, episodes, ENV_ARGS)
    assert path.read_bytes() == before
    write_robomimic(path, episodes, ENV_ARGS, overwrite=True)
    assert read_robomimic(path).num_episodes == 3


def test_failed_write_keeps_existing_file(tmp_path: Path, episodes: list[dict[str, Any]]) -> None:
    path = tmp_path / "demos.hdf5"
    write_robomimic(path, episodes[:1], ENV_ARGS)
    before = path.read_bytes()
    episodes[2]["attrs"]["bad"] = {"nested": "dicts cannot be HDF5 attrs"}
    with pytest.raises(DatasetError, match="demo_2 attr 'bad'"):
        write_robomimic(path, episodes, ENV_ARGS, overwrite=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demos.hdf5"]


@pytest.mark.parametrize(
    ("part", "key"),
    [("actions", None), ("obs", "object"), ("next_obs", "joint_pos"), ("rewards", None)],
)
def test_write_refuses_nan(
    tmp_path: Path, episodes: list[dict[str, Any]], part: str, key: str | None
) -> None:
    target = episodes[1][part] if key is None else episodes[1][part][key]
    target[1] = np.inf if part == "rewards" else np.nan
    name = part if key is None else f"{part}/{key}"
    with pytest.raises(DatasetError, match=f"demo_1 {name} contains NaN or inf"):
        write_robomimic(tmp_path / "d.hdf5", episodes, ENV_ARGS)
    assert not (tmp_path / "d.hdf5").exists()


def test_write_refuses_inconsistent_lengths(tmp_path: Path, episodes: list[dict[str, Any]]) -> None:
    episodes[0]["rewards"] = episodes[0]["rewards"][:-1]
    with pytest.raises(DatasetError, match="demo_0 rewards has 4 steps but actions has 5"):
        write_robomimic(tmp_path / "d.hdf5", episodes, ENV_ARGS)


def test_read_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        read_robomimic(tmp_path / "nope.hdf5")


def test_read_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "notes.hdf5"
    path.write_text("not a dataset")
    with pytest.raises(DatasetError, match="not an HDF5 file"):
        read_robomimic(path)


def test_read_truncated_file(tmp_path: Path, episodes: list[dict[str, Any]]) -> None:
    path = tmp_path / "demos.hdf5"
    write_robomimic(path, episodes, ENV_ARGS)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DatasetError, match="demos.hdf5: cannot read HDF5 data"):
        read_robomimic(path)


def test_read_no_data_group(tmp_path: Path) -> None:
    path = tmp_path / "other.hdf5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(DatasetError, match="no 'data' group"):
        read_robomimic(path)


def test_read_no_demos(tmp_path: Path) -> None:
    path = tmp_path / "empty.hdf5"
    with h5py.File(path, "w") as f:
        f.create_group("data")
    with pytest.raises(DatasetError, match="no demos"):
        read_robomimic(path)


def test_read_missing_obs_key_lists_available(tmp_path: Path) -> None:
    path = tmp_path / "low_dim.hdf5"
    write_robomimic_style(path, num_demos=2)
    with pytest.raises(DatasetError, match="no obs key 'object'; available: robot0_eef_pos"):
        read_robomimic(path, obs_keys=["robot0_eef_pos", "object"])


def test_read_unknown_filter_key_lists_available(tmp_path: Path) -> None:
    path = tmp_path / "low_dim.hdf5"
    write_robomimic_style(path, num_demos=2)
    with pytest.raises(DatasetError, match="unknown filter key 'train'; available: valid"):
        read_robomimic(path, filter_key="train")


def test_read_inconsistent_lengths(tmp_path: Path) -> None:
    path = tmp_path / "low_dim.hdf5"
    write_robomimic_style(path, num_demos=2)
    with h5py.File(path, "a") as f:
        del f["data/demo_1/obs/robot0_eef_pos"]
        f["data/demo_1/obs/robot0_eef_pos"] = np.zeros((7, 3))
    with pytest.raises(
        DatasetError, match="demo_1 obs/robot0_eef_pos has 7 steps but actions has 3"
    ):
        read_robomimic(path)


@pytest.mark.parametrize("dataset", ["actions", "obs/robot0_eef_pos"])
def test_read_refuses_nan(tmp_path: Path, dataset: str) -> None:
    path = tmp_path / "low_dim.hdf5"
    write_robomimic_style(path, num_demos=2)
    with h5py.File(path, "a") as f:
        f[f"data/demo_1/{dataset}"][0, 0] = np.nan
    with pytest.raises(DatasetError, match=f"demo_1 {dataset} contains NaN or inf"):
        read_robomimic(path)


def test_images_stay_uint8(tmp_path: Path, episodes: list[dict[str, Any]]) -> None:
    for ep in episodes:
        steps = len(ep["actions"])
        ep["obs"]["agentview_image"] = np.full((steps, 4, 4, 3), 255, np.uint8)
        ep["next_obs"]["agentview_image"] = np.zeros((steps, 4, 4, 3), np.uint8)
    write_robomimic(tmp_path / "d.hdf5", episodes, ENV_ARGS)
    ds = read_robomimic(tmp_path / "d.hdf5", obs_keys=["agentview_image"])
    assert ds.obs["agentview_image"].dtype == torch.uint8
    assert int(ds.obs["agentview_image"].max()) == 255


def test_write_requires_next_obs(tmp_path: Path, episodes: list[dict[str, Any]]) -> None:
    del episodes[2]["next_obs"]
    with pytest.raises(DatasetError, match="demo_2 has no next_obs"):
        write_robomimic(tmp_path / "d.hdf5", episodes, ENV_ARGS)


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5])
def test_a_validation_split_must_leave_training_episodes(
    tmp_path: Path, episodes: list[dict[str, Any]], fraction: float
) -> None:
    from robot_rl.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        write_robomimic(tmp_path / "d.hdf5", episodes, ENV_ARGS, valid_fraction=fraction)
    assert str(err.value) == f"valid_fraction must be in [0, 1), got {fraction}"
    assert not (tmp_path / "d.hdf5").exists()
