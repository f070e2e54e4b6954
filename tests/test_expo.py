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
