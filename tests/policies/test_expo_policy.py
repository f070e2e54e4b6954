"""EXPO's acting policy: settings it refuses, the edit's box, the N base chunks, and a plan.

The edit density and the selection's argmax are checked against references in
``tests/test_expo.py``; the numbers end to end in ``tests/golden``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robot_rl.data.normalizer import Normalizer
from robot_rl.errors import ConfigError
from robot_rl.policies import DiffusionPolicy, DiffusionPolicyConfig
from robot_rl.policies.critic import CriticConfig, CriticEnsemble
from robot_rl.policies.expo import EditPolicy, EXPOPolicy, EXPOPolicyConfig

OBS, ACT, TO, TA = 3, 2, 2, 2
SMALL = {"horizon": 4, "n_action_steps": TA, "n_obs_steps": TO, "hidden_dim": 16,
         "num_inference_steps": 4}  # fmt: skip


def _normalizer(action_scale: float = 1.0) -> Normalizer:
    """Identity on observations; env actions are ``action_scale`` x the normalized ones."""
    return Normalizer({
        "obs.x": (torch.ones(OBS), torch.zeros(OBS)),
        "action": (torch.full((ACT,), 1.0 / action_scale), torch.zeros(ACT)),
    })  # fmt: skip


def _policy(action_scale: float = 1.0, **settings: object) -> EXPOPolicy:
    torch.manual_seed(0)
    small = {"num_samples": 3, "edit_hidden_dims": [16], "num_critics": 3,
             "critic_hidden_dims": [16]}  # fmt: skip
    cfg = EXPOPolicyConfig(["x"], OBS, ACT, **SMALL, **{**small, **settings})
    return EXPOPolicy(cfg, _normalizer(action_scale), {"env_name": "reach"})


def test_nonsense_settings_are_one_line_errors_and_the_edges_are_accepted() -> None:
    with pytest.raises(ConfigError) as err:
        EditPolicy(OBS, ACT, beta=0.0, hidden=(8,))
    assert str(err.value) == "beta must be > 0, got 0.0"
    with pytest.raises(ConfigError) as err:
        _policy(num_samples=0)
    assert str(err.value) == "num_samples=0: must be >= 1"
    for subset in (0, 4):
        with pytest.raises(ConfigError) as err:
            _policy(target_subset=subset)
        assert str(err.value) == f"target_subset={subset}: must be in 1..num_critics"
    cfg = _policy(num_samples=1, target_subset=1).config
    assert (cfg.num_samples, cfg.target_subset) == (1, 1)


def test_the_edit_network_is_layer_normed_and_its_output_stays_in_the_box() -> None:
    edit = EditPolicy(OBS, ACT, beta=0.5, hidden=(8,))
    assert any(isinstance(m, nn.LayerNorm) for m in edit.net.modules())
    last = edit.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([-20.0, 20.0, 0.0, 0.0]))  # mean u: (-20, 20)
    action = torch.tensor([[-0.9, 0.9], [0.0, 0.0]])
    out, _ = edit(torch.zeros(2, OBS), action, deterministic=True)
    # a + 0.5 tanh(u): (-1.4, 1.4) clipped to the box; (-0.5, 0.5) inside it.
    torch.testing.assert_close(out, torch.tensor([[-1.0, 1.0], [-0.5, 0.5]]))


def test_a_new_policy_selects_with_frozen_targets() -> None:
    policy = _policy()
    assert policy.selecting is True  # eval and the robot run the selection by default
    assert policy.last_plan is None
    assert not any(p.requires_grad for p in policy.target.parameters())
    assert all(p.requires_grad for p in policy.edit.parameters())


def test_from_diffusion_keeps_the_base_networks_the_critic_and_the_settings() -> None:
    torch.manual_seed(1)
    base = DiffusionPolicy(DiffusionPolicyConfig(["x"], OBS, ACT, **SMALL), _normalizer(), {})
    critic = CriticEnsemble(CriticConfig(OBS, TA * ACT, num_critics=4, hidden_dims=[8]))
    policy = EXPOPolicy.from_diffusion(base, critic, num_samples=5, beta=0.2, target_subset=3)
    cfg = policy.config
    assert (cfg.num_samples, cfg.beta, cfg.target_subset) == (5, 0.2, 3)
    assert (cfg.num_critics, cfg.critic_hidden_dims, policy.edit.beta) == (4, [8], 0.2)
    for mine, theirs in [(policy.denoiser, base.denoiser), (policy.ema_denoiser,
                         base.ema_denoiser), (policy.target, critic)]:  # fmt: skip
        ours, ref = mine.state_dict(), theirs.state_dict()
        assert ours.keys() == ref.keys()
        assert all(torch.equal(ours[k], ref[k]) for k in ref)


def test_deterministic_base_chunks_lead_with_the_diffusion_policys_own_chunk() -> None:
    policy = _policy()
    hist = torch.randn(4, TO, OBS)
    base = policy.base_chunks(hist, 3, deterministic=True)
    assert base.shape == (4, 3, TA * ACT)
    # The plain diffusion policy's deterministic plan of each history, in env units.
    own = DiffusionPolicy.plan(policy, hist, None, deterministic=True)
    own = policy.normalizer.unnormalize_action(own).clamp(-1.0, 1.0).flatten(1)
    torch.testing.assert_close(base[:, 0], own)
    assert not torch.allclose(base[:, 1], own, atol=1e-3)  # the others are samples
    assert not torch.allclose(base[:, 1], base[:, 2], atol=1e-3)
    torch.testing.assert_close(policy.base_chunks(hist, 3, deterministic=True), base)


def test_sampled_base_chunks_come_from_the_generator() -> None:
    policy = _policy()
    hist = torch.randn(2, TO, OBS)

    def draw(seed: int) -> torch.Tensor:
        return policy.base_chunks(hist, 3, torch.Generator().manual_seed(seed))

    torch.testing.assert_close(draw(0), draw(0))
    assert not torch.allclose(draw(0), draw(1))
    assert not torch.allclose(draw(0)[:, 0], policy.base_chunks(hist, 3, deterministic=True)[:, 0])


def test_base_chunks_are_clamped_to_the_env_box() -> None:
    # Env actions are 3x the normalized ones: the denoiser's [-1, 1] maps to [-3, 3].
    policy = _policy(action_scale=3.0)
    base = policy.base_chunks(torch.randn(64, TO, OBS), 3, torch.Generator().manual_seed(0))
    assert base.min() == -1.0 and base.max() == 1.0
    assert ((base > -1.0) & (base < 1.0)).any()


def test_a_plan_without_selection_executes_the_first_base_chunk() -> None:
    policy = _policy()
    hist = torch.randn(5, TO, OBS)
    policy.selecting = False
    actions = policy.plan(hist, torch.Generator().manual_seed(0), deterministic=False)
    plan = policy.last_plan
    assert plan is not None and set(plan) == {"obs", "base", "chosen"}
    torch.testing.assert_close(plan["obs"], hist[:, -1])
    torch.testing.assert_close(plan["chosen"], plan["base"][:, 0])
    torch.testing.assert_close(
        policy.normalizer.unnormalize_action(actions).flatten(1), plan["chosen"]
    )
    first = plan["base"]
    policy.plan(hist, torch.Generator().manual_seed(0), deterministic=False)
    torch.testing.assert_close(policy.last_plan["base"], first)  # drawn from the generator
