"""Policy directories: config.json + model.safetensors (+ extra safetensors files), no pickle.

Every policy and algorithm saves through here, so a directory is always complete: it is
written beside its destination and renamed into place only once every file is on disk.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from robot_rl.errors import CheckpointError, OutputExistsError

CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
_EXTRA_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def save_policy_dir(
    path: str | os.PathLike[str],
    config: dict[str, Any],
    tensors: dict[str, Tensor],
    *,
    overwrite: bool = False,
    extra_files: dict[str, dict[str, Tensor]] | None = None,
) -> None:
    """Writes a policy directory atomically.

    Args:
        path: the directory to create.
        config: JSON-serializable config, written with indent 2 and sorted keys.
        tensors: model weights (and normalizer stats) for model.safetensors.
        overwrite: replace an existing directory, only after the new one is fully written.
        extra_files: name -> tensors, each written as <name>.safetensors (e.g. "critic",
            "optimizer").

    Raises:
        OutputExistsError: `path` exists and overwrite is False.
        CheckpointError: the config is not JSON-serializable or a name or tensor is invalid.
    """
    path = Path(path)
    check_output(path, overwrite)
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"{path} exists and is not a directory")
    try:
        config_text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: config is not JSON-serializable: {e}") from e
    files = {MODEL_FILE: tensors}
    for name, extra in (extra_files or {}).items():
        stem = name.removesuffix(".safetensors")
        if not _EXTRA_NAME.match(stem) or stem in ("model", "config"):
            raise CheckpointError(f"{path}: invalid extra file name {name!r}")
        files[f"{stem}.safetensors"] = extra

    bad = [k for k, v in tensors.items() if isinstance(v, Tensor) and not _all_finite(v)]
    if bad:
        raise CheckpointError(
            f"{path}: refusing to save a policy with NaN or inf in {bad[0]!r} "
            f"({len(bad)} tensors); training diverged or its data overflowed"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        # mkdtemp makes the directory 0700; the saved policy follows the user's umask.
        os.chmod(tmp, 0o777 & ~current_umask())
        (tmp / CONFIG_FILE).write_text(config_text)
        for file_name, group in files.items():
            save_file(_cpu_contiguous(group, path, file_name), tmp / file_name)
            os.chmod(tmp / file_name, 0o666 & ~current_umask())  # safetensors writes 0600
        if path.exists():
            # A directory cannot be os.replace'd onto a non-empty one: move the old one
            # aside first and put it back if the swap fails.
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-"))
            os.replace(path, old / path.name)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old / path.name, path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_policy_dir(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Reads a policy directory's config and model tensors (on the CPU).

    Raises:
        CheckpointError: the directory or a file is missing, or a file is corrupt.
    """
    path = _existing_dir(path)
    config = read_config(path)
    model_path = path / MODEL_FILE
    if not model_path.is_file():
        raise CheckpointError(f"{path}: no {MODEL_FILE}")
    tensors = _load_safetensors(model_path)
    bad = [k for k, v in tensors.items() if not _all_finite(v)]
    if bad:
        raise CheckpointError(f"{model_path}: {bad[0]!r} holds NaN or inf (corrupt policy)")
    return config, tensors


def load_extra(path: str | os.PathLike[str], name: str) -> dict[str, Tensor]:
    """Reads the extra file <name>.safetensors of a policy directory (on the CPU).

    Raises:
        CheckpointError: the directory or file is missing, or the file is corrupt.
    """
    path = _existing_dir(path)
    stem = name.removesuffix(".safetensors")
    file_path = path / f"{stem}.safetensors"
    if not file_path.is_file():
        available = sorted(p.stem for p in path.glob("*.safetensors") if p.name != MODEL_FILE)
        raise CheckpointError(
            f"{path}: no {file_path.name}; extra files: {', '.join(available) or 'none'}"
        )
    return _load_safetensors(file_path)


def read_config(policy_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed config.json of a policy directory.

    Raises:
        CheckpointError: the directory or its config.json is missing, or not a JSON object.
    """
    path = _existing_dir(policy_dir) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{policy_dir}: no {CONFIG_FILE} (not a policy directory)")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: invalid JSON: {e}") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(config).__name__}")
    return config


def current_umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _all_finite(value: Tensor) -> bool:
    return not value.is_floating_point() or bool(torch.isfinite(value).all())


def _existing_dir(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such policy directory")
    return path


def _load_safetensors(file_path: Path) -> dict[str, Tensor]:
    try:
        return load_file(file_path, device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{file_path}: corrupt safetensors file: {e}") from e


def _cpu_contiguous(tensors: dict[str, Tensor], path: Path, file_name: str) -> dict[str, Tensor]:
    out = {}
    for key, value in tensors.items():
        if not isinstance(value, Tensor):
            raise CheckpointError(
                f"{path}: {file_name} entry {key!r} is a {type(value).__name__}, not a tensor"
            )
        # Cloning drops shared storage (tied weights, views), which safetensors refuses.
        out[key] = value.detach().to("cpu").clone(memory_format=torch.contiguous_format)
    return out


def check_output(path: Path, overwrite: bool) -> None:
    """Fail before any work if ``path`` exists and may not be replaced."""
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass --overwrite to replace it")
