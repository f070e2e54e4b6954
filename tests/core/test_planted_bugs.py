"""Reference checks that fail when known bugs are planted (issue 10).

Each test names the planted bug it catches.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

import sim
from robot_rl.algos.calql import calibrated_q, calql_td_target, cql_action_gap
from robot_rl.algos.sac import SAC, SACConfig
from robot_rl.data import Normalizer
from robot_rl.data.dataset import OfflineDataset
from robot_rl.data.replay import MixedSampler, ReplayBuffer
from robot_rl.policies.critic import CriticConfig, CriticEnsemble, make_target
from robot_rl.policies.gaussian import GaussianPolicy, GaussianPolicyConfig
from robot_rl.rollout import run_episodes

OBS, ACT = 3, 2


def _policy() -> GaussianPolicy:
    torch.manual_seed(0)
    norm = Normalizer()
    norm.params["obs.x"] = (torch.ones(OBS), torch.zeros(OBS))
    norm.params["action"] = (torch.ones(ACT), torch.zeros(ACT))
    return GaussianPolicy(GaussianPolicyConfig(["x"], OBS, ACT, [16]), norm, {})


def test_tanh_gaussian_log_prob_matches_torch_distributions() -> None:
    """Catches: sign of the tanh log-determinant flipped in the Gaussian policy."""
    policy = _policy()
    obs = {"x": torch.randn(64, OBS, generator=torch.Generator().manual_seed(3))}
    with torch.no_grad():
        mean, log_std = policy.dist_params(obs)
        ref = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform()])
        action = ref.sample().clamp(-0.99, 0.99)
        expected = ref.log_prob(action).sum(-1)
        assert torch.allclose(policy.log_prob(obs, action), expected, atol=1e-3)
        torch.manual_seed(7)
        sampled, logp = policy.sample(obs)
        keep = sampled.abs().max(-1).values < 0.99
        assert torch.allclose(logp[keep], ref.log_prob(sampled).sum(-1)[keep], atol=1e-3)


def _sac(actor_reduce: str) -> SAC:
    policy = _policy()
    critic = CriticEnsemble(CriticConfig(OBS, ACT, 4, [16]))
    cfg = SACConfig(utd=1, batch_size=8, actor_reduce=actor_reduce)  # type: ignore[arg-type]
    return SAC(policy, critic, make_target(critic), cfg, 0.5, torch.Generator().manual_seed(0))


def test_actor_objective_uses_configured_ensemble_reduction() -> None:
    """Catches: SAC's actor always using the ensemble mean (WSRL/SAC use min, RLPD mean)."""
    for how in ("min", "mean"):
        sac = _sac(how)
        obs = {"x": torch.randn(32, OBS, generator=torch.Generator().manual_seed(4))}
        torch.manual_seed(11)
        with torch.no_grad():
            action, _ = sac.policy.sample(obs)
            q = sac.critic(obs["x"], action)  # [E, N] or [E, N, 1]
        expected = (q.min(0).values if how == "min" else q.mean(0)).mean()
        assert not torch.allclose(q.min(0).values.mean(), q.mean(0).mean())
        torch.manual_seed(11)
        metrics = sac._actor_step(obs["x"], obs)
        assert torch.allclose(metrics["train/q_pi_mean"], expected, atol=1e-5), how


def test_rollout_credits_each_episode_to_its_own_env() -> None:
    """Catches: all finished episodes credited to env 0 in rollout.py."""
    env = sim.make("reach", num_envs=3, seed=0, horizon=5)

    def act(obs: dict[str, torch.Tensor]) -> torch.Tensor:
        # Env i pushes with a different action, so the envs' returns differ.
        a = torch.zeros(3, 4)
        a[1, :3] = 1.0
        a[2, :3] = -1.0
        return a

    result = run_episodes(env, act, 6, seed=0, record=True)
    assert len(result.returns) == 6
    for ret, ep in zip(result.returns, result.episodes, strict=True):
        assert abs(float(ep["rewards"].sum()) - ret) < 1e-4
    # Each env pushes differently, so its episodes start with its own action.
    first_actions = {tuple(ep["actions"][0].tolist()) for ep in result.episodes}
    assert len(first_actions) == 3


# ---- Cal-QL's loss terms on hand-built batches ----------------------------------------------


def _lse(*xs: float) -> float:
    return math.log(sum(math.exp(x) for x in xs))


def test_calql_gap_clips_policy_q_at_the_mc_return() -> None:
    """Catches: Cal-QL's Monte-Carlo lower bound removed (Q_pi must be max(Q, MC) in the gap)."""
    # One critic, two states, one proposal of each kind, log densities 0, uniform Q very low.
    q_data = torch.tensor([[1.0, -1.0]])
    q_rand = torch.full((1, 2, 1), -50.0)
    q_cur = torch.tensor([[[-10.0], [3.0]]])
    q_nxt = torch.tensor([[[-8.0], [4.0]]])
    log_pi = torch.zeros(2, 1)
    mc = torch.tensor([2.0, 2.0])
    a = 2  # uniform proposal density on [-1, 1]^2 is 1/4, so its term is q_rand + log 4
    rand = -50.0 + a * math.log(2.0)
    # State 0: both policy Qs lie below the return 2 and are lifted to it; state 1: above it.
    calibrated = ((_lse(rand, 2.0, 2.0) - 1.0) + (_lse(rand, 4.0, 3.0) + 1.0)) / 2
    plain = ((_lse(rand, -8.0, -10.0) - 1.0) + (_lse(rand, 4.0, 3.0) + 1.0)) / 2
    args = (q_data, q_rand, q_cur, q_nxt, log_pi, log_pi, a)
    gap = cql_action_gap(*args, mc_return=mc)
    assert gap.shape == (1,)
    assert abs(gap.item() - calibrated) < 1e-5, (gap.item(), calibrated)
    assert abs(cql_action_gap(*args).item() - plain) < 1e-5
    assert torch.equal(calibrated_q(q_cur, mc), torch.tensor([[[2.0], [3.0]]]))


def test_cql_gap_is_soft_max_over_proposals_minus_data_q() -> None:
    """Catches: the CQL gap's sign flipped (it must push data Q up and proposal Q down)."""
    gen = torch.Generator().manual_seed(0)
    e, b, n, a = 3, 4, 2, 3
    q_data = torch.randn(e, b, generator=gen, requires_grad=True)
    q_rand, q_cur, q_nxt = (torch.randn(e, b, n, generator=gen) for _ in range(3))
    q_cur.requires_grad_(True)
    cur_lp, nxt_lp = torch.randn(b, n, generator=gen), torch.randn(b, n, generator=gen)
    gap = cql_action_gap(q_data, q_rand, q_cur, q_nxt, cur_lp, nxt_lp, a, cql_temperature=2.0)
    # Reference: loop over critics and states with plain floats.
    for i in range(e):
        rows = []
        for j in range(b):
            props = [q_rand[i, j, k].item() + a * math.log(2.0) for k in range(n)]
            props += [q_nxt[i, j, k].item() - nxt_lp[j, k].item() for k in range(n)]
            props += [q_cur[i, j, k].item() - cur_lp[j, k].item() for k in range(n)]
            rows.append(2.0 * _lse(*(p / 2.0 for p in props)) - q_data[i, j].item())
        assert abs(gap[i].item() - sum(rows) / b) < 1e-5
    # Descending the gap raises Q(s, a_data) and lowers the policy's proposals.
    gap.sum().backward()
    assert (q_data.grad < 0).all() and (q_cur.grad > 0).all()
    torch.testing.assert_close(q_data.grad, torch.full((e, b), -1.0 / b))


def test_calql_td_target_stops_at_terminals() -> None:
    """Catches: Cal-QL's TD target ignoring terminals."""
    reward = torch.tensor([1.0, 1.0, -5.0])
    terminals = torch.tensor([0.0, 1.0, 0.0])
    q_next = torch.tensor([10.0, 10.0, -20.0])
    target = calql_td_target(reward, terminals, q_next, 0.9)
    torch.testing.assert_close(target, torch.tensor([1.0 + 9.0, 1.0, -5.0 - 18.0]))


# ---- RLPD's symmetric sampling --------------------------------------------------------------


def _offline(rows: int) -> OfflineDataset:
    x = np.arange(rows, dtype=np.float32)[:, None].repeat(OBS, 1) + 1000.0
    episode = {
        "obs": {"x": x},
        "next_obs": {"x": x + 0.5},
        "actions": np.full((rows, ACT), 0.25, np.float32),
        "rewards": np.full(rows, 7.0, np.float32),
        "dones": np.zeros(rows, np.float32),
    }
    return OfflineDataset.from_episodes([episode])


@pytest.mark.parametrize("ratio", [0.25, 0.5, 1.0])
def test_rlpd_batches_hold_offline_rows_at_the_set_ratio(ratio: float) -> None:
    """Catches: the RLPD sampler given no offline data (offline rows must reach the batch)."""
    online = ReplayBuffer(32, {"x": ((OBS,), torch.float32)}, ACT)
    obs = {"x": -torch.arange(20.0)[:, None].repeat(1, OBS)}
    online.add(obs, torch.zeros(20, ACT), torch.zeros(20), obs, torch.zeros(20))
    sampler = MixedSampler(online, _offline(50), ratio)
    batch = sampler.sample(16, torch.Generator().manual_seed(0))
    from_offline = batch["obs"]["x"][:, 0] >= 1000.0
    assert int(from_offline.sum()) == round(ratio * 16)
    # Offline rows carry their own transition: reward, action and next observation.
    assert (batch["rewards"][from_offline] == 7.0).all()
    assert (batch["rewards"][~from_offline] == 0.0).all()
    assert (batch["actions"][from_offline] == 0.25).all()
    torch.testing.assert_close(
        batch["next_obs"]["x"][from_offline], batch["obs"]["x"][from_offline] + 0.5
    )
    # Over many batches every offline row can be drawn, not a fixed few.
    seen = set()
    gen = torch.Generator().manual_seed(1)
    for _ in range(40):
        b = sampler.sample(16, gen)
        seen.update(b["obs"]["x"][b["obs"]["x"][:, 0] >= 1000.0, 0].tolist())
    assert len(seen) > 40
