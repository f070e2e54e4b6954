"""Policy directories: round trip, atomic overwrite, and a clear error for each broken part."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from robot_rl.checkpoint import load_extra, load_policy_dir, save_policy_dir
from robot_rl.errors import CheckpointError, OutputExistsError

CONFIG = {"policy": "bc", "hidden_dims": [256, 256], "obs_keys": ["joint_pos"]}


def weights() -> dict[str, torch.Tensor]:
    w = torch.arange(12.0).reshape(3, 4)
    return {"net.weight": w.T, "net.tied": w, "normalizer.action.scale": torch.ones(4)}


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "policies" / "bc_lift"
    critic = {"q.weight": torch.randn(2, 2)}
    save_policy_dir(path, CONFIG, weights(), extra_files={"critic": critic})
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "critic.safetensors",
        "model.safetensors",
    ]
    assert (path / "config.json").read_text() == json.dumps(CONFIG, indent=2, sort_keys=True) + "\n"
    config, tensors = load_policy_dir(path)
    assert config == CONFIG
    assert tensors.keys() == weights().keys()
    for key, value in weights().items():
        assert torch.equal(tensors[key], value)
    assert torch.equal(load_extra(path, "critic")["q.weight"], critic["q.weight"])


def test_existing_dir_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "policy"
    save_policy_dir(path, CONFIG, weights())
    before = (path / "model.safetensors").read_bytes()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        save_policy_dir(path, {"policy": "other"}, {"x": torch.zeros(1)})
    assert (path / "model.safetensors").read_bytes() == before
    assert load_policy_dir(path)[0] == CONFIG


def test_overwrite_replaces_whole_dir(tmp_path: Path) -> None:
    path = tmp_path / "policy"
    save_policy_dir(path, CONFIG, weights(), extra_files={"optimizer": {"m": torch.ones(1)}})
    save_policy_dir(path, {"policy": "diffusion"}, {"x": torch.zeros(1)}, overwrite=True)
    config, tensors = load_policy_dir(path)
    assert config == {"policy": "diffusion"} and list(tensors) == ["x"]
    assert not (path / "optimizer.safetensors").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["policy"]


def test_failed_save_keeps_old_dir(tmp_path: Path) -> None:
    path = tmp_path / "policy"
    save_policy_dir(path, CONFIG, weights())
    with pytest.raises(CheckpointError, match="'bad' is a list, not a tensor"):
        save_policy_dir(path, CONFIG, {"bad": [1.0]}, overwrite=True)  # type: ignore[dict-item]
    with pytest.raises(CheckpointError, match="config is not JSON-serializable"):
        save_policy_dir(path, {"x": torch.ones(1)}, weights(), overwrite=True)
    with pytest.raises(CheckpointError, match="invalid extra file name"):
        save_policy_dir(path, CONFIG, weights(), overwrite=True, extra_files={"model": {}})
    assert load_policy_dir(path)[0] == CONFIG
    assert [p.name for p in tmp_path.iterdir()] == ["policy"]


def test_load_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such policy directory"):
        load_policy_dir(tmp_path / "nope")


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors"])
def test_load_missing_file(tmp_path: Path, missing: str) -> None:
    save_policy_dir(tmp_path / "p", CONFIG, weights())
    (tmp_path / "p" / missing).unlink()
    with pytest.raises(CheckpointError, match=f"p: no {missing}"):
        load_policy_dir(tmp_path / "p")


def test_load_invalid_json(tmp_path: Path) -> None:
    save_policy_dir(tmp_path / "p", CONFIG, weights())
    (tmp_path / "p" / "config.json").write_text('{"policy": ')
    with pytest.raises(CheckpointError, match="config.json: invalid JSON"):
        load_policy_dir(tmp_path / "p")
    (tmp_path / "p" / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="expected a JSON object"):
        load_policy_dir(tmp_path / "p")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_load_corrupt_safetensors(tmp_path: Path, damage: str) -> None:
    save_policy_dir(tmp_path / "p", CONFIG, weights())
    model = tmp_path / "p" / "model.safetensors"
    model.write_bytes(model.read_bytes()[:40] if damage == "truncate" else b"\x00" * 64)
    with pytest.raises(CheckpointError, match="model.safetensors: corrupt safetensors file"):
        load_policy_dir(tmp_path / "p")


def test_load_extra_missing_lists_available(tmp_path: Path) -> None:
    save_policy_dir(tmp_path / "p", CONFIG, weights(), extra_files={"critic": {"q": torch.ones(1)}})
    with pytest.raises(CheckpointError, match="no optimizer.safetensors; extra files: critic"):
        load_extra(tmp_path / "p", "optimizer")


def test_a_policy_directory_records_its_format_and_refuses_a_newer_one(tmp_path: Path) -> None:
    from robot_rl.data.normalizer import Normalizer
    from robot_rl.policies import GaussianPolicy, load_policy
    from robot_rl.policies.base import FORMAT_VERSION
    from robot_rl.policies.gaussian import GaussianPolicyConfig

    ident = {"obs.x": (torch.ones(2), torch.zeros(2)), "action": (torch.ones(1), torch.zeros(1))}
    GaussianPolicy(GaussianPolicyConfig(["x"], 2, 1, [4]), Normalizer(ident), {}).save(
        tmp_path / "p"
    )
    config_path = tmp_path / "p" / "config.json"
    config = json.loads(config_path.read_text())
    assert config["format_version"] == FORMAT_VERSION == 1
    del config["format_version"]  # written before the field existed: read as the current one
    config_path.write_text(json.dumps(config))
    assert load_policy(tmp_path / "p").policy_type == "gaussian"
    config_path.write_text(json.dumps({**config, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(CheckpointError) as err:
        load_policy(tmp_path / "p")
    assert str(err.value) == (
        f"{tmp_path / 'p'}: format_version 2 is newer than this robot_rl reads (1); upgrade robot_rl"
    )
