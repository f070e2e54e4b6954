"""Golden outputs: each network type, built from a seed, gives the stored outputs on fixed inputs.

A refactor that changes numbers (initialization, layer order, normalization, the sampler's
arithmetic) fails here. Regenerate after an intended change with
``python -m tests.golden.regenerate`` (or ``ROBOT_RL_REGENERATE_GOLDEN=1 python -m pytest
tests/golden``) and say in the commit why the numbers moved.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from robot_rl.data.normalizer import Normalizer
from robot_rl.policies import DiffusionPolicy, DiffusionPolicyConfig, GaussianPolicy
from robot_rl.policies.critic import CriticConfig, CriticEnsemble
from robot_rl.policies.expo import EXPOPolicy, EXPOPolicyConfig, select
from robot_rl.policies.gaussian import GaussianPolicyConfig
from robot_rl.policies.modules import mlp

HERE = Path(__file__).parent
REGENERATE = os.environ.get("ROBOT_RL_REGENERATE_GOLDEN") == "1"
OBS, ACT, B = 5, 3, 4
ATOL = 1e-5


def _inputs() -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(1234)
    return torch.randn(B, OBS, generator=gen), torch.rand(B, ACT, generator=gen) * 1.8 - 0.9


def _normalizer() -> Normalizer:
    gen = torch.Generator().manual_seed(99)
    norm = Normalizer()
    norm.fit_field("obs.x", torch.randn(64, OBS, generator=gen) * 2.0 + 0.5, "gaussian")
    norm.fit_field("action", torch.rand(64, ACT, generator=gen) * 1.6 - 0.8, "minmax")
    return norm


def gaussian(seed: int) -> tuple[nn.Module, Callable[[], dict[str, Tensor]]]:
    torch.manual_seed(seed)
    policy = GaussianPolicy(GaussianPolicyConfig(["x"], OBS, ACT, [16, 16]), _normalizer(), {})

    def outputs() -> dict[str, Tensor]:
        x, a = _inputs()
        with torch.no_grad():
            mean, log_std = policy.dist_params({"x": x})
            torch.manual_seed(7)
            sampled, log_pi = policy.sample({"x": x})
            return {
                "mean": mean,
                "log_std": log_std,
                "log_prob": policy.log_prob({"x": x}, a),
                "act_deterministic": policy.act({"x": x}, deterministic=True),
                "sample": sampled,
                "sample_log_prob": log_pi,
            }

    return policy, outputs


def _diffusion(seed: int, denoiser: str) -> tuple[nn.Module, Callable[[], dict[str, Tensor]]]:
    torch.manual_seed(seed)
    cfg = DiffusionPolicyConfig(
        ["x"], OBS, ACT, n_obs_steps=2, horizon=8, n_action_steps=4, denoiser=denoiser,
        hidden_dim=16, num_blocks=1, time_dim=8, down_dims=[8, 16], n_groups=4,
        step_embed_dim=8, num_inference_steps=5,
    )  # fmt: skip
    policy = DiffusionPolicy(cfg, _normalizer(), {})
    # EMA weights differ from the trained ones, so outputs show which network acts.
    with torch.no_grad():
        for p in policy.ema_denoiser.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(seed)))

    def outputs() -> dict[str, Tensor]:
        x, a = _inputs()
        hist = {"x": torch.stack([x, x + 0.1], dim=1)}
        chunk = a.unsqueeze(1).repeat(1, 8, 1)
        gen = torch.Generator().manual_seed(3)
        policy.reset()
        return {
            "loss": policy.loss({"obs": hist, "actions": chunk}, generator=gen).detach(),
            "sample": policy.sample(hist, 2, generator=torch.Generator().manual_seed(4)),
            "act_deterministic": policy.act({"x": x}, deterministic=True),
        }

    return policy, outputs


def diffusion_mlp(seed: int) -> tuple[nn.Module, Callable[[], dict[str, Tensor]]]:
    return _diffusion(seed, "mlp")


def diffusion_unet(seed: int) -> tuple[nn.Module, Callable[[], dict[str, Tensor]]]:
    return _diffusion(seed, "unet")


def expo(seed: int) -> tuple[nn.Module, Callable[[], dict[str, Tensor]]]:
    """EXPO's acting policy: the edit policy's density, the N base chunks and the selection."""
    torch.manual_seed(seed)
    cfg = EXPOPolicyConfig(
        ["x"], OBS, ACT, n_obs_steps=2, horizon=8, n_action_steps=4, denoiser="mlp",
        hidden_dim=16, num_blocks=1, time_dim=8, num_inference_steps=5, num_samples=3,
        beta=0.2, edit_hidden_dims=[16], num_critics=3, critic_hidden_dims=[16],
    )  # fmt: skip
    policy = EXPOPolicy(cfg, _normalizer(), {})

    def outputs() -> dict[str, Tensor]:
        x, a = _inputs()
        hist = torch.stack([x, x + 0.1], dim=1)
        chunk = a.repeat(1, 4)  # [B, Ta * A]
        with torch.no_grad():
            mean_edit, mean_log_pi = policy.edit(x, chunk, deterministic=True)
            torch.manual_seed(7)
            edit, log_pi = policy.edit(x, chunk)
            base = policy.base_chunks(hist, 3, deterministic=True)
            gen = torch.Generator().manual_seed(5)
            policy.reset()
            return {
                "edit_mean": mean_edit,
                "edit_mean_log_prob": mean_log_pi,
                "edit_sample": edit,
                "edit_sample_log_prob": log_pi,
                "base_deterministic": base,
                "select_all_members": select(x, base, policy.edit, policy.target,
                                             deterministic=True),
                "select_subset": select(x, base, policy.edit, policy.target, 2, generator=gen),
                "act_deterministic": policy.act({"x": x}, deterministic=True),
            }  # fmt: skip

    return policy, outputs


def critic_ensemble(seed: int) -> tuple[nn.Module, Callable[[], dict[str, Tensor]]]:
    torch.manual_seed(seed)
    critic = CriticEnsemble(CriticConfig(OBS, ACT, num_critics=4, hidden_dims=[16, 16]))

    def outputs() -> dict[str, Tensor]:
        x, a = _inputs()
        with torch.no_grad():
            q = critic(x, a)
            gen = torch.Generator().manual_seed(5)
            return {"q": q, "subset_min": CriticEnsemble.subset_min(q, 2, generator=gen)}

    return critic, outputs


def iql_value(seed: int) -> tuple[nn.Module, Callable[[], dict[str, Tensor]]]:
    """IQL's V(s) is a plain ``mlp`` (as ``train_iql`` and ``load_value`` build it)."""
    torch.manual_seed(seed)
    value = mlp(OBS, [16, 16], 1)

    def outputs() -> dict[str, Tensor]:
        with torch.no_grad():
            return {"v": value(_inputs()[0])}

    return value, outputs


CASES = {
    f.__name__: f
    for f in (gaussian, diffusion_mlp, diffusion_unet, expo, critic_ensemble, iql_value)
}
SEED = 0


def golden_path(name: str) -> Path:
    return HERE / f"{name}.safetensors"


@pytest.mark.parametrize("name", sorted(CASES))
def test_outputs_match_golden(name: str) -> None:
    _, outputs = CASES[name](SEED)
    got = {k: v.contiguous() for k, v in outputs().items()}
    path = golden_path(name)
    if REGENERATE:
        save_file(got, str(path))
    stored = load_file(str(path))
    assert sorted(stored) == sorted(got)
    for key, value in stored.items():
        torch.testing.assert_close(got[key], value, atol=ATOL, rtol=0, msg=f"{name}/{key}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_networks_are_built_deterministically_from_the_seed(name: str) -> None:
    """The goldens mean something only if a seed fixes the weights (and another changes them)."""
    first, _ = CASES[name](SEED)
    torch.manual_seed(12345)  # the RNG state before building must not matter
    again, _ = CASES[name](SEED)
    other, _ = CASES[name](SEED + 1)
    a, b, c = first.state_dict(), again.state_dict(), other.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


def test_golden_files_are_small() -> None:
    for name in CASES:
        assert golden_path(name).stat().st_size < 100_000, name
