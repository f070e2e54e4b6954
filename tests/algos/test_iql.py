from __future__ import annotations

import json
from pathlib import Path

import torch

from robot_rl.algos.iql import expectile_loss
from robot_rl.cli import main
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
