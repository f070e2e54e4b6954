"""robomimic-layout HDF5, the details the round trip does not see.

Every refusal of ``read_robomimic`` / ``write_robomimic`` is one exact line naming the file,
the demo and the field (a user fixes a 200-demo file from that line alone); per-step scalars
stored as ``[T, 1]`` are read as ``[T]``; demos load in numeric order; the train/valid split is
a seeded draw without replacement; the file follows the umask and its temporary name is one
``clean_leftovers`` recognises.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from robot_rl.data import hdf5 as hdf5_module
from robot_rl.data import read_robomimic, write_robomimic
from robot_rl.errors import ConfigError, DatasetError

ENV_ARGS = {"env_name": "reach"}


def episode(length: int = 3, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "obs": {"a": rng.normal(size=(length, 2)), "b": rng.normal(size=(length, 1))},
        "next_obs": {"a": rng.normal(size=(length, 2)), "b": rng.normal(size=(length, 1))},
        "actions": rng.uniform(-1, 1, size=(length, 3)),
        "rewards": rng.normal(size=length),
        "dones": np.zeros(length),
        "states": rng.normal(size=(length, 4)),
    }


@pytest.fixture
def written(tmp_path: Path) -> Path:
    path = tmp_path / "d.hdf5"
    write_robomimic(path, [episode(3, 0), episode(4, 1), episode(2, 2)], ENV_ARGS)
    return path


def _edit(path: Path, change: Callable[[h5py.File], None]) -> None:
    with h5py.File(path, "r+") as f:
        change(f)


def _replace(name: str, value: Any) -> Callable[[h5py.File], None]:
    def change(f: h5py.File) -> None:
        del f[name]
        f[name] = value

    return change


def _set_attr(name: str, value: Any) -> Callable[[h5py.File], None]:
    return lambda f: f["data"].attrs.__setitem__(name, value)


def _group(name: str) -> Callable[[h5py.File], None]:
    def change(f: h5py.File) -> None:
        del f[name]
        f.create_group(name).create_dataset("x", data=np.zeros(3))

    return change


# (id, edit of the written file, read keyword arguments, the message after "<path>: ")
READ_CASES = [
    ("filter_key, no masks", lambda f: f.__delitem__("mask"), {"filter_key": "train"},
     "unknown filter key 'train'; available: none"),
    ("filter_key, two masks", lambda f: None, {"filter_key": "test"},
     "unknown filter key 'test'; available: train, valid"),
    ("mask lists a missing demo", _replace("mask/train", np.array([b"demo_0", b"demo_7", b"demo_9"])),
     {"filter_key": "train"}, "mask/train lists demo_7, not in data"),
    ("env_args a list", _set_attr("env_args", "[1, 2]"), {},
     "data attr env_args must be a JSON object, got list"),
    ("env_kwargs a number", _set_attr("env_args", json.dumps({"env_name": "x", "env_kwargs": 3})),
     {}, "env_args.env_kwargs must be a JSON object"),
    ("no actions", lambda f: f.__delitem__("data/demo_1/actions"), {}, "demo_1 has no 'actions'"),
    ("no obs", lambda f: f.__delitem__("data/demo_1/obs"), {}, "demo_1 has no 'obs'"),
    ("obs an array", _replace("data/demo_1/obs", np.zeros((4, 2))), {},
     "demo_1/obs is not a group of observation keys"),
    ("unknown obs key", lambda f: None, {"obs_keys": ["a", "c"]},
     "demo_0 has no obs key 'c'; available: a, b"),
    ("actions a group", _group("data/demo_1/actions"), {},
     "demo_1 actions is a group, expected an array"),
    ("actions a string scalar", _replace("data/demo_1/actions", "up"), {},
     "demo_1 actions is a scalar, expected one entry per step"),
    ("obs key a number scalar", _replace("data/demo_1/obs/b", 1.5), {},
     "demo_1 obs/b is a scalar, expected one entry per step"),
    ("next_obs key a group", _group("data/demo_1/next_obs/a"), {},
     "demo_1 next_obs/a is a group, expected an array"),
    ("rewards strings", _replace("data/demo_1/rewards", np.array([b"a", b"bc", b"d", b"e"])), {},
     "demo_1 rewards has non-numeric dtype |S2"),
    ("dones complex", _replace("data/demo_1/dones", np.zeros(4, np.complex128)), {},
     "demo_1 dones has complex dtype complex128"),
    ("states a scalar", _replace("data/demo_1/states", 2), {},
     "demo_1 states is a scalar, expected one entry per step"),
    ("num_samples wrong", lambda f: f["data/demo_1"].attrs.__setitem__("num_samples", 7), {},
     "demo_1: num_samples is 7 but actions has 4"),
    ("rewards two columns", _replace("data/demo_1/rewards", np.zeros((4, 2))), {},
     "demo_1 rewards and dones must be [T]"),
    ("dones wrong length", _replace("data/demo_2/dones", np.zeros(5)), {},
     "demo_2 dones has 5 steps but actions has 2"),
    ("actions step shape", _replace("data/demo_2/actions", np.zeros((2, 5))), {},
     "demo_2 actions has step shape (5,) but demo_0 has (3,)"),
    ("float32 NaN", _replace("data/demo_2/actions", np.full((2, 3), np.nan, np.float32)), {},
     "demo_2 actions contains NaN or inf"),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "kwargs", "message"), [c[1:] for c in READ_CASES],
                         ids=[c[0] for c in READ_CASES])  # fmt: skip
def test_read_refusals_are_exact_lines(
    written: Path, edit: Callable[[h5py.File], None], kwargs: dict[str, Any], message: str
) -> None:
    _edit(written, edit)
    with pytest.raises(DatasetError) as err:
        read_robomimic(written, **kwargs)
    assert str(err.value) == f"{written}: {message}"


def test_invalid_env_args_json_names_the_parse_error(written: Path) -> None:
    _edit(written, _set_attr("env_args", "{oops"))
    with pytest.raises(json.JSONDecodeError) as parse:
        json.loads("{oops")
    with pytest.raises(DatasetError) as err:
        read_robomimic(written)
    assert str(err.value) == f"{written}: data attr env_args is not valid JSON: {parse.value}"


def _refusal(
    path: Path, episodes: list[dict[str, Any]], env_args: dict[str, Any] = ENV_ARGS
) -> str:
    with pytest.raises(DatasetError) as err:
        write_robomimic(path, episodes, env_args)
    assert not path.exists()
    return str(err.value)


def _with(ep: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**ep, **changes}


def test_write_refusals_are_exact_lines(tmp_path: Path) -> None:
    p = tmp_path / "d.hdf5"
    ep = episode(3)
    with pytest.raises(DatasetError) as err:
        write_robomimic(tmp_path, [ep], ENV_ARGS, overwrite=True)
    assert str(err.value) == f"{tmp_path} is a directory; expected an HDF5 file path"
    assert _refusal(p, []) == f"{p}: no episodes to write"
    assert _refusal(p, [ep], {"env_type": "x"}) == f"{p}: env_args has no env_name"
    assert _refusal(p, [ep], {"env_name": "x", "env_kwargs": {"o": object()}}) == (
        f"{p}: env_args is not JSON-serializable: Object of type object is not JSON serializable"
    )
    two_missing = {k: v for k, v in ep.items() if k not in ("next_obs", "dones")}
    assert _refusal(p, [ep, two_missing]) == f"{p}: demo_1 has no next_obs, dones"
    other_keys = _with(ep, next_obs={"a": ep["obs"]["a"]})
    assert _refusal(p, [other_keys]) == f"{p}: demo_0 obs and next_obs have different keys"
    assert _refusal(p, [_with(ep, actions=np.zeros(3))]) == (
        f"{p}: demo_0 actions must be [T, A], got shape (3,)"
    )
    empty = _with(ep, actions=np.zeros((0, 3)))
    assert _refusal(p, [ep, empty]) == f"{p}: demo_1 has no samples"
    assert _refusal(p, [_with(ep, rewards=np.float64(1.0))]) == (
        f"{p}: demo_0 rewards is a scalar, expected one entry per step"
    )
    assert _refusal(p, [_with(ep, states=np.zeros((4, 4)))]) == (
        f"{p}: demo_0 states has 4 steps but actions has 3"
    )
    assert _refusal(p, [_with(ep, dones=np.zeros(2))]) == (
        f"{p}: demo_0 dones has 2 steps but actions has 3"
    )
    assert _refusal(p, [_with(ep, dones=np.zeros((3, 2)))]) == (
        f"{p}: demo_0 rewards and dones must be [T]"
    )
    narrow = _with(ep, actions=np.zeros((3, 2)))
    assert _refusal(p, [ep, ep, narrow]) == (
        f"{p}: demo_2 actions has step shape (2,) but demo_0 has (3,)"
    )
    nan32 = _with(ep, obs={**ep["obs"], "a": np.full((3, 2), np.nan, np.float32)})
    assert _refusal(p, [nan32]) == f"{p}: demo_0 obs/a contains NaN or inf"
    with pytest.raises(ConfigError) as err:
        write_robomimic(p, [ep], ENV_ARGS, valid_fraction=1.5)
    assert str(err.value) == "valid_fraction must be in [0, 1), got 1.5"


def test_write_takes_plain_lists_for_every_field(tmp_path: Path) -> None:
    ep = episode(3)
    as_lists = {
        "obs": {k: v.tolist() for k, v in ep["obs"].items()},
        "next_obs": {k: v.tolist() for k, v in ep["next_obs"].items()},
        **{k: ep[k].tolist() for k in ("actions", "rewards", "dones", "states")},
    }
    write_robomimic(tmp_path / "d.hdf5", [as_lists], ENV_ARGS)
    ds = read_robomimic(tmp_path / "d.hdf5")
    np.testing.assert_allclose(ds.states.numpy(), ep["states"])
    np.testing.assert_allclose(ds.actions.numpy(), ep["actions"], rtol=1e-6)


def test_column_rewards_and_dones_read_as_one_entry_per_step(written: Path) -> None:
    _edit(written, _replace("data/demo_1/rewards", np.arange(4.0).reshape(4, 1)))
    _edit(written, _replace("data/demo_1/dones", np.array([[0], [0], [0], [1]])))
    ds = read_robomimic(written)
    start = int(ds.episode_starts[1])
    np.testing.assert_array_equal(ds.rewards[start : start + 4].numpy(), [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(ds.terminals[start : start + 4].numpy(), [0, 0, 0, 1])


def test_demos_load_in_numeric_order_then_other_names(tmp_path: Path) -> None:
    path = tmp_path / "d.hdf5"
    write_robomimic(path, [episode(2, s) for s in range(4)], ENV_ARGS)

    def rename(f: h5py.File) -> None:
        for old, new in [("demo_0", "demo_10"), ("demo_1", "extra"), ("demo_3", "demo_1")]:
            f.move(f"data/{old}", f"data/{new}")

    _edit(path, rename)
    assert read_robomimic(path).episode_names == ["demo_1", "demo_2", "demo_10", "extra"]


def test_byte_string_attrs_read_as_text(written: Path) -> None:
    def attrs(f: h5py.File) -> None:
        g = f["data/demo_0"]
        g.attrs["operator"] = np.bytes_("José".encode())
        g.attrs["tags"] = np.array([b"pick", "à".encode()])

    _edit(written, attrs)
    got = read_robomimic(written).episode_attrs[0]
    assert got["operator"] == "José"
    assert got["tags"] == ["pick", "à"]


def test_an_attr_named_num_samples_cannot_override_the_length(tmp_path: Path) -> None:
    path = tmp_path / "d.hdf5"
    attrs = {"num_samples": 99, "quality": "expert"}
    write_robomimic(path, [_with(episode(3), attrs=attrs)], ENV_ARGS)
    with h5py.File(path, "r") as f:
        assert f["data/demo_0"].attrs["num_samples"] == 3
    assert read_robomimic(path).episode_attrs[0] == {"quality": "expert"}


def test_valid_split_is_a_seeded_draw_without_replacement(tmp_path: Path) -> None:
    def valid(seed: int | None) -> list[bytes]:
        path = tmp_path / f"{seed}.hdf5"
        kwargs = {} if seed is None else {"seed": seed}
        write_robomimic(path, [episode(2, s) for s in range(10)], ENV_ARGS,
                        valid_fraction=0.7, overwrite=True, **kwargs)  # fmt: skip
        with h5py.File(path, "r") as f:
            return sorted(f["mask/valid"][()].tolist())

    default = valid(None)
    assert len(set(default)) == 7  # seed 0 with replacement repeats an index (6 distinct)
    assert default == valid(0) == valid(None)
    assert default != valid(1)


def test_file_mode_follows_the_umask_and_parents_are_made(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "d.hdf5"
    old = os.umask(0o022)
    try:
        write_robomimic(path, [episode(2)], ENV_ARGS)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_the_temporary_file_is_a_recognised_leftover_beside_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "d.hdf5"
    real = os.replace
    seen: list[tuple[Path, list[Path]]] = []

    def replace(src: str, dst: str) -> None:
        # What clean_leftovers would remove if the process died here (robot_rl.outputs).
        seen.append((Path(src), sorted(tmp_path.glob(".d.hdf5.*.tmp"))))
        real(src, dst)

    monkeypatch.setattr(hdf5_module.os, "replace", replace)
    write_robomimic(path, [episode(2)], ENV_ARGS)
    ((src, leftovers),) = seen
    assert leftovers == [src]
    assert path.is_file() and not src.exists()
