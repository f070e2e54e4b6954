from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import pytest
import torch
from safetensors.torch import load_file

from robot_rl.algos.iql import IQLConfig, expectile_loss, load_value, resolve, train_iql
from robot_rl.cli import main
from robot_rl.demos import DemosConfig, generate_demos
from robot_rl.errors import CheckpointError, ConfigError
from robot_rl.policies import GaussianPolicy, load_policy
from robot_rl.policies.critic import load_critic, load_temperature


def test_expectile_loss_by_hand() -> None:
    diff = torch.tensor([2.0, -2.0, 0.5, 0.0])
    # tau * d^2 above the value, (1 - tau) * d^2 below it.
    expected = torch.tensor([0.9 * 4.0, 0.1 * 4.0, 0.9 * 0.25, 0.0])
    torch.testing.assert_close(expectile_loss(diff, 0.9), expected)
    # tau = 0.5 is half the squared error.
    torch.testing.assert_close(expectile_loss(diff, 0.5), 0.5 * diff.pow(2))


def test_train_iql_smoke(reach_mixed: Path, tmp_path: Path) -> None:
    out = tmp_path / "iql"
    args = ["train", "iql", "--dataset", str(reach_mixed), "--out", str(out)]
    args += ["--steps", "3", "--batch-size", "16", "--hidden-dims", "32", "32"]
    args += ["--critic-hidden-dims", "32", "32", "--log-dir", str(tmp_path / "runs")]
    assert main(args) == 0
    policy = load_policy(out)
    assert isinstance(policy, GaussianPolicy)
    critic, target = load_critic(out)
    assert critic.num_critics == 2 and critic.config.hidden_dims == [32, 32]
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["scale"] == "cpu" and config["train"]["steps"] == 3
    assert load_temperature(out) is None
    assert (out / "value.safetensors").is_file()
    # Critics read the policy's flat normalized observations and normalized actions.
    flat = torch.zeros(5, policy.config.obs_dim)
    q = critic(flat, torch.zeros(5, policy.config.action_dim))
    assert q.shape == (2, 5) and torch.isfinite(q).all()
    assert target(flat, torch.zeros(5, policy.config.action_dim)).shape == (2, 5)


def test_iql_bad_expectile_is_one_line_error(reach_mixed: Path, tmp_path: Path, capsys) -> None:
    args = ["train", "iql", "--dataset", str(reach_mixed), "--out", str(tmp_path / "x")]
    assert main([*args, "--expectile", "1.5"]) == 2
    captured = capsys.readouterr()
    assert "expectile must be in (0, 1)" in captured.out + captured.err


@pytest.mark.slow
def test_iql_advantage_weights_favour_the_demonstrators_that_succeed(tmp_path: Path) -> None:
    """After 2k steps on 40 mixed reach episodes, transitions of successful episodes carry about
    twice the AWR weight of failing ones (measured 1.9-3.1 over train seeds 0-3). A sign error
    in the advantage, a value net that ignores the expectile or a critic that does not learn
    the reward brings the ratio to or below 1."""
    data = tmp_path / "reach.hdf5"
    generate_demos(
        DemosConfig(task="reach", episodes=40, out=data, num_envs=8, quality="mixed"),
        progress=False,
    )
    cfg = IQLConfig(
        dataset=data, out=tmp_path / "iql", steps=2000, hidden_dims=[64, 64],
        critic_hidden_dims=[64, 64], log_dir=tmp_path / "tb",
    )  # fmt: skip
    policy = train_iql(cfg, progress=False)
    _, target = load_critic(cfg.out)
    value = load_value(cfg.out)
    weights: dict[bool, list[torch.Tensor]] = {True: [], False: []}
    with h5py.File(data) as f:
        for episode in f["data"].values():
            obs = {k: torch.as_tensor(v[:]) for k, v in episode["obs"].items()}
            action = torch.as_tensor(episode["actions"][:])
            with torch.no_grad():
                flat = policy.flat_obs(obs)
                action = policy.normalizer.normalize_action(action).clamp(-1.0, 1.0)
                advantage = target(flat, action).min(0).values - value(flat).squeeze(-1)
            weight = torch.exp(resolve(cfg).beta * advantage).clamp(max=cfg.max_weight)
            weights[bool(episode.attrs["success"])].append(weight)
    assert weights[True] and weights[False]
    ratio = torch.cat(weights[True]).mean() / torch.cat(weights[False]).mean()
    assert ratio >= 1.5, ratio


def test_load_value_needs_an_iql_directory(tmp_path: Path, push_demos: Path) -> None:
    out = tmp_path / "bc"
    args = ["train", "bc", "--dataset", str(push_demos), "--out", str(out), "--steps", "2"]
    assert main([*args, "--log-dir", str(tmp_path / "runs")]) == 0
    with pytest.raises(CheckpointError, match="no 'value' entry"):
        load_value(out)


@pytest.fixture(scope="module")
def iql_dir(tmp_path_factory: pytest.TempPathFactory, reach_mixed: Path) -> Path:
    tmp = tmp_path_factory.mktemp("iql")
    cfg = IQLConfig(
        dataset=reach_mixed, out=tmp / "iql", steps=2, batch_size=8, hidden_dims=[8],
        critic_hidden_dims=[8], log_dir=tmp / "tb",
    )  # fmt: skip
    train_iql(cfg, progress=False)
    return cfg.out


def test_load_value_rebuilds_the_saved_network(iql_dir: Path) -> None:
    value = load_value(iql_dir)
    weights = load_file(str(iql_dir / "value.safetensors"))
    assert set(value.state_dict()) == set(weights)
    assert all(torch.equal(value.state_dict()[k], weights[k]) for k in weights)
    assert not value.training and not any(p.requires_grad for p in value.parameters())
    # V(s) by hand from the stored weights: Linear -> ReLU -> Linear.
    obs = torch.randn(3, weights["0.weight"].shape[1])
    hidden = torch.relu(obs @ weights["0.weight"].T + weights["0.bias"])
    torch.testing.assert_close(value(obs), hidden @ weights["2.weight"].T + weights["2.bias"])


def test_load_value_errors_name_the_problem(iql_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "p"
    shutil.copytree(iql_dir, broken)
    config = json.loads((broken / "config.json").read_text())
    config["value"] = {}
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="lacks the value net's shape"):
        load_value(broken)
    config["value"] = {"hidden_dims": [9]}
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="value.safetensors does not fit its config"):
        load_value(broken)


def _resolve(**kw: object) -> IQLConfig:
    return resolve(IQLConfig(dataset=Path("d.hdf5"), out=Path("o"), **kw))


@pytest.mark.parametrize("field", ["steps", "batch_size", "num_critics"])
def test_resolve_rejects_zero_counts(field: str) -> None:
    with pytest.raises(ConfigError, match=f"{field}.*must be >= 1"):
        _resolve(**{field: 0})
    assert getattr(_resolve(**{field: 1}), field) == 1


def test_resolve_expectile_is_open_interval_and_scale_known() -> None:
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ConfigError, match=r"expectile must be in \(0, 1\)"):
            _resolve(expectile=bad)
    assert _resolve(expectile=0.5).expectile == 0.5
    with pytest.raises(ConfigError, match="unknown scale 'huge'.*cpu"):
        _resolve(scale="huge")
