from __future__ import annotations

import math

import torch
from torch import distributions as D

from robot_rl.algos.expo import EditPolicy, EXPOConfig, select, td_target
from robot_rl.data.chunks import chunk_returns
from robot_rl.policies.critic import CriticConfig, CriticEnsemble


def test_edit_log_prob_matches_torch_distributions():
    torch.manual_seed(0)
    edit = EditPolicy(3, 2, beta=0.05, hidden=(16,))
    obs, a = torch.randn(5, 3), torch.rand(5, 2) * 0.5
    torch.manual_seed(1)
    out, log_pi = edit(obs, a)
    mean, raw = edit.net(torch.cat([obs, a], -1)).chunk(2, -1)
    log_std = -5.0 + 3.5 * (torch.tanh(raw) + 1.0)
    dist = D.TransformedDistribution(
        D.Normal(mean, log_std.exp()),
        [D.TanhTransform(), D.AffineTransform(loc=a, scale=0.05)],
    )
    torch.manual_seed(1)
    u = mean + log_std.exp() * torch.randn_like(mean)
    x = a + 0.05 * torch.tanh(u)
    assert torch.allclose(out, x.clamp(-1, 1))
    ref = dist.log_prob(x).sum(-1)
    assert torch.allclose(log_pi, ref, atol=1e-3)
    assert abs(math.log(0.05) * -2) > 5  # the correction is large: not a no-op


def _linear_critic(w: torch.Tensor) -> CriticEnsemble:
    """Q(s, a) = w . a for every member (one hidden layer of identity, no LayerNorm)."""
    c = CriticEnsemble(CriticConfig(1, 2, num_critics=2, hidden_dims=[], layer_norm=False))
    with torch.no_grad():
        c.net[0].weight.zero_()
        c.net[0].weight[:, 1:, 0] = w
        c.net[0].bias.zero_()
    return c


def test_select_picks_highest_q_candidate_and_td_uses_it():
    torch.manual_seed(0)
    critic = _linear_critic(torch.tensor([1.0, -1.0]))
    edit = EditPolicy(1, 2, beta=1e-6, hidden=(8,))
    base = torch.tensor([[[0.1, 0.2], [0.9, -0.8], [-0.5, 0.5]]])
    best = select(torch.zeros(1, 1), base, edit, critic)
    assert torch.allclose(best, torch.tensor([[0.9, -0.8]]), atol=1e-4)
    y = td_target(torch.tensor([1.0]), torch.tensor([1.0]), torch.zeros(1, 1), base, edit,
                  critic, 0.5)  # fmt: skip
    assert torch.allclose(y, torch.tensor([1.0 + 0.5 * 1.7]), atol=1e-4)


def test_chunk_returns_hand_computed():
    r = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    term = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    done = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    total, not_done, disc = chunk_returns(r, term, done, 0.5)
    assert torch.allclose(total, torch.tensor([1 + 1 + 0.75, 2.0]))
    assert torch.allclose(not_done, torch.tensor([1.0, 0.0]))
    assert torch.allclose(disc, torch.tensor([0.125, 0.25]))


def test_presets():
    p = EXPOConfig.paper()
    assert (p.num_base_samples, p.num_edits, p.beta, p.utd) == (8, 8, 0.05, 20)
    assert p.critic_hidden_dims == (256, 256, 256) and p.target_entropy_per_dim == -0.5


def test_base_policy_gets_no_critic_gradient_and_chunked_update_runs():
    from robot_rl.algos.expo import EXPO
    from robot_rl.data.normalizer import Normalizer
    from robot_rl.policies import DiffusionPolicy, DiffusionPolicyConfig
    from robot_rl.policies.critic import make_target

    torch.manual_seed(0)
    ident = {"obs.x": (torch.ones(3), torch.zeros(3)), "action": (torch.ones(2), torch.zeros(2))}
    cfg = DiffusionPolicyConfig(["x"], 3, 2, horizon=4, n_action_steps=2, hidden_dim=16)
    base = DiffusionPolicy(cfg, Normalizer(ident), {"env_name": "push"})
    ta, b, n = 2, 8, 3
    critic = CriticEnsemble(CriticConfig(6, 2 * ta, num_critics=4, hidden_dims=[16]))
    agent = EXPO(critic, make_target(critic), EditPolicy(6, 2 * ta, 0.05, (16,)), EXPOConfig(), ta)
    obs = {"x": torch.randn(b, 2, 3)}
    # All B * N candidates in one batched denoising call.
    chunks = base.sample(obs, n, normalized=True)[:, :, 1 : 1 + ta].flatten(2)
    assert chunks.shape == (b, n, 2 * ta)
    flat = base.obs_history(obs)
    before = [p.clone() for p in critic.parameters()]
    agent.critic_step(flat, chunks[:, 0], torch.ones(b), torch.ones(b), flat, chunks)
    agent.edit_step(flat, chunks[:, 0])
    assert all(p.grad is None for p in base.parameters())
    assert any(not torch.equal(p, q) for p, q in zip(before, critic.parameters(), strict=True))
    base.loss({"obs": obs, "actions": torch.rand(b, 4, 2)}).backward()  # imitation only
    assert all(p.grad is not None for p in base.denoiser.parameters())


def test_adaptive_beta_step_against_hand_values():
    from robot_rl.algos.expo import adaptive_beta_step

    # Two critics: std over members (population) of (1, 3) is 1 and of (0, 4) is 2 -> mean 1.5;
    # on the data actions the members agree within std 1 -> ratio 1.5.
    q_edit = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    q_data = torch.tensor([[0.0, 5.0], [2.0, 7.0]])
    lb, ratio = adaptive_beta_step(math.log(0.05), q_edit, q_data, 1.0, 0.1, (0.01, 1.0))
    assert ratio == 1.5
    assert math.isclose(lb, math.log(0.05) - 0.1 * 0.5)  # disagreement above target: shrink
    lb, _ = adaptive_beta_step(math.log(0.05), q_edit, q_data, 2.5, 0.1, (0.01, 1.0))
    assert math.isclose(lb, math.log(0.05) + 0.1)  # below target: grow
    lb, _ = adaptive_beta_step(math.log(0.011), q_edit, q_data, 0.0, 1.0, (0.01, 1.0))
    assert math.isclose(lb, math.log(0.01))  # clipped at the lower bound


def test_adaptive_beta_moves_the_edit_scale_and_fixed_does_not():
    from robot_rl.algos.expo import EXPO
    from robot_rl.policies.critic import make_target

    for mode in ("fixed", "adaptive"):
        torch.manual_seed(0)
        critic = CriticEnsemble(CriticConfig(3, 2, num_critics=4, hidden_dims=[16]))
        edit = EditPolicy(3, 2, 0.05, (16,))
        cfg = EXPOConfig(beta_mode=mode, beta_lr=0.5)
        agent = EXPO(critic, make_target(critic), edit, cfg)
        agent.edit_step(torch.randn(32, 3), torch.rand(32, 2) - 0.5)
        if mode == "fixed":
            assert edit.beta == 0.05 and math.isnan(agent.beta_ratio)
        else:
            expect = math.exp(math.log(0.05) - 0.5 * (agent.beta_ratio - cfg.beta_target))
            assert math.isclose(edit.beta, min(max(expect, 0.01), 1.0))
            assert edit.beta != 0.05


def test_adaptive_beta_config_rejects_bad_bounds():
    import pytest

    from robot_rl.errors import ConfigError

    with pytest.raises(ConfigError):
        EXPOConfig(beta_mode="adaptive", beta=0.5, beta_bounds=(0.01, 0.1))
    assert EXPOConfig().beta_mode == "fixed"  # the authors' fixed beta stays the default
