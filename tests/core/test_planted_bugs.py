"""Reference checks that fail when known bugs are planted (issue 10).

Each test names the planted bug it catches.
"""

from __future__ import annotations

import torch
from torch.distributions import Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

import sim
from robot_rl.algos.sac import SAC, SACConfig
from robot_rl.data import Normalizer
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
