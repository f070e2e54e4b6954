"""Corrupt and edited datasets, fed to every offline trainer: one clean line each, nothing lost.

Each corruption edits a copy of a real scripted-expert dataset (see ``conftest.originals``).
The trainers run with a tiny budget, so a corruption that slipped through would be a fast
silent accept (exit 0), not a slow test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from _battery import Fixtures, assert_clean_error

Edit = Callable[[Path], None]


def _h5(edit: Callable[[h5py.File], None]) -> Edit:
    def apply(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            edit(f)

    return apply


def _replace(name: str, make: Callable[[np.ndarray], np.ndarray]) -> Edit:
    """Replace dataset ``name`` of demo_1 by ``make(old)``."""

    def edit(f: h5py.File) -> None:
        key = f"data/demo_1/{name}"
        old = f[key][()]
        del f[key]
        f[key] = make(old)

    return _h5(edit)


def _set(name: str, index: tuple, value: float) -> Edit:
    def make(old: np.ndarray) -> np.ndarray:
        new = old.astype(np.float64) if old.dtype != np.float64 else old.copy()
        new[index] = value
        return new

    return _replace(name, make)


def _delete(name: str) -> Edit:
    def edit(f: h5py.File) -> None:
        del f[name]

    return _h5(edit)


def _attr(name: str, value: object, where: str = "data") -> Edit:
    def edit(f: h5py.File) -> None:
        f[where].attrs[name] = value

    return _h5(edit)


def _env_args(mutate: Callable[[dict], object]) -> Edit:
    def edit(f: h5py.File) -> None:
        args = json.loads(f["data"].attrs["env_args"])
        f["data"].attrs["env_args"] = json.dumps(mutate(args))

    return _h5(edit)


def _bytes(content: Callable[[bytes], bytes]) -> Edit:
    def apply(path: Path) -> None:
        path.write_bytes(content(path.read_bytes()))

    return apply


def _group_instead(name: str) -> Edit:
    def edit(f: h5py.File) -> None:
        del f[name]
        f.create_group(name)

    return _h5(edit)


def _no_demos(f: h5py.File) -> None:
    for name in list(f["data"]):
        del f[name.join(("data/", ""))]


def _data_is_array(f: h5py.File) -> None:
    del f["data"]
    f["data"] = np.zeros(3)


def _obs_is_array(f: h5py.File) -> None:
    del f["data/demo_1/obs"]
    f["data/demo_1/obs"] = np.zeros(5)


def _mask_lists_missing(f: h5py.File) -> None:
    del f["mask/train"]
    f["mask/train"] = np.array([b"demo_0", b"demo_99"])


def _wider_actions(old: np.ndarray) -> np.ndarray:
    return np.concatenate([old, np.zeros((len(old), 1), old.dtype)], 1)


OBS = "obs/robot0_eef_pos"
CORRUPTIONS: dict[str, Edit] = {
    # the file itself
    "missing file": lambda p: p.unlink(),
    "empty file": _bytes(lambda b: b""),
    "truncated to half": _bytes(lambda b: b[: len(b) // 2]),
    "truncated to 1 kB": _bytes(lambda b: b[:1024]),
    "random bytes": _bytes(lambda b: np.random.default_rng(0).bytes(len(b))),
    "text file": _bytes(lambda b: b"demo_0,actions\n1,2\n"),
    "json file": _bytes(lambda b: b'{"data": {}}'),
    "zeroed header": _bytes(lambda b: b"\0" * 512 + b[512:]),
    # layout
    "no data group": _delete("data"),
    "data is an array": _h5(_data_is_array),
    "no demos": _h5(_no_demos),
    "demo without actions": _delete("data/demo_1/actions"),
    "demo without obs": _delete("data/demo_1/obs"),
    "obs is an array": _h5(_obs_is_array),
    "actions is a group": _group_instead("data/demo_1/actions"),
    "obs key is a group": _group_instead(f"data/demo_1/{OBS}"),
    "rewards is a group": _group_instead("data/demo_1/rewards"),
    "obs key missing in one demo": _delete(f"data/demo_1/{OBS}"),
    "mask lists a missing demo": _h5(_mask_lists_missing),
    # values
    "NaN action": _set("actions", (0, 0), np.nan),
    "inf action": _set("actions", (1, 2), np.inf),
    "-inf action": _set("actions", (0, 1), -np.inf),
    "action 1e6": _set("actions", (0, 0), 1e6),
    "action 1.5": _set("actions", (2, 3), 1.5),
    "action -1.01": _set("actions", (0, 0), -1.01),
    "action 1e300 (float64)": _set("actions", (0, 0), 1e300),
    "NaN observation": _set(OBS, (0, 0), np.nan),
    "inf observation": _set(OBS, (0, 0), np.inf),
    "observation 1e300 (float64, inf in float32)": _set(OBS, (0, 0), 1e300),
    "observation -1e39 (float64, -inf in float32)": _set(OBS, (1, 1), -1e39),
    "NaN next observation": _set(f"next_obs/{OBS[4:]}", (0, 0), np.nan),
    "next observation 1e300": _set(f"next_obs/{OBS[4:]}", (0, 0), 1e300),
    "NaN reward": _set("rewards", (0,), np.nan),
    "inf reward": _set("rewards", (0,), np.inf),
    "reward 1e300": _set("rewards", (0,), 1e300),
    # dtypes and shapes
    "string actions": _replace("actions", lambda old: np.full(old.shape, b"up", "S2")),
    "string observations": _replace(OBS, lambda old: np.full(old.shape, b"x", "S1")),
    "string rewards": _replace("rewards", lambda old: np.full(old.shape, b"1", "S1")),
    "string dones": _replace("dones", lambda old: np.full(old.shape, b"0", "S1")),
    "complex observations": _replace(OBS, lambda old: old.astype(np.complex64)),
    "scalar observation dataset": _replace(OBS, lambda old: np.float32(1.0)),
    "per-step scalar observations": _replace(OBS, lambda old: old[:, 0]),
    "scalar actions dataset": _replace("actions", lambda old: np.float32(0.5)),
    "1-D actions": _replace("actions", lambda old: old[:, 0]),
    "3-D actions": _replace("actions", lambda old: old[:, :, None]),
    "wider actions in one demo": _replace("actions", _wider_actions),
    "wider observation in one demo": _replace(OBS, _wider_actions),
    "empty demo": _replace("actions", lambda old: old[:0]),
    "short rewards": _replace("rewards", lambda old: old[:-1]),
    "short dones": _replace("dones", lambda old: old[:-1]),
    "short observations": _replace(OBS, lambda old: old[:-1]),
    "long next observations": _replace(
        f"next_obs/{OBS[4:]}", lambda old: np.concatenate([old, old])
    ),
    "2-D rewards": _replace("rewards", lambda old: np.stack([old, old, old], 1)),
    "wrong num_samples": _attr("num_samples", 99, "data/demo_1"),
    # metadata
    "env_args not JSON": _attr("env_args", "{not json"),
    "env_args a list": _attr("env_args", "[1, 2]"),
    "env_args a string": _attr("env_args", '"reach"'),
    "env_kwargs a list": _env_args(lambda a: {**a, "env_kwargs": [1, 2]}),
}

TRAINERS = {
    "bc": ["--steps", "2", "--batch-size", "8", "--hidden-dims", "8"],
    "diffusion": ["--steps", "2", "--batch-size", "8", "--warmup-steps", "0", "--hidden-dim", "8"],
    "iql": ["--steps", "2", "--batch-size", "8", "--hidden-dims", "8", "--critic-hidden-dims", "8"],
    "calql": [
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--hidden-dims",
        "8",
        "--critic-hidden-dims",
        "8",
    ],
}


@pytest.mark.parametrize("algo", list(TRAINERS))
@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupt_dataset_is_one_clean_line(
    corruption: str, algo: str, work: Fixtures, capsys: pytest.CaptureFixture[str]
) -> None:
    CORRUPTIONS[corruption](work.dataset)
    out = work.root / "policy"
    args = ["train", algo, "--dataset", str(work.dataset), "--out", str(out), *TRAINERS[algo]]
    if "mask" in corruption:
        args += ["--filter-key", "train"]
    assert_clean_error(args, [work.root], capsys)


@pytest.mark.parametrize("algo", list(TRAINERS))
@pytest.mark.parametrize(
    ("flag", "value", "match"),
    [
        ("--filter-key", "nope", "filter key"),
        ("--obs-keys", "nope", "nope"),
    ],
)
def test_bad_dataset_selection(
    algo: str,
    flag: str,
    value: str,
    match: str,
    work: Fixtures,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = work.root / "policy"
    args = ["train", algo, "--dataset", str(work.dataset), "--out", str(out), *TRAINERS[algo]]
    assert_clean_error([*args, flag, value], [work.root], capsys, match=match)
