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


def _saved_gaussian(tmp_path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    from robot_rl.data.normalizer import Normalizer
    from robot_rl.policies import GaussianPolicy
    from robot_rl.policies.gaussian import GaussianPolicyConfig

    ident = {"obs.x": (torch.ones(2), torch.zeros(2)), "action": (torch.ones(1), torch.zeros(1))}
    policy = GaussianPolicy(GaussianPolicyConfig(["x"], 2, 1, [4]), Normalizer(ident), {"a": 1})
    policy.save(tmp_path / "g")
    config = json.loads((tmp_path / "g" / "config.json").read_text())
    return config, load_file(str(tmp_path / "g" / "model.safetensors"))


def test_a_corrupt_policy_directory_is_refused_with_one_line(tmp_path: Path) -> None:
    from robot_rl.policies import GaussianPolicy

    config, tensors = _saved_gaussian(tmp_path)
    extra = {**tensors, "junk.a": torch.zeros(1), "junk.b": torch.zeros(1)}
    no_weight = {k: v for k, v in tensors.items() if k != sorted(k for k in tensors
                 if k.startswith("model."))[0]}  # fmt: skip
    cases = [
        (config, extra, "P: unexpected tensor 'junk.a' in the model file"),
        ({**config, "policy": {**config["policy"], "obs_keys": "x"}}, tensors,
         "P: policy.obs_keys must be a list of names, got 'x'"),
        ({**config, "policy": {**config["policy"], "obs_keys": [1]}}, tensors,
         "P: policy.obs_keys must be a list of names, got [1]"),
        ({**config, "env": "reach"}, tensors, "P: config 'env' must be an object"),
        ({k: v for k, v in config.items() if k != "policy"}, tensors,
         "P: invalid policy config: 'policy'"),
    ]  # fmt: skip
    for cfg, files, message in cases:
        with pytest.raises(CheckpointError) as err:
            GaussianPolicy.from_saved(cfg, files, "P")
        assert str(err.value) == message
    with pytest.raises(CheckpointError) as err:
        GaussianPolicy.from_saved(config, no_weight, "P")
    assert str(err.value).startswith("P: weights do not match the config: ")
    # A config without 'env' (an older directory) loads with no env record.
    policy = GaussianPolicy.from_saved(
        {k: v for k, v in config.items() if k != "env"}, tensors, "P"
    )
    assert policy.env_info == {} and not policy.training
    assert GaussianPolicy.from_saved(config, tensors, "P").env_info == {"a": 1}


def _data(**changes: object):  # noqa: ANN202
    import numpy as np

    from robot_rl.data import OfflineDataset

    ep = {"obs": {"x": np.zeros((3, 2))}, "next_obs": {"x": np.zeros((3, 2))},
          "actions": np.zeros((3, 1)), "rewards": np.zeros(3), "dones": np.zeros(3),
          "attrs": {}}  # fmt: skip
    for key, value in changes.items():
        part, _, name = key.partition("__")
        if name:
            ep[part] = {**ep[part], name: value}
        else:
            ep[part] = value
    return OfflineDataset.from_episodes([ep])


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_training_data_is_checked_as_the_trainers_see_it() -> None:
    import numpy as np

    from robot_rl.algos.common import check_training_data
    from robot_rl.errors import DatasetError

    big = np.array([0.0, 1e300, 0.0])
    cases = [
        (_data(actions=big[:, None]), "actions overflows float32"),
        (_data(rewards=big), "rewards overflows float32"),
        (_data(obs__x=np.stack([big, big], 1)), "obs/x overflows float32"),
        (_data(next_obs__x=np.stack([big, big], 1)), "next_obs/x overflows float32"),
    ]
    for data, start in cases:
        with pytest.raises(DatasetError) as err:
            check_training_data(data, Path("D"))
        assert str(err.value) == f"D: {start} (NaN or inf after conversion to float32)"
    with pytest.raises(DatasetError) as err:
        check_training_data(_data(obs__x=np.zeros(3), next_obs__x=np.zeros(3)), Path("D"))
    assert str(err.value) == (
        "D: obs/x is a scalar per step (shape (3,)); observations must be [T, D]"
    )
    with pytest.raises(DatasetError) as err:
        check_training_data(_data(actions=np.array([[0.0], [-1.5], [1.0]])), Path("D"))
    assert str(err.value) == (
        "D: actions reach 1.5, outside [-1, 1]; store actions normalized to the env's action box"
    )
    check_training_data(_data(actions=np.array([[1.0005], [-1.0], [0.0]])), Path("D"))
    images = np.zeros((3, 2), np.uint8)  # integer observations need no finiteness check
    check_training_data(_data(obs__img=images, next_obs__img=images), Path("D"))


def test_an_observation_missing_a_key_names_it(tmp_path: Path) -> None:
    from robot_rl.policies import load_policy

    _saved_gaussian(tmp_path)
    with pytest.raises(KeyError) as err:
        load_policy(tmp_path / "g").flat_obs({"y": torch.zeros(1, 2)})
    assert err.value.args[0] == "observation lacks keys ['x']; has ['y']"
