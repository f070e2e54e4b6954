"""Gaussian policy: saved directories reload to identical actions; densities are consistent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robot_rl.data import Normalizer
from robot_rl.errors import CheckpointError, OutputExistsError
from robot_rl.policies import GaussianPolicy, GaussianPolicyConfig, load_policy


def _policy() -> GaussianPolicy:
    torch.manual_seed(0)
    norm = Normalizer()
    norm.fit_field("obs.a", torch.randn(50, 3) * 2 + 1, "gaussian")
    norm.fit_field("obs.b", torch.randn(50, 2), "gaussian")
    norm.fit_field("action", torch.rand(50, 4) * 1.6 - 0.8, "minmax")
    cfg = GaussianPolicyConfig(obs_keys=["a", "b"], obs_dim=5, action_dim=4, hidden_dims=[32, 32])
    return GaussianPolicy(cfg, norm, {"env_name": "reach", "env_kwargs": {}})


def _obs(n: int = 6) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return {"a": torch.randn(n, 3, generator=gen), "b": torch.randn(n, 2, generator=gen)}


def test_save_load_identical_actions(tmp_path: Path) -> None:
    policy = _policy()
    policy.save(tmp_path / "p")
    assert (tmp_path / "p" / "config.json").exists()
    assert (tmp_path / "p" / "model.safetensors").exists()
    loaded = load_policy(tmp_path / "p")
    assert isinstance(loaded, GaussianPolicy)
    assert loaded.obs_keys == ["a", "b"] and loaded.env_info["env_name"] == "reach"
    obs = _obs()
    assert torch.equal(policy.act(obs, deterministic=True), loaded.act(obs, deterministic=True))
    torch.manual_seed(5)
    a = policy.act(obs)
    torch.manual_seed(5)
    b = loaded.act(obs)
    assert torch.equal(a, b)


def test_save_refuses_existing_dir(tmp_path: Path) -> None:
    policy = _policy()
    policy.save(tmp_path / "p")
    before = (tmp_path / "p" / "model.safetensors").read_bytes()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        policy.save(tmp_path / "p")
    assert (tmp_path / "p" / "model.safetensors").read_bytes() == before


def test_load_rejects_unknown_type(tmp_path: Path) -> None:
    policy = _policy()
    policy.save(tmp_path / "p")
    cfg = (tmp_path / "p" / "config.json").read_text().replace('"gaussian"', '"mystery"')
    (tmp_path / "p" / "config.json").write_text(cfg)
    with pytest.raises(CheckpointError, match="unknown policy_type 'mystery'"):
        load_policy(tmp_path / "p")


def test_actions_in_range_and_log_prob_matches_sample() -> None:
    policy = _policy()
    obs = _obs(200)
    actions = policy.act(obs)
    assert actions.shape == (200, 4) and actions.abs().max() <= 1.0
    sampled, log_prob = policy.sample(obs)
    assert torch.allclose(policy.log_prob(obs, sampled), log_prob, atol=1e-3)


def test_missing_observation_key_is_named() -> None:
    with pytest.raises(KeyError, match="'b'"):
        _policy().act({"a": torch.zeros(1, 3)})
