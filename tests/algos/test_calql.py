from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from robot_rl.cli import main
from robot_rl.policies import GaussianPolicy, load_policy
from robot_rl.policies.critic import load_critic, load_temperature


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train", "calql", "--dataset", str(data), "--out", str(out),
        "--steps", "3", "--batch-size", "16", "--hidden-dims", "32", "32",
        "--critic-hidden-dims", "32", "32", "--num-critics", "4",
        "--log-dir", str(out.parent / "runs"), *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("lagrange", [False, True])
def test_train_calql_smoke(reach_mixed: Path, tmp_path: Path, lagrange: bool) -> None:
    out = tmp_path / "calql"
    extra = ["--cql-lagrange"] if lagrange else []
    assert main(_args(reach_mixed, out, *extra)) == 0
    policy = load_policy(out)
    assert isinstance(policy, GaussianPolicy)
    critic, target = load_critic(out)
    assert critic.num_critics == 4 and critic.config.layer_norm
    assert not any(p.requires_grad for p in target.parameters())
    temperature = load_temperature(out)
    assert temperature is not None and 0.0 < temperature < 10.0
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["cql_n_actions"] == 1  # cpu preset
    assert ("cql_alpha" in config) == lagrange
    flat = torch.zeros(5, policy.config.obs_dim)
    q = critic(flat, torch.zeros(5, policy.config.action_dim))
    assert q.shape == (4, 5) and torch.isfinite(q).all()


def test_calql_bad_subset_is_one_line_error(reach_mixed: Path, tmp_path: Path, capsys) -> None:
    assert main(_args(reach_mixed, tmp_path / "x", "--target-subset", "5")) == 2
    captured = capsys.readouterr()
    assert "target_subset must be in [1, num_critics=4]" in captured.out + captured.err
