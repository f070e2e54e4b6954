from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import robot_rl.algos.calql as calql
from robot_rl.algos.calql import CalQLConfig, calql_actor_loss, train_calql
from robot_rl.cli import main
from robot_rl.data import Normalizer
from robot_rl.data.dataset import OfflineDataset
from robot_rl.errors import ConfigError
from robot_rl.policies import GaussianPolicy, load_policy
from robot_rl.policies.critic import CriticConfig, CriticEnsemble, load_critic, load_temperature
from robot_rl.policies.gaussian import GaussianPolicyConfig


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
    # 3 Adam steps of lr 1e-4 move log(temperature) by at most 3e-4 from log(1); the fresh
    # policy's entropy is above the target -|A|, so the temperature went down.
    temperature = load_temperature(out)
    assert temperature is not None and math.exp(-3.03e-4) <= temperature < 1.0, temperature
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


def test_actor_step_leaves_critic_gradients_alone() -> None:
    """The actor's backward reaches the actor through the action only: critic grads stay as
    they were, and the critic stays trainable afterwards."""
    torch.manual_seed(0)
    norm = Normalizer()
    norm.params["obs.x"] = (torch.ones(3), torch.zeros(3))
    norm.params["action"] = (torch.ones(2), torch.zeros(2))
    policy = GaussianPolicy(GaussianPolicyConfig(["x"], 3, 2, [16]), norm, {})
    critic = CriticEnsemble(CriticConfig(3, 2, 4, [16]))
    marker = [torch.full_like(p, 0.125) for p in critic.parameters()]
    for p, g in zip(critic.parameters(), marker, strict=True):
        p.grad = g.clone()
    obs = {"x": torch.randn(8, 3)}
    loss, _, _ = calql_actor_loss(policy, critic, obs, policy.flat_obs(obs), torch.tensor(0.1))
    loss.backward()
    for p, g in zip(critic.parameters(), marker, strict=True):
        assert torch.equal(p.grad, g) and p.requires_grad
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.parameters())


@pytest.mark.parametrize(("calibrated", "n_actions"), [(True, 2), (False, 1)])
def test_train_step_wiring(
    reach_mixed: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    calibrated: bool,
    n_actions: int,
) -> None:
    """Per step each critic parameter gets exactly one gradient (the critic loss's); the CQL
    gap gets the sampled batch's MC returns (Cal-QL) or none (CQL); the TD target gets the
    batch's terminals."""
    hits: dict[int, int] = {}
    seen: dict[str, list] = {"batch": [], "mc": [], "terminals": []}
    build = calql.build_actor_critic

    def build_with_hooks(*args, **kwargs):
        policy, critic, target = build(*args, **kwargs)
        for i, p in enumerate(critic.parameters()):
            p.register_hook(lambda g, i=i: hits.__setitem__(i, hits.get(i, 0) + 1))
        return policy, critic, target

    sample = OfflineDataset.sample

    def recording_sample(self, *args, **kwargs):
        batch = sample(self, *args, **kwargs)
        seen["batch"].append(batch)
        return batch

    gap, td = calql.cql_action_gap, calql.calql_td_target

    def recording_gap(*args, **kwargs):
        seen["mc"].append(kwargs.get("mc_return"))
        return gap(*args, **kwargs)

    def recording_td(reward, terminals, q_next, discount):
        seen["terminals"].append(terminals)
        return td(reward, terminals, q_next, discount)

    monkeypatch.setattr(calql, "build_actor_critic", build_with_hooks)
    monkeypatch.setattr(OfflineDataset, "sample", recording_sample)
    monkeypatch.setattr(calql, "cql_action_gap", recording_gap)
    monkeypatch.setattr(calql, "calql_td_target", recording_td)
    cfg = CalQLConfig(
        dataset=reach_mixed, out=tmp_path / "c", steps=2, batch_size=16, hidden_dims=[16],
        critic_hidden_dims=[16], num_critics=2, calibrated=calibrated, cql_n_actions=n_actions,
        log_dir=tmp_path / "tb",
    )  # fmt: skip
    train_calql(cfg, progress=False)
    assert hits and set(hits.values()) == {2}, hits
    assert len(seen["batch"]) == len(seen["mc"]) == len(seen["terminals"]) == 2
    for batch, mc, terminals in zip(seen["batch"], seen["mc"], seen["terminals"], strict=True):
        assert terminals is batch["terminals"]
        assert (mc is batch["mc"]) if calibrated else mc is None


def _tiny() -> tuple[GaussianPolicy, CriticEnsemble]:
    torch.manual_seed(0)
    norm = Normalizer()
    norm.params["obs.x"] = (torch.ones(3), torch.zeros(3))
    norm.params["action"] = (torch.ones(2), torch.zeros(2))
    policy = GaussianPolicy(GaussianPolicyConfig(["x"], 3, 2, [16]), norm, {})
    return policy, CriticEnsemble(CriticConfig(3, 2, 4, [16]))


def test_actor_loss_is_temperature_log_pi_minus_min_q() -> None:
    policy, critic = _tiny()
    obs = {"x": torch.randn(16, 3, generator=torch.Generator().manual_seed(2))}
    torch.manual_seed(3)
    loss, log_pi, q_pi = calql_actor_loss(policy, critic, obs, obs["x"], torch.tensor(0.3))
    torch.manual_seed(3)
    with torch.no_grad():
        action, ref_log_pi = policy.sample(obs)
        q_min = critic(obs["x"], action).min(0).values
    torch.testing.assert_close(log_pi.detach(), ref_log_pi)
    torch.testing.assert_close(q_pi.detach(), q_min)
    torch.testing.assert_close(loss.detach(), (0.3 * ref_log_pi - q_min).mean())


def _resolve(**kw: object) -> CalQLConfig:
    return calql.resolve(CalQLConfig(dataset=Path("d.hdf5"), out=Path("o"), **kw))


@pytest.mark.parametrize("field", ["steps", "batch_size", "num_critics", "cql_n_actions"])
def test_resolve_rejects_zero_counts(field: str) -> None:
    # One line, naming every count setting (the message is the user's whole answer).
    with pytest.raises(ConfigError, match=rf"\b{field} must be >= 1"):
        _resolve(**{field: 0}, target_subset=1)
    assert getattr(_resolve(**{field: 1}, target_subset=1), field) == 1


def test_resolve_target_subset_bounds_and_presets() -> None:
    assert _resolve(target_subset=1, num_critics=3).target_subset == 1
    assert _resolve(target_subset=3, num_critics=3).target_subset == 3
    for bad in (0, 4):
        with pytest.raises(ConfigError, match=r"target_subset must be in \[1, num_critics=3\]"):
            _resolve(target_subset=bad, num_critics=3)
    with pytest.raises(ConfigError, match="unknown scale 'huge'.*cpu.*paper"):
        _resolve(scale="huge")
    paper = _resolve(scale="paper", num_critics=4)
    assert (paper.steps, paper.cql_n_actions, paper.num_critics) == (1_000_000, 10, 4)
