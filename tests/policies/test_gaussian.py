"""Gaussian policy: saved directories reload to identical actions; densities are consistent."""

from __future__ import annotations

import math
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


def test_density_and_samples_by_hand() -> None:
    """With the output layer fixed to mean 0.3 and raw log-std 0 (log_std = -5 + 3.5 * 1 =
    -1.5), the density of a = 0.5 and the sample statistics are known in closed form."""
    policy = _policy()
    last = [m for m in policy.net.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.3] * 4 + [0.0] * 4))
    obs = _obs(4000)
    mean, log_std = policy.dist_params(obs)
    torch.testing.assert_close(log_std, torch.full_like(log_std, -1.5))
    u, std = math.atanh(0.5), math.exp(-1.5)
    per_dim = (
        -0.5 * ((u - 0.3) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)
        - math.log(1 - 0.5**2)
    )  # fmt: skip
    log_prob = policy.log_prob(obs, torch.full((4000, 4), 0.5))
    torch.testing.assert_close(log_prob, torch.full((4000,), 4 * per_dim))
    torch.manual_seed(0)
    sampled, _ = policy.sample(obs)
    pre = torch.atanh(sampled)
    assert abs(pre.mean().item() - 0.3) < 0.01 and abs(pre.std().item() - std) < 0.01
    mode, _ = policy.sample(obs, deterministic=True)
    torch.testing.assert_close(mode, torch.full_like(mode, math.tanh(0.3)))
    # Env actions are the unnormalized normalized actions (min-max fit above).
    env = policy.act(obs, deterministic=True)
    torch.testing.assert_close(env, policy.normalizer.unnormalize_action(mode).clamp(-1, 1))


def test_missing_observation_key_is_named() -> None:
    with pytest.raises(KeyError, match="'b'"):
        _policy().act({"a": torch.zeros(1, 3)})


def _fixed_output(policy: GaussianPolicy, mean: list[float], raw_log_std: float = 0.0) -> None:
    last = [m for m in policy.net.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor(mean + [raw_log_std] * len(mean)))


def test_log_prob_clips_both_edges_of_the_box() -> None:
    # Actions exactly at -1 and +1 (e.g. clamped demonstrations) have a finite density, the
    # density of the clipped action 1 - 1e-4 on each side.
    policy = _policy()
    _fixed_output(policy, [0.0] * 4)
    obs = _obs(2)
    edge = torch.tensor([[1.0, -1.0, 1.0, -1.0]] * 2)
    clipped = edge * (1.0 - 1e-4)
    log_prob = policy.log_prob(obs, edge)
    assert torch.isfinite(log_prob).all()
    torch.testing.assert_close(log_prob, policy.log_prob(obs, clipped))


def test_act_is_stochastic_by_default_and_clamped_to_the_env_box() -> None:
    policy = _policy()
    # Normalized action space twice the env's: unnormalize is a * 2, so tanh(+-3) * 2 leaves
    # [-1, 1] and must be clamped; tanh(0.1) * 2 = 0.199 stays.
    policy.normalizer.params["action"] = (torch.full((4,), 0.5), torch.zeros(4))
    _fixed_output(policy, [3.0, -3.0, 0.1, -0.1], raw_log_std=-1.0)
    obs = _obs(3)
    mode = policy.act(obs, deterministic=True)
    want = torch.tensor([1.0, -1.0, 2 * math.tanh(0.1), -2 * math.tanh(0.1)])
    torch.testing.assert_close(mode, want.expand(3, 4))
    torch.manual_seed(0)
    first = policy.act(obs)
    second = policy.act(obs)
    assert not torch.equal(first[:, 2:], second[:, 2:])  # act() samples unless told otherwise
    assert first.abs().max() <= 1.0 and (first[:, 0] == 1.0).all() and (first[:, 1] == -1.0).all()


def test_network_follows_activation_and_layer_norm_settings() -> None:
    cfg = GaussianPolicyConfig(["a"], 3, 2, [8, 8], activation="tanh", layer_norm=True)
    policy = GaussianPolicy(cfg, Normalizer(), {})
    kinds = [type(m) for m in policy.net.modules()]
    assert kinds.count(torch.nn.LayerNorm) == 2 and kinds.count(torch.nn.Tanh) == 2
    assert torch.nn.ReLU not in kinds
    plain = GaussianPolicy(GaussianPolicyConfig(["a"], 3, 2, [8]), Normalizer(), {})
    assert torch.nn.LayerNorm not in [type(m) for m in plain.net.modules()]


def test_leading_batch_dims_match_torch_distributions() -> None:
    # flat_obs gives [..., obs_dim]: a [2, 3] grid of observations (e.g. candidates per state)
    # must split mean / log-std and sum the density over the action dim only.
    from torch.distributions import Independent, Normal, TransformedDistribution
    from torch.distributions.transforms import TanhTransform

    policy = _policy()
    flat = _obs(6)
    grid = {k: v.view(2, 3, -1) for k, v in flat.items()}
    mean, log_std = policy.dist_params(grid)
    assert mean.shape == log_std.shape == (2, 3, 4)
    action = torch.rand(2, 3, 4, generator=torch.Generator().manual_seed(2)) * 1.8 - 0.9
    log_prob = policy.log_prob(grid, action)
    assert log_prob.shape == (2, 3)
    ref = TransformedDistribution(Independent(Normal(mean, log_std.exp()), 1), [TanhTransform()])
    torch.testing.assert_close(log_prob, ref.log_prob(action), atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(log_prob.view(6), policy.log_prob(flat, action.view(6, 4)))
