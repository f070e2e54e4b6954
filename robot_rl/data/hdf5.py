"""Demonstrations in robomimic's HDF5 layout: writing ours, reading ours and robomimic's.

Layout: ``data`` (attrs ``total``, ``env_args`` JSON) holds ``demo_<i>`` groups (attr
``num_samples``; datasets ``actions``, ``rewards``, ``dones``, ``states``; groups ``obs/<key>``
and ``next_obs/<key>``), and ``mask/train``, ``mask/valid`` list demo names as byte strings.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from robot_rl.data.dataset import OfflineDataset
from robot_rl.errors import ConfigError, DatasetError, OutputExistsError

_REQUIRED_TO_WRITE = ("obs", "next_obs", "actions", "rewards", "dones")


def write_robomimic(
    path: str | os.PathLike[str],
    episodes: list[dict[str, Any]],
    env_args: dict[str, Any],
    *,
    overwrite: bool = False,
    valid_fraction: float = 0.1,
    seed: int = 0,
) -> None:
    """Writes episodes as a robomimic-layout HDF5 file, atomically.

    Args:
        path: output file; parent directories are created.
        episodes: dicts of numpy arrays: obs and next_obs (key -> [T, ...]), actions [T, A],
            rewards [T], dones [T], optional states [T, S] and attrs (extra per-demo attrs
            such as quality or success).
        env_args: environment metadata; needs env_name, env_type and env_kwargs default to
            "robot_rl" and {}.
        overwrite: replace an existing file.
        valid_fraction: fraction of demos listed in mask/valid (rounded down, as robomimic).
        seed: seed of the train/valid split.

    Raises:
        OutputExistsError: `path` exists and overwrite is False.
        DatasetError: an episode is incomplete, inconsistent or holds NaN/inf.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass --overwrite to replace it")
    if path.is_dir():
        raise DatasetError(f"{path} is a directory; expected an HDF5 file path")
    if not episodes:
        raise DatasetError(f"{path}: no episodes to write")
    if not 0.0 <= valid_fraction < 1.0:
        raise ConfigError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    if "env_name" not in env_args:
        raise DatasetError(f"{path}: env_args has no env_name")
    meta = {"env_type": "robot_rl", "env_kwargs": {}, **env_args}
    try:
        meta_json = json.dumps(meta)
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{path}: env_args is not JSON-serializable: {e}") from e

    names = [f"demo_{i}" for i in range(len(episodes))]
    for name, ep in zip(names, episodes, strict=True):
        missing = [k for k in _REQUIRED_TO_WRITE if ep.get(k) is None]
        if missing:
            raise DatasetError(f"{path}: {name} has no {', '.join(missing)}")
        if set(ep["obs"]) != set(ep["next_obs"]):
            raise DatasetError(f"{path}: {name} obs and next_obs have different keys")
    arrays = [_as_arrays(ep) for ep in episodes]
    _check_episodes(arrays, names, str(path))

    num_valid = int(valid_fraction * len(names))
    valid = set(np.random.default_rng(seed).choice(len(names), num_valid, replace=False).tolist())

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with h5py.File(tmp_name, "w") as f:
            data = f.create_group("data")
            data.attrs["total"] = int(sum(len(ep["actions"]) for ep in arrays))
            data.attrs["env_args"] = meta_json
            for name, ep in zip(names, arrays, strict=True):
                _write_demo(data.create_group(name), ep, f"{path}: {name}")
            # robomimic's create_hdf5_filter_key stores names as fixed-length byte strings.
            f["mask/train"] = np.array([n for i, n in enumerate(names) if i not in valid], "S")
            f["mask/valid"] = np.array([n for i, n in enumerate(names) if i in valid], "S")
        # mkstemp makes the file 0600; the dataset follows the user's umask.
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(tmp_name, 0o666 & ~mask)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def read_robomimic(
    path: str | os.PathLike[str],
    *,
    obs_keys: list[str] | None = None,
    filter_key: str | None = None,
) -> OfflineDataset:
    """Reads a robomimic-layout HDF5 file, ours or robomimic's own, into an OfflineDataset.

    Demos load in numeric order (demo_2 before demo_10). Missing parts are derived: next_obs
    by shifting obs within the episode (the last step repeats), rewards as zeros, dones as
    1 on the last step only; missing states leave `states` None.

    Args:
        path: the HDF5 file.
        obs_keys: observation keys to load; default all keys of the first demo.
        filter_key: load only the demos listed under mask/<filter_key> (e.g. "train").

    Raises:
        DatasetError: the file is missing, unreadable or inconsistent.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise DatasetError(f"{path}: not an HDF5 file")
    try:
        with h5py.File(path, "r") as f:
            return _read(f, str(path), obs_keys, filter_key)
    except (OSError, RuntimeError, KeyError) as e:
        raise DatasetError(f"{path}: cannot read HDF5 data (corrupt or truncated?): {e}") from e


def _read(
    f: h5py.File, where: str, obs_keys: list[str] | None, filter_key: str | None
) -> OfflineDataset:
    data = f.get("data")
    if not isinstance(data, h5py.Group):
        raise DatasetError(f"{where}: no 'data' group; not a robomimic-layout file")
    names = [k for k in data if isinstance(data[k], h5py.Group)]
    if filter_key is not None:
        masks = f.get("mask")
        available = sorted(masks) if isinstance(masks, h5py.Group) else []
        if filter_key not in available:
            raise DatasetError(
                f"{where}: unknown filter key {filter_key!r}; available: "
                f"{', '.join(available) or 'none'}"
            )
        selected = [_to_str(n) for n in np.atleast_1d(masks[filter_key][()])]
        unknown = [n for n in selected if n not in names]
        if unknown:
            raise DatasetError(f"{where}: mask/{filter_key} lists {unknown[0]}, not in data")
        names = selected
    if not names:
        raise DatasetError(f"{where}: no demos under 'data'")
    names = sorted(names, key=_demo_order)

    env_args: dict[str, Any] = {}
    if "env_args" in data.attrs:
        try:
            env_args = json.loads(_to_str(data.attrs["env_args"]))
        except json.JSONDecodeError as e:
            raise DatasetError(f"{where}: data attr env_args is not valid JSON: {e}") from e
        if not isinstance(env_args, dict):
            raise DatasetError(
                f"{where}: data attr env_args must be a JSON object, got {type(env_args).__name__}"
            )
        if not isinstance(env_args.get("env_kwargs", {}), dict):
            raise DatasetError(f"{where}: env_args.env_kwargs must be a JSON object")

    keys = list(obs_keys) if obs_keys is not None else None
    episodes = []
    for name in names:
        g = data[name]
        for part in ("actions", "obs"):
            if part not in g:
                raise DatasetError(f"{where}: {name} has no {part!r}")
        if not isinstance(g["obs"], h5py.Group):
            raise DatasetError(f"{where}: {name}/obs is not a group of observation keys")
        available = list(g["obs"])
        if keys is None:
            keys = available
        missing = [k for k in keys if k not in available]
        if missing:
            raise DatasetError(
                f"{where}: {name} has no obs key {missing[0]!r}; available: {', '.join(available)}"
            )
        episodes.append(_read_demo(g, keys, f"{where}: {name}"))
    _check_episodes(episodes, names, where)
    return OfflineDataset.from_episodes(episodes, env_args=env_args, names=names)


def _dataset(g: h5py.Group, name: str, where: str, prefix: str = "") -> np.ndarray:
    """The array ``g[name]``, or a DatasetError if it is a group or not numeric."""
    node = g[name]
    name = prefix + name
    if not isinstance(node, h5py.Dataset):
        raise DatasetError(f"{where} {name} is a group, expected an array")
    arr = node[()]
    if not isinstance(arr, np.ndarray) or arr.ndim == 0:
        raise DatasetError(f"{where} {name} is a scalar, expected one entry per step")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise DatasetError(f"{where} {name} has non-numeric dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise DatasetError(f"{where} {name} has complex dtype {arr.dtype}")
    return arr


def _read_demo(g: h5py.Group, keys: list[str], where: str) -> dict[str, Any]:
    actions = _dataset(g, "actions", where)
    steps = len(actions)
    obs = {k: _dataset(g["obs"], k, where, "obs/") for k in keys}
    next_group = g.get("next_obs")
    next_obs = {}
    for k in keys:
        if isinstance(next_group, h5py.Group) and k in next_group:
            next_obs[k] = _dataset(next_group, k, where, "next_obs/")
        else:
            next_obs[k] = np.concatenate([obs[k][1:], obs[k][-1:]])
    dones = np.zeros(steps, dtype=np.float32)
    dones[-1:] = 1.0
    num_samples = g.attrs.get("num_samples")
    if num_samples is not None and int(num_samples) != steps:
        raise DatasetError(f"{where}: num_samples is {int(num_samples)} but actions has {steps}")
    return {
        "obs": obs,
        "next_obs": next_obs,
        "actions": actions,
        "rewards": _flat(_dataset(g, "rewards", where))
        if "rewards" in g
        else np.zeros(steps, np.float32),
        "dones": _flat(_dataset(g, "dones", where)) if "dones" in g else dones,
        "states": _dataset(g, "states", where) if "states" in g else None,
        "attrs": {k: _to_python(v) for k, v in g.attrs.items() if k != "num_samples"},
    }


def _write_demo(g: h5py.Group, ep: dict[str, Any], where: str) -> None:
    g.attrs["num_samples"] = len(ep["actions"])
    for k, v in (ep.get("attrs") or {}).items():
        if k == "num_samples":
            continue
        try:
            g.attrs[k] = v
        except (TypeError, ValueError) as e:
            raise DatasetError(f"{where} attr {k!r} cannot be stored in HDF5: {e}") from e
    g["actions"] = ep["actions"]
    g["rewards"] = ep["rewards"]
    # robomimic stores dones as integers.
    g["dones"] = ep["dones"].astype(np.int64)
    if ep.get("states") is not None:
        g["states"] = ep["states"]
    for part in ("obs", "next_obs"):
        for k, v in ep[part].items():
            g[f"{part}/{k}"] = v


def _as_arrays(ep: dict[str, Any]) -> dict[str, Any]:
    out = dict(ep)
    for part in ("obs", "next_obs"):
        out[part] = {k: np.asarray(v) for k, v in ep[part].items()}
    for name in ("actions", "rewards", "dones"):
        out[name] = np.asarray(ep[name])
    if ep.get("states") is not None:
        out["states"] = np.asarray(ep["states"])
    return out


def _check_episodes(episodes: list[dict[str, Any]], names: list[str], where: str) -> None:
    """Checks lengths within each episode, shapes across episodes, and finiteness."""
    first = episodes[0]
    for name, ep in zip(names, episodes, strict=True):
        at = f"{where}: {name}"
        actions = ep["actions"]
        if actions.ndim != 2:
            raise DatasetError(f"{at} actions must be [T, A], got shape {actions.shape}")
        steps = len(actions)
        if steps == 0:
            raise DatasetError(f"{at} has no samples")
        fields = {"actions": actions, "rewards": ep["rewards"], "dones": ep["dones"]}
        if ep.get("states") is not None:
            fields["states"] = ep["states"]
        for part in ("obs", "next_obs"):
            fields.update({f"{part}/{k}": v for k, v in ep[part].items()})
        for field, arr in fields.items():
            if arr.ndim == 0:
                raise DatasetError(f"{at} {field} is a scalar, expected one entry per step")
            if len(arr) != steps:
                raise DatasetError(f"{at} {field} has {len(arr)} steps but actions has {steps}")
            if field.startswith(("obs/", "next_obs/", "actions", "rewards")) and not _finite(arr):
                raise DatasetError(f"{at} {field} contains NaN or inf")
        for field, arr, ref in [("actions", actions, first["actions"])] + [
            (f"obs/{k}", v, first["obs"][k]) for k, v in ep["obs"].items()
        ]:
            if arr.shape[1:] != ref.shape[1:]:
                raise DatasetError(
                    f"{at} {field} has step shape {arr.shape[1:]} but {names[0]} has "
                    f"{ref.shape[1:]}"
                )
        if ep["rewards"].ndim != 1 or ep["dones"].ndim != 1:
            raise DatasetError(f"{at} rewards and dones must be [T]")


def _finite(arr: np.ndarray) -> bool:
    return not np.issubdtype(arr.dtype, np.floating) or bool(np.isfinite(arr).all())


def _flat(arr: np.ndarray) -> np.ndarray:
    # Some converters store per-step scalars as [T, 1].
    if arr.ndim == 2 and arr.shape[1] == 1:
        return arr[:, 0]
    return arr


def _demo_order(name: str) -> tuple[int, int, str]:
    match = re.search(r"(\d+)$", name)
    return (0, int(match.group(1)), name) if match else (1, 0, name)


def _to_str(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes | np.bytes_) else str(value)


def _to_python(value: Any) -> Any:
    if isinstance(value, bytes | np.bytes_):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [_to_python(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value
